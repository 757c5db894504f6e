/**
 * Receiver-side ratios of issue 13 §2, measured in process with the node:crypto provider:
 *
 * - `measureDataPath`: the cloud data path for one data message — parse (`parseDataMessage`),
 *   resolve the cached session (`SessionTable.cached`), window pre-check (`precheckWindow`),
 *   decrypt (`openData`) — against a raw node:crypto AES-128-GCM decrypt of the same ciphertext
 *   with the nonce and AAD already at hand. `ratio` = ours ops/s ÷ raw ops/s (1 = no overhead).
 * - `measureKeyMessage`: `openKeyMessage` with the device certificate cached against the sum of
 *   its primitives done with raw node:crypto (ES256 verify with a cached public KeyObject, ECDH,
 *   HKDF-SHA-256, AES key unwrap, AES-128-GCM decrypt) on the same message's bytes.
 *   `ratio` = primitives back to back (one case) µs ÷ ours µs; `ratioSeparate` uses the sum of
 *   each primitive timed alone in its own loop instead (hot caches: lower, noisier);
 *   `insidePrimitives` is the share of an open spent inside the provider's calls themselves,
 *   timed call by call through a wrapped provider (what the open adds is the rest).
 *
 * Both sides are measured interleaved (short alternating rounds) so that the load of a shared
 * machine falls on both alike. Options take `{ seconds }` (total measuring time); results are
 * plain numbers. Run: `npm run build && node dist/bench/data-path.js [seconds] [runs]` — prints
 * one JSON line per measurement.
 */
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, type KeyObject, verify } from 'node:crypto';
import { deviceCertificateVerifier } from '../cloud/pki/verify.js';
import type { SessionSealer } from '../cloud/service/at-rest.js';
import { precheckWindow } from '../cloud/service/data-path.js';
import { SessionTable } from '../cloud/service/session-table.js';
import type { Store } from '../cloud/store/store.js';
import { nodeCrypto } from '../node/crypto.js';
import { concat, equal } from '../src/bytes.js';
import { decode, encode, encodeAsGiven } from '../src/cbor/index.js';
import { decodeEncrypt, kdfContextA128kw } from '../src/cose/encrypt.js';
import { decodeSign1, sign1ToBeSigned } from '../src/cose/sign1.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import {
  cloudKeyId,
  DEFAULT_MAX_MESSAGE_BYTES,
  encodePartialIv,
  makeKeyMessage,
  newSessionKey,
  openData,
  openKeyMessage,
  parseDataMessage,
  sealData,
} from '../src/profile/index.js';
import { makePki } from '../test/fixtures/pki.js';

export interface RatioOptions {
  /** Total measuring time in seconds, both sides together (default 2). */
  seconds?: number;
}

export interface DataPathResult {
  /** ours ÷ baseline in operations per second; the goal is ≥ 0.7. */
  ratio: number;
  /** Data messages through the path per second. */
  ours: number;
  /** Raw AES-128-GCM decrypts of the same bytes per second. */
  baseline: number;
  /** Microseconds per message, ours and baseline. */
  oursUs: number;
  baselineUs: number;
}

export interface KeyMessageResult {
  /**
   * baseline µs ÷ ours µs, the baseline being the five primitives called back to back in one
   * case (as the open calls them: same cache and allocation conditions); the goal is ≥ 0.85.
   */
  ratio: number;
  /** Σ of the primitives each timed in a loop of its own ÷ ours: flatters the primitives (hot caches). */
  ratioSeparate: number;
  sumUs: number;
  /** openKeyMessage calls per second (certificate cached). */
  ours: number;
  /** 1 / Σ primitive times: "key messages per second" if only the primitives cost. */
  baseline: number;
  oursUs: number;
  baselineUs: number;
  verifyUs: number;
  ecdhUs: number;
  hkdfUs: number;
  unwrapUs: number;
  gcmUs: number;
  /**
   * The share of an open spent inside the crypto provider's calls (the primitives as the open
   * makes them, the signed-content digest included), timed call by call with a wrapped provider.
   */
  insidePrimitives: number;
}

const ROUND_MS = 25;

/** Interleaved timing: each case runs ~ROUND_MS per round, in turn, until `seconds` are used. */
function interleave(cases: (() => unknown)[], seconds: number): number[] {
  // warm up: each case a quarter of a second, so that both sides run optimised code
  for (const fn of cases) for (const until = performance.now() + 250; performance.now() < until; ) fn();
  const ops = cases.map(() => 0);
  const ms = cases.map(() => 0);
  const stop = performance.now() + seconds * 1000;
  while (performance.now() < stop) {
    for (let c = 0; c < cases.length; c++) {
      const fn = cases[c]!;
      const start = performance.now();
      const until = start + ROUND_MS;
      let n = 0;
      let now = start;
      while (now < until) {
        fn();
        fn();
        fn();
        fn();
        n += 4;
        now = performance.now();
      }
      ops[c]! += n;
      ms[c]! += now - start;
    }
  }
  return ops.map((n, c) => (ms[c]! * 1000) / n); // µs per operation
}

