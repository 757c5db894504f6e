/**
 * The input of the C test program (native/test/cf_test.c): the Wycheproof cases cose-flow's
 * parameters select, read from test/vectors/wycheproof (see its README),
 * and known answers computed on Node. See cf_test.c for the line format.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import { suites, type VectorGroup, type VectorTest } from '../crypto/wycheproof-suites.js';
import { readVectorJson } from '../vectors.js';
import { bytesFromBig, deviceIdentityFromSecret, P256_N, p256PublicKey, scalarFromSeed, sha256 } from './reference.js';

type Fields = (g: VectorGroup, t: VectorTest) => string[];

/** How each Wycheproof file's cases become C test lines: the kind, and the fields after RESULT. */
const C_CASES: Record<string, { kind: string; fields: Fields }> = {
  'ecdsa_secp256r1_sha256_p1363_test.json': {
    kind: 'ecdsa',
    fields: (g, t) => [(g.publicKey as { uncompressed: string }).uncompressed, t.msg as string, t.sig as string],
  },
  'ecdh_secp256r1_ecpoint_test.json': {
    kind: 'ecdh',
    fields: (_g, t) => [scalar32(t.private as string), t.public as string, t.shared as string],
  },
  'aes_gcm_test.json': {
    kind: 'gcm',
    fields: (_g, t) => ['key', 'iv', 'aad', 'msg', 'ct', 'tag'].map((f) => t[f] as string),
  },
  'aes_wrap_test.json': { kind: 'kw', fields: (_g, t) => ['key', 'msg', 'ct'].map((f) => t[f] as string) },
  'hkdf_sha256_test.json': {
    kind: 'hkdf',
    fields: (_g, t) => [t.ikm as string, t.salt as string, t.info as string, String(t.size), t.okm as string],
  },
};

/** The Wycheproof selection of test/crypto/wycheproof-suites.ts, with the C program's kind of each file. */
export const WYCHEPROOF_SELECTION = suites.map((suite) => {
  const c = C_CASES[suite.file];
  if (!c) throw new Error(`test/native/cases.ts: no C case format for ${suite.file}`);
  return { ...suite, ...c };
});

/** A big-endian integer of any hex length as exactly 32 bytes, or '' when it does not fit. */
function scalar32(hex: string): string {
  let h = hex;
  while (h.length > 64 && h.startsWith('00')) h = h.slice(2);
  return h.length > 64 ? '' : h.padStart(64, '0');
}

const field = (hex: string | Uint8Array) => {
  const text = typeof hex === 'string' ? hex : toHex(hex);
  return text === '' ? '-' : text;
};

function line(kind: string, where: string, ...fields: (string | Uint8Array)[]): string {
  return [kind, where, ...fields.map(field)].join(' ');
}

/** RFC 6979 A.2.5 (P-256, SHA-256). */
const RFC6979 = {
  d: 'c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721',
  sample:
    'efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716' +
    'f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8',
  test:
    'f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367' +
    '019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083',
};

export interface CTestCases {
  text: string;
  /** Wycheproof cases written, per kind. */
  wycheproof: Record<string, number>;
  /** Known-answer cases written, per kind (selftest counts its own checks). */
  known: Record<string, number>;
}

export function cTestCases(): CTestCases {
  const lines: string[] = ['# cose-flow native C test cases (test/native/cases.ts)'];
  const wycheproof: Record<string, number> = {};
  for (const suite of WYCHEPROOF_SELECTION) {
    const vectors = readVectorJson<{ testGroups: VectorGroup[] }>('wycheproof', suite.file);
    let n = 0;
    for (const group of vectors.testGroups.filter(suite.select)) {
      for (const t of group.tests) {
        lines.push(line(suite.kind, `${suite.file}#${t.tcId}`, t.result, ...suite.fields(group, t)));
        n++;
      }
    }
    if (n !== suite.expectedSelected) {
      throw new Error(`${suite.file}: selected ${n} tests, expected ${suite.expectedSelected}`);
    }
    wycheproof[suite.kind] = n;
  }

  const known: Record<string, number> = {};
  const add = (kind: string, where: string, ...fields: (string | Uint8Array)[]) => {
    lines.push(line(kind, where, ...fields));
    known[kind] = (known[kind] ?? 0) + 1;
  };
  for (const [where, data] of [
    ['empty', new Uint8Array(0)],
    ['abc', utf8Encode('abc')],
    ['1000', randomBytes(1000)],
  ] as const) {
    add('sha256', where, data, sha256(data));
  }
  const hmacCases: [string, Uint8Array, Uint8Array][] = [
    ['rfc4231-1', fromHex('0b'.repeat(20)), utf8Encode('Hi There')],
    ['rfc4231-2', utf8Encode('Jefe'), utf8Encode('what do ya want for nothing?')],
    ['rfc4231-6', fromHex('aa'.repeat(131)), utf8Encode('Test Using Larger Than Block-Size Key - Hash Key First')],
    ['empty-key', new Uint8Array(0), utf8Encode('data')],
    ['empty-both', new Uint8Array(0), new Uint8Array(0)],
    ['key-64', randomBytes(64), randomBytes(10)],
    ['key-65', randomBytes(65), randomBytes(10)],
    ['key-9000', randomBytes(9000), randomBytes(3)],
  ];
  for (const [where, key, data] of hmacCases) {
    add('hmac', where, key, data, new Uint8Array(createHmac('sha256', key).update(data).digest()));
  }
  const one = bytesFromBig(1n, 32);
  const nMinus1 = bytesFromBig(P256_N - 1n, 32);
  for (const [where, d] of [
    ['rfc6979', fromHex(RFC6979.d)],
    ['1', one],
    ['n-1', nMinus1],
    ['random', scalarFromSeed(randomBytes(48))],
  ] as const) {
    add('public', where, d, p256PublicKey(d));
  }
  add('sign', 'rfc6979-sample', RFC6979.d, utf8Encode('sample'), RFC6979.sample);
  add('sign', 'rfc6979-test', RFC6979.d, utf8Encode('test'), RFC6979.test);
  const seeds: [string, Uint8Array][] = [
    ['zero', new Uint8Array(48)],
    ['ones', new Uint8Array(48).fill(0xff)],
    ['n-2', bytesFromBig(P256_N - 2n, 48)],
    ['n-1', bytesFromBig(P256_N - 1n, 48)],
    ['n', bytesFromBig(P256_N, 48)],
    ['2(n-1)', bytesFromBig(2n * (P256_N - 1n), 48)],
    ...Array.from({ length: 20 }, (_, i): [string, Uint8Array] => [`random-${i}`, randomBytes(48)]),
  ];
  for (const [where, seed] of seeds) add('seed', where, seed, scalarFromSeed(seed));
  for (let i = 0; i < 5; i++) {
    const secret = randomBytes(32);
    const identity = deviceIdentityFromSecret(secret);
    add('device', `random-${i}`, secret, identity.publicKey, identity.id);
  }
  lines.push('selftest host');
  return { text: `${lines.join('\n')}\n`, wycheproof, known };
}
