/**
 * The crypto benchmark: operations per second of each CryptoProvider primitive at the sizes
 * cose-flow/1 uses, and of building the protocol's messages (`sealData`, `makeKeyMessage`).
 * Runtime-neutral (no Node APIs), so the same code measures a provider on Node, in the XS test
 * host (bench/xs-crypto.ts) and on a device (native/bench/main.ts).
 */
import { encode } from '../src/cbor/index.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { makeKeyMessage, newSessionKey, sealData } from '../src/profile/index.js';

export interface BenchResult {
  provider: string;
  name: string;
  /** Operations per second. */
  opsPerSecond: number;
  /** Operations timed. */
  ops: number;
}

export interface BenchOptions {
  /** Milliseconds to run each case for (at least two operations are timed). */
  minMs: number;
  /** The clock, in milliseconds (Date.now, or a finer one where there is one). */
  now?: () => number;
  /** Called with each result as soon as it is measured (a device prints as it goes). */
  report?: (result: BenchResult) => void;
  /** Only the cases whose name contains one of these. */
  only?: string[];
}

/** Deterministic bytes (the values do not matter, only the sizes). */
function filled(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 29 + seed * 13 + 7) & 255;
  return out;
}

/** The payload of one reading, as the device sends it (about 30 bytes of CBOR). */
function reading(seq: number): Uint8Array {
  return encode(
    new Map<string, unknown>([
      ['seq', seq],
      ['t', 20 + (seq % 100) / 10],
      ['h', 40 + (seq % 30)],
      ['unit', '°C'],
    ]),
  );
}

/** The cases: a name and one operation (the setup runs once, outside the timing). */
export function benchCases(p: CryptoProvider): [string, () => unknown][] {
  const key16 = filled(16, 1);
  const iv = filled(12, 2);
  const aad = filled(16, 3);
  const data64 = filled(64, 4);
  const data1k = filled(1024, 5);
  const sealed64 = p.aesGcmEncrypt(key16, iv, data64, aad);
  const keyData = filled(16, 6);
  const wrapped = p.aesKeyWrap(key16, keyData);
  const key = p.p256Generate();
  const peer = p.p256Generate().publicKey;
  const signature = p.ecdsaP256Sign(key, data64);
  const scalar = filled(32, 7);
  scalar[0] = 0x42; // below n
  const session = newSessionKey(p, 1);
  const cloud = p.p256Generate();
  const certificate = filled(420, 8); // the size of a device certificate; only carried, not parsed
  let seq = 0;
  return [
    ['randomBytes 32 B', () => p.randomBytes(32)],
    ['sha256 64 B', () => p.sha256(data64)],
    ['sha256 1 KiB', () => p.sha256(data1k)],
    ['hmacSha256 64 B', () => p.hmacSha256(key16, data64)],
    ['hkdfSha256 32 B -> 16 B', () => p.hkdfSha256(data64.subarray(0, 32), new Uint8Array(0), aad, 16)],
    ['aesGcmEncrypt 64 B', () => p.aesGcmEncrypt(key16, iv, data64, aad)],
    ['aesGcmDecrypt 64 B', () => p.aesGcmDecrypt(key16, iv, sealed64, aad)],
    ['aesGcmEncrypt 1 KiB', () => p.aesGcmEncrypt(key16, iv, data1k, aad)],
    ['aesKeyWrap 16 B', () => p.aesKeyWrap(key16, keyData)],
    ['aesKeyUnwrap 16 B', () => p.aesKeyUnwrap(key16, wrapped)],
    ['p256Generate', () => p.p256Generate()],
    ['p256Import', () => p.p256Import(scalar)],
    ['ecdsaP256Sign 64 B', () => p.ecdsaP256Sign(key, data64)],
    ['ecdsaP256Verify 64 B', () => p.ecdsaP256Verify(key.publicKey, data64, signature)],
    ['ecdhP256', () => p.ecdhP256(key, peer)],
    ['sealData (one data message)', () => sealData(p, session, seq++, reading(seq))],
    [
      'makeKeyMessage (one session start)',
      () =>
        makeKeyMessage(p, {
          deviceId: 'bench-1',
          deviceKey: key,
          deviceCertificate: certificate,
          cloudPublicKey: cloud.publicKey,
          session,
        }),
    ],
  ];
}

/** Runs every case (or the `only` ones) for about `minMs` each and returns the results. */
export function runBench(p: CryptoProvider, options: BenchOptions): BenchResult[] {
  const now = options.now ?? Date.now;
  const results: BenchResult[] = [];
  for (const [name, op] of benchCases(p)) {
    if (options.only && !options.only.some((o) => name.includes(o))) continue;
    op(); // warm up: first-use tables, caches, JIT-less XS still allocates on first call
    let ops = 0;
    let batch = 1;
    const started = now();
    let elapsed = 0;
    while (elapsed < options.minMs || ops < 2) {
      for (let i = 0; i < batch; i++) op();
      ops += batch;
      elapsed = now() - started;
      if (elapsed < options.minMs / 10) batch *= 2; // fewer clock reads for fast operations
    }
    const result = { provider: p.name, name, opsPerSecond: (ops * 1000) / Math.max(elapsed, 1), ops };
    options.report?.(result);
    results.push(result);
  }
  return results;
}

/** One line per result, the form the XS entries print and the runners parse. */
export function formatResult(r: BenchResult): string {
  return `bench ${r.provider} ${r.opsPerSecond.toFixed(1)} ${r.ops} ${r.name}`;
}

/** The inverse of `formatResult`; undefined for any other line. */
export function parseResult(line: string): BenchResult | undefined {
  const m = /^bench (\S+) ([\d.]+) (\d+) (.+)$/.exec(line);
  return m ? { provider: m[1]!, opsPerSecond: Number(m[2]), ops: Number(m[3]), name: m[4]! } : undefined;
}