function gcmDecryptRaw(key: Uint8Array, nonce: Uint8Array, ct: Uint8Array, aad: Uint8Array): Uint8Array {
  const split = ct.length - 16;
  const d = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
  d.setAuthTag(ct.subarray(split));
  d.setAAD(aad);
  const body = d.update(ct.subarray(0, split));
  d.final();
  return body;
}

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

/** The data path of one message against a raw GCM decrypt of the same bytes. */
export function measureDataPath(options: RatioOptions = {}): DataPathResult {
  const crypto = nodeCrypto();
  const session = newSessionKey(crypto, 7);
  const store = { windowSize: 64 } as Store;
  const sessions = new SessionTable(store, {} as SessionSealer, 1000);
  sessions.remember('bench-1', session, new Uint8Array(0));
  const N = 512;
  const messages: Uint8Array[] = [];
  const raw: { nonce: Uint8Array; aad: Uint8Array; ct: Uint8Array }[] = [];
  for (let seq = 0; seq < N; seq++) {
    const bytes = sealData(crypto, session, seq + 1000, reading(seq));
    messages.push(bytes);
    const piv = encodePartialIv(seq + 1000);
    const nonce = Uint8Array.from(session.baseIv);
    for (let i = 0; i < piv.length; i++) nonce[12 - piv.length + i]! ^= piv[i]!;
    const fields = (decode(bytes, { outerTags: [16] }) as { value: Uint8Array[] }).value;
    const aad = encodeAsGiven(['Encrypt0', fields[0]!, new Uint8Array(0)]);
    raw.push({ nonce, aad, ct: new Uint8Array(fields[2]!) });
  }
  let i = 0;
  let j = 0;
  const ours = () => {
    const bytes = messages[i++ & (N - 1)]!;
    const parsed = parseDataMessage(bytes, DEFAULT_MAX_MESSAGE_BYTES);
    const live = sessions.cached('bench-1', parsed.kid)!;
    if (precheckWindow(live, parsed.seq, false) !== undefined) throw new Error('window');
    return openData(crypto, parsed, live.key);
  };
  const baseline = () => {
    const m = raw[j++ & (N - 1)]!;
    return gcmDecryptRaw(session.key, m.nonce, m.ct, m.aad);
  };
  if (!equal(ours(), baseline())) throw new Error('the two sides disagree');
  const [oursUs, baselineUs] = interleave([ours, baseline], options.seconds ?? 2) as [number, number];
  return { ratio: baselineUs / oursUs, ours: 1e6 / oursUs, baseline: 1e6 / baselineUs, oursUs, baselineUs };
}

