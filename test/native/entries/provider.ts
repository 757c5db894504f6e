/**
 * XS side of test/native/xs-provider.test.ts: the native provider (C over PSA Crypto, bound with
 * xsmc) inside the XS engine, checked against the same suites and tables as noble and node on
 * Node, and against what the node provider made. Prints (parsed by the Node test):
 *
 *   wycheproof FILE RUN VALID INVALID ACCEPTABLE     one per suite, then its failures:
 *   wycheproof-failure TEXT
 *   check NAME ok | check NAME FAIL DETAIL           self-contained checks
 *   made-key PUBLIC                                  a key the native provider generated …
 *   made-signature MESSAGE SIGNATURE                 … its signatures, for Node to verify
 *   made-shared SHARED                               ECDH of that key with Node's public key
 *   done CHECKS                                      the number of checks run
 */
import { concat, equal, fromHex, toHex, utf8Encode } from '../../../src/bytes.js';
import { nobleCrypto } from '../../../src/crypto/noble.js';
import { CryptoError, type CryptoProvider } from '../../../src/crypto/provider.js';
import { deviceIdentity, nativeCrypto } from '../../../src/moddable/native-crypto.js';
import {
  bytes,
  G_HEX,
  highSTwin,
  invalidPeerCases,
  invalidScalarCases,
  malformedVerifyCases,
  N_HEX,
  NEG_G_HEX,
  RFC3394,
  RFC4231,
  RFC6979,
  refusalCases,
} from '../../crypto/provider-checks.js';
import { runSuite, suites } from '../../crypto/wycheproof-suites.js';
import { emit, host, runMain } from '../../xs/entries/host.js';
import type { NativeProviderInput } from './provider-input.js';

declare const XS_INPUT: string;
const input = JSON.parse(XS_INPUT) as NativeProviderInput;

/** Runs one check: it returns true, or a string that says what is wrong; a throw is a failure too. */
let checks = 0;
function check(name: string, run: () => true | string): void {
  checks++;
  let result: true | string;
  try {
    result = run();
  } catch (e) {
    result = `threw ${String((e as Error)?.stack ?? e)}`;
  }
  emit('check', name.replace(/\s+/g, '_'), result === true ? 'ok' : `FAIL ${result.replace(/\s+/g, ' ')}`);
}

const same = (a: Uint8Array, hex: string, what: string) => toHex(a) === hex || `${what}: ${toHex(a)}, expected ${hex}`;