/** openKeyMessage (certificate cached) against the sum of its primitives on the same bytes. */
export async function measureKeyMessage(options: RatioOptions = {}): Promise<KeyMessageResult> {
  const crypto = nodeCrypto();
  const pki = await makePki({ deviceIds: ['bench-1'] });
  const dev = pki.devices.get('bench-1')!;
  const cloudKey = crypto.p256Import(pki.cloud.privateScalar);
  const cloudKid = cloudKeyId(crypto, cloudKey.publicKey);
  const session = newSessionKey(crypto, 1);
  const message = makeKeyMessage(crypto, {
    deviceId: 'bench-1',
    deviceKey: crypto.p256Import(dev.privateScalar),
    deviceCertificate: dev.der,
    cloudPublicKey: pki.cloud.publicKey,
    session,
  });
  const openOptions = {
    cloudKey: (kid: Uint8Array) => (equal(kid, cloudKid) ? cloudKey : undefined),
    verifyCertificate: deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] }),
    topicDeviceId: 'bench-1',
  };
  const ours = () => openKeyMessage(crypto, message, openOptions);
  const timed = timedProvider(crypto);

  // The primitives' inputs, taken from the message once (outside the timing).
  const sign1 = decodeSign1(message);
  const devicePublic = ours().devicePublicKey;
  const tbs = sign1ToBeSigned(sign1.protectedBytes, new Uint8Array(0), sign1.payload!);
  const keyObject: KeyObject = createPublicKey({
    key: Buffer.from(
      concat(
        Uint8Array.of(0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01),
        Uint8Array.of(0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00),
        devicePublic,
      ),
    ),
    format: 'der',
    type: 'spki',
  });
  const encrypt = decodeEncrypt(sign1.payload!);
  const recipient = encrypt.recipients[0]!;
  const epk = recipient.unprotected.get(-1) as Map<number, Uint8Array>;
  const peer = concat(Uint8Array.of(4), epk.get(-2)!, epk.get(-3)!);
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(pki.cloud.privateScalar);
  const info = kdfContextA128kw(recipient.protectedBytes, new TextEncoder().encode('bench-1'));
  const shared = ecdh.computeSecret(peer);
  const kek = new Uint8Array(hkdfSync('sha256', shared, new Uint8Array(0), info, 16));
  const unwrap = (): Uint8Array => {
    const d = createDecipheriv('id-aes128-wrap', kek, Uint8Array.of(0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6));
    return concat(d.update(recipient.ciphertext), d.final());
  };
  const cek = unwrap();
  const iv = encrypt.unprotected.get(5) as Uint8Array;
  const aad = encodeAsGiven(['Encrypt', encrypt.protectedBytes, new Uint8Array(0)]);
  if (!verify('sha256', tbs, { key: keyObject, dsaEncoding: 'ieee-p1363' }, sign1.signature)) throw new Error('verify');
  gcmDecryptRaw(cek, iv, encrypt.ciphertext, aad);

  const chain = () => {
    verify('sha256', tbs, { key: keyObject, dsaEncoding: 'ieee-p1363' }, sign1.signature);
    hkdfSync('sha256', ecdh.computeSecret(peer), new Uint8Array(0), info, 16);
    unwrap();
    return gcmDecryptRaw(cek, iv, encrypt.ciphertext, aad);
  };
  // The ratio's two sides in one interleaving of their own; the primitives alone in another (with
  // all seven in one, each side's rounds fall among the others' garbage and caches).
  const seconds = options.seconds ?? 3;
  const [oursUs, baselineUs] = interleave([ours, chain], seconds / 2) as [number, number];
  const primitives = [
    () => verify('sha256', tbs, { key: keyObject, dsaEncoding: 'ieee-p1363' }, sign1.signature),
    () => ecdh.computeSecret(peer),
    () => hkdfSync('sha256', shared, new Uint8Array(0), info, 16),
    unwrap,
    () => gcmDecryptRaw(cek, iv, encrypt.ciphertext, aad),
  ];
  const [verifyUs, ecdhUs, hkdfUs, unwrapUs, gcmUs] = interleave(primitives, seconds / 2) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const sumUs = verifyUs + ecdhUs + hkdfUs + unwrapUs + gcmUs;
  const insidePrimitives = primitiveShare(() => openKeyMessage(timed.provider, message, openOptions), timed);
  return {
    ratio: baselineUs / oursUs,
    ratioSeparate: sumUs / oursUs,
    sumUs,
    ours: 1e6 / oursUs,
    baseline: 1e6 / baselineUs,
    oursUs,
    baselineUs,
    verifyUs,
    ecdhUs,
    hkdfUs,
    unwrapUs,
    gcmUs,
    insidePrimitives,
  };
}

interface TimedProvider {
  provider: CryptoProvider;
  /** ms spent inside the provider's calls so far. */
  spent: number;
}

/** `crypto` with every call timed into `spent`. */
function timedProvider(crypto: CryptoProvider): TimedProvider {
  const timed = { spent: 0 } as TimedProvider;
  const provider: Record<string, unknown> = {};
  for (const name of Object.keys(crypto) as (keyof CryptoProvider)[]) {
    const member = crypto[name];
    if (typeof member !== 'function') {
      provider[name] = member;
      continue;
    }
    const fn = member as (...args: unknown[]) => unknown;
    provider[name] = (...args: unknown[]) => {
      const start = performance.now();
      try {
        return fn.apply(crypto, args);
      } finally {
        timed.spent += performance.now() - start;
      }
    };
  }
  timed.provider = provider as unknown as CryptoProvider;
  return timed;
}

/** Share of `open`'s time spent in `timed`'s calls, over ~1 s after a warm-up. */
function primitiveShare(open: () => unknown, timed: TimedProvider): number {
  for (const until = performance.now() + 250; performance.now() < until; ) open();
  timed.spent = 0;
  const start = performance.now();
  while (performance.now() - start < 1000) open();
  return timed.spent / (performance.now() - start);
}

const round = (x: number) => Math.round(x * 1000) / 1000;
const rounded = (r: object) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v as number)]));

if (import.meta.url === `file://${process.argv[1]}`) {
  const seconds = Number(process.argv[2] ?? 2);
  const runs = Number(process.argv[3] ?? 3);
  for (let run = 1; run <= runs; run++) {
    console.log(JSON.stringify({ case: 'data-path', run, seconds, ...rounded(measureDataPath({ seconds })) }));
    console.log(
      JSON.stringify({ case: 'key-message', run, seconds, ...rounded(await measureKeyMessage({ seconds })) }),
    );
  }
}