/** The CryptoError reason `run` throws, or what it did instead. */
function reasonOf(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    return e instanceof CryptoError ? e.reason : `${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
  return 'accepted';
}

function all(results: (true | string)[]): true | string {
  const wrong = results.filter((r) => r !== true);
  return wrong.length === 0 || wrong.join('; ');
}

function main(): void {
  const p: CryptoProvider = nativeCrypto();
  check('provider name', () => p.name === 'native' || p.name);

  // ---- Wycheproof: every selected case, as on Node ----
  for (const { file, groups } of input.wycheproof) {
    const suite = suites.find((s) => s.file === file);
    if (!suite) throw new Error(`no suite for ${file}`);
    const { tally, failures } = runSuite(suite, groups, p);
    emit('wycheproof', file, tally.run, tally.valid, tally.invalid, tally.acceptable);
    for (const failure of failures) emit('wycheproof-failure', failure.replace(/\s+/g, ' '));
  }

  // ---- keys ----
  check('known scalars give known public keys', () =>
    all([
      same(p.p256Import(fromHex(RFC6979.d)).publicKey, RFC6979.publicKey, 'RFC 6979 key'),
      same(p.p256Import(fromHex(`${'00'.repeat(31)}01`)).publicKey, G_HEX, '1·G'),
      same(p.p256Import(fromHex(`${N_HEX.slice(0, 62)}50`)).publicKey, NEG_G_HEX, '(n-1)·G'),
    ]),
  );
  check('scalars out of range or of the wrong length are refused', () =>
    all(
      invalidScalarCases().map(([what, reason, d]) => {
        const got = reasonOf(() => p.p256Import(d as Uint8Array));
        return got === reason || `${what}: ${got}, expected ${reason}`;
      }),
    ),
  );
  check('a key keeps its public key and hides its scalar', () => {
    const key = p.p256Generate();
    const pub = key.publicKey;
    key.publicKey.fill(0);
    if (!equal(key.publicKey, pub) || pub.length !== 65 || pub[0] !== 4) return 'public key changed or malformed';
    if (key.provider !== 'native') return `provider ${key.provider}`;
    if (JSON.stringify(key).includes('"d"')) return 'JSON shows d';
    return equal(p.p256Generate().publicKey, pub) ? 'two generated keys are equal' : true;
  });
  check('refusals match noble and node', () => {
    const key = p.p256Generate();
    const foreign = nobleCrypto().p256Generate();
    return all(
      refusalCases(p, key, foreign).map(([what, reason, run]) => {
        const got = reasonOf(run);
        return got === reason || `${what}: ${got}, expected ${reason}`;
      }),
    );
  });

  // ---- ECDSA ----
  check('RFC 6979 A.2.5: deterministic signatures, as noble', () =>
    all([
      same(p.ecdsaP256Sign(p.p256Import(fromHex(RFC6979.d)), utf8Encode('sample')), RFC6979.sample, 'sample'),
      same(p.ecdsaP256Sign(p.p256Import(fromHex(RFC6979.d)), utf8Encode('test')), RFC6979.test, 'test'),
    ]),
  );
  check('high-S twin verifies, and not for another message', () => {
    const pub = fromHex(RFC6979.publicKey);
    const twin = highSTwin(fromHex(RFC6979.sample));
    if (!p.ecdsaP256Verify(pub, utf8Encode('sample'), twin)) return 'twin refused';
    return !p.ecdsaP256Verify(pub, utf8Encode('Sample'), twin) || 'twin verifies another message';
  });
  check('verify returns false, never throws, on malformed input', () => {
    const key = p.p256Generate();
    const msg = bytes(20);
    const sig = p.ecdsaP256Sign(key, msg);
    return all([
      p.ecdsaP256Verify(key.publicKey, msg, sig) || 'the valid signature does not verify',
      ...malformedVerifyCases(key.publicKey, msg, sig).map(([what, k, m, s]) => {
        try {
          const result = p.ecdsaP256Verify(k as Uint8Array, m as Uint8Array, s as Uint8Array);
          return result === false || `${what}: ${String(result)}`;
        } catch (e) {
          return `${what}: threw ${String(e)}`;
        }
      }),
    ]);
  });
  check("node's signatures verify, tampered ones do not", () => {
    const pub = fromHex(input.node.key.publicKey);
    return all(
      input.node.signatures.flatMap(({ message, signature }) => {
        const m = fromHex(message);
        const s = fromHex(signature);
        const tampered = s.slice();
        tampered[10]! ^= 1;
        return [
          p.ecdsaP256Verify(pub, m, s) || `${m.length}-byte message refused`,
          !p.ecdsaP256Verify(pub, m, tampered) || `${m.length}-byte message: tampered signature verifies`,
          !p.ecdsaP256Verify(pub, concat(m, new Uint8Array(1)), s) || `${m.length}-byte message: longer verifies`,
        ];
      }),
    );
  });
  const made = p.p256Generate();
  emit('made-key', toHex(made.publicKey));
  for (const { message } of input.node.signatures) {
    emit('made-signature', message || '-', toHex(p.ecdsaP256Sign(made, fromHex(message))));
  }

  // ---- ECDH ----
  emit('made-shared', toHex(p.ecdhP256(made, fromHex(input.node.key.publicKey))));
  check('ECDH of imported and generated keys agrees; 1·Q is the x of Q', () => {
    const a = p.p256Generate();
    const b = p.p256Import(fromHex(input.node.key.d));
    return all([
      same(p.ecdhP256(a, b.publicKey), toHex(p.ecdhP256(b, a.publicKey)), 'a·B vs b·A'),
      same(
        p.ecdhP256(p.p256Import(fromHex(`${'00'.repeat(31)}01`)), fromHex(RFC6979.publicKey)),
        RFC6979.publicKey.slice(2, 66),
        '1·Q',
      ),
    ]);
  });
  check('invalid peer points are refused with bad-key', () => {
    const key = p.p256Generate();
    return all(
      invalidPeerCases(p.p256Generate().publicKey).map(([what, peer]) => {
        const got = reasonOf(() => p.ecdhP256(key, peer as Uint8Array));
        return got === 'bad-key' || `${what}: ${got}`;
      }),
    );
  });

  // ---- symmetric ----
  check("AES-128-GCM: same bytes as node, opens node's, refuses tampering", () =>
    all(
      input.node.gcm.flatMap(({ key, iv, plaintext, aad, sealed }) => {
        const [k, n, pt, a, s] = [key, iv, plaintext, aad, sealed].map(fromHex) as [
          Uint8Array,
          Uint8Array,
          Uint8Array,
          Uint8Array,
          Uint8Array,
        ];
        const tampered = s.slice();
        tampered[tampered.length - 1]! ^= 0x80;
        return [
          same(p.aesGcmEncrypt(k, n, pt, a), sealed, `seal ${pt.length}/${a.length}`),
          same(p.aesGcmDecrypt(k, n, s, a), plaintext, `open ${pt.length}/${a.length}`),
          reasonOf(() => p.aesGcmDecrypt(k, n, tampered, a)) === 'decrypt-failed' || 'tampered tag opened',
          reasonOf(() => p.aesGcmDecrypt(k, n, s, concat(a, new Uint8Array(1)))) === 'decrypt-failed' ||
            'other AAD opened',
        ];
      }),
    ),
  );
  check("AES key wrap: same bytes as node, unwraps node's, refuses tampering and another KEK", () =>
    all([
      same(p.aesKeyWrap(fromHex(RFC3394.kek), fromHex(RFC3394.data)), RFC3394.wrapped, 'RFC 3394 §4.1'),
      ...input.node.wrap.flatMap(({ kek, data, wrapped }) => {
        const w = fromHex(wrapped);
        const tampered = w.slice();
        tampered[0]! ^= 1;
        return [
          same(p.aesKeyWrap(fromHex(kek), fromHex(data)), wrapped, `wrap ${data.length / 2}`),
          same(p.aesKeyUnwrap(fromHex(kek), w), data, `unwrap ${data.length / 2}`),
          reasonOf(() => p.aesKeyUnwrap(fromHex(kek), tampered)) === 'decrypt-failed' || 'tampered unwrapped',
          reasonOf(() => p.aesKeyUnwrap(bytes(16, 8), w)) === 'decrypt-failed' || 'wrong KEK unwrapped',
        ];
      }),
    ]),
  );
  check('HKDF, HMAC and SHA-256 give what node gives', () =>
    all([
      ...input.node.hkdf.map(({ ikm, salt, info, length, okm }) =>
        same(p.hkdfSha256(fromHex(ikm), fromHex(salt), fromHex(info), length), okm, `HKDF ${length}`),
      ),
      same(
        p.hkdfSha256(bytes(32, 9), new Uint8Array(0), bytes(3), 42),
        toHex(p.hkdfSha256(bytes(32, 9), new Uint8Array(32), bytes(3), 42)),
        'empty salt = HashLen zeros',
      ),
      ...input.node.hmac.map(({ key, data, mac }) =>
        same(p.hmacSha256(fromHex(key), fromHex(data)), mac, `HMAC ${key.length / 2}`),
      ),
      ...RFC4231.map((c) => same(p.hmacSha256(fromHex(c.key), c.data), c.mac, 'RFC 4231')),
      same(
        p.sha256(utf8Encode('abc')),
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
        'SHA-256 abc',
      ),
    ]),
  );

  // ---- random ----
  check('random bytes: fresh, of the requested length, past 64 KiB', () => {
    for (const n of [0, 1, 12, 16, 32, 70000]) {
      const r = p.randomBytes(n);
      if (r.length !== n || r.constructor !== Uint8Array) return `randomBytes(${n}) gave ${r.length}`;
    }
    const seen = new Set<string>();
    for (let i = 0; i < 16; i++) seen.add(toHex(p.randomBytes(16)));
    if (seen.size !== 16) return 'repeated 16-byte values';
    const big = p.randomBytes(70000);
    return toHex(big.subarray(65536, 65568)) !== '00'.repeat(32) || 'zeros past 64 KiB';
  });
  check('crypto.getRandomValues is installed (noble reads it)', () => {
    const c = (globalThis as { crypto?: { getRandomValues?: unknown } }).crypto;
    return typeof c?.getRandomValues === 'function' || 'missing';
  });

  // ---- the device identity from the host's HUK file ----
  check('device identity: from the HUK file, as derived on Node, and usable', () => {
    const first = deviceIdentity();
    const again = deviceIdentity();
    const msg = bytes(33);
    return all([
      first.source === 'file' || `source ${first.source}`,
      same(first.id, input.device.id, 'device id'),
      same(first.key.publicKey, input.device.publicKey, 'device public key'),
      same(again.key.publicKey, input.device.publicKey, 'device public key again'),
      p.ecdsaP256Verify(first.key.publicKey, msg, p.ecdsaP256Sign(first.key, msg)) || 'device key signature',
    ]);
  });

  // ---- the bindings on their own: misuse is a TypeError or RangeError, never a crash ----
  check('the C bindings check their arguments', () => {
    const sha = native<(...args: unknown[]) => unknown>('xs_cf_sha256');
    const gcm = native<(...args: unknown[]) => unknown>('xs_cf_aes_gcm_encrypt');
    const sign = native<(...args: unknown[]) => unknown>('xs_cf_ecdsa_sign');
    const hkdf = native<(...args: unknown[]) => unknown>('xs_cf_hkdf_sha256');
    const rand = native<(...args: unknown[]) => unknown>('xs_cf_random');
    const errorOf = (run: () => unknown) => {
      try {
        run();
        return 'accepted';
      } catch (e) {
        return `${(e as Error).name}`;
      }
    };
    const key = p.p256Generate();
    const cases: [string, string, () => unknown][] = [
      ['sha256 no argument', 'TypeError', () => sha()],
      ['sha256 a string', 'TypeError', () => sha('abc')],
      ['sha256 an array', 'TypeError', () => sha([1, 2])],
      ['sha256 a key object', 'TypeError', () => sha(key)],
      ['sha256 an Int16Array', 'TypeError', () => sha(new Int16Array(2))],
      ['gcm 15-byte key', 'RangeError', () => gcm(new Uint8Array(15), new Uint8Array(12), bytes(1), bytes(0))],
      ['gcm 8-byte IV', 'RangeError', () => gcm(new Uint8Array(16), new Uint8Array(8), bytes(1), bytes(0))],
      ['sign without a key', 'TypeError', () => sign.call({}, bytes(1))],
      ['sign with a key object of the class but no key', 'TypeError', () => sign.call(Object.create(key), bytes(1))],
      ['hkdf length 0', 'RangeError', () => hkdf(bytes(1), bytes(0), bytes(0), 0)],
      ['hkdf length a string', 'TypeError', () => hkdf(bytes(1), bytes(0), bytes(0), '32')],
      ['random -1', 'RangeError', () => rand(-1)],
      ['random 2.5', 'RangeError', () => rand(2.5)],
    ];
    const ok = new Uint8Array(sha(new Uint8Array([0x61, 0x62, 0x63]).buffer) as ArrayBuffer);
    return all([
      same(ok, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'sha256 of an ArrayBuffer'),
      ...cases.map(([what, want, run]) => {
        const got = errorOf(run);
        return got === want || `${what}: ${got}, expected ${want}`;
      }),
    ]);
  });

  // ---- keys are host objects: collecting them runs the C destructor, and the heap stays flat ----
  check('4,000 keys come and go without growing the heap', () => {
    const churn = () => {
      for (let i = 0; i < 2000; i++) p.p256Import(bytes(32, i + 1));
    };
    churn();
    host.gc();
    const before = host.heapUsed();
    churn();
    host.gc();
    const after = host.heapUsed();
    return after - before <= 4096 || `heap grew by ${after - before} bytes`;
  });
  emit('done', checks);
}

runMain(main);
