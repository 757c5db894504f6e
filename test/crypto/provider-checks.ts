/**
 * Known answers and refusal tables that every CryptoProvider must meet the same way. Runtime-
 * neutral (no Node APIs): test/crypto/provider.test.ts runs them on Node for noble and node, and
 * test/native/entries/provider.ts inside XS for the native provider.
 */
import { concat, fromHex, utf8Encode } from '../../src/bytes.js';
import type { CryptoProvider, CryptoReason, P256PrivateKey } from '../../src/crypto/provider.js';

export const N_HEX = 'ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551';
export const G_HEX =
  '046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296' +
  '4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5';
/** -G: same x, y' = p - y. */
export const NEG_G_HEX =
  '046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296' +
  'b01cbd1c01e58065711814b583f061e9d431cca994cea1313449bf97c840ae0a';

/** RFC 6979 A.2.5 (P-256). */
export const RFC6979 = {
  d: 'c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721',
  publicKey:
    '0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6' +
    '7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299',
  sample:
    'efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716' +
    'f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8',
  test:
    'f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367' +
    '019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083',
};

/** RFC 4231 §4.2, §4.3, §4.7 (key longer than the block size). */
export const RFC4231 = [
  {
    key: '0b'.repeat(20),
    data: utf8Encode('Hi There'),
    mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
  },
  {
    key: '4a656665', // "Jefe"
    data: utf8Encode('what do ya want for nothing?'),
    mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  },
  {
    key: 'aa'.repeat(131),
    data: utf8Encode('Test Using Larger Than Block-Size Key - Hash Key First'),
    mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  },
];

/** RFC 3394 §4.1: 128-bit KEK, 128-bit key data. */
export const RFC3394 = {
  kek: '000102030405060708090a0b0c0d0e0f',
  data: '00112233445566778899aabbccddeeff',
  wrapped: '1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5',
};

/** Deterministic test bytes. */
export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 17) & 255;
  return out;
}

/** (r, n - s): the other half's twin of an ECDSA signature, which must verify too (no low-S rule). */
export function highSTwin(signature: Uint8Array): Uint8Array {
  const s = BigInt(`0x${hexOf(signature.subarray(32))}`);
  return concat(signature.subarray(0, 32), fromHex((BigInt(`0x${N_HEX}`) - s).toString(16).padStart(64, '0')));
}

function hexOf(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Malformed inputs for which verify must return false without throwing: [what, publicKey, message, signature]. */
export function malformedVerifyCases(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): [string, unknown, unknown, unknown][] {
  const compressed = concat(new Uint8Array([2 + (publicKey[64]! & 1)]), publicKey.subarray(1, 33));
  const offCurve = publicKey.slice();
  offCurve[64]! ^= 1;
  return [
    ['63-byte signature', publicKey, message, signature.subarray(0, 63)],
    ['65-byte signature', publicKey, message, concat(signature, new Uint8Array(1))],
    ['DER-sized signature', publicKey, message, new Uint8Array(72)],
    ['r = 0', publicKey, message, concat(new Uint8Array(32), signature.subarray(32))],
    ['s = 0', publicKey, message, concat(signature.subarray(0, 32), new Uint8Array(32))],
    ['r = n', publicKey, message, concat(fromHex(N_HEX), signature.subarray(32))],
    ['s = n', publicKey, message, concat(signature.subarray(0, 32), fromHex(N_HEX))],
    ['compressed key', compressed, message, signature],
    ['off-curve key', offCurve, message, signature],
    ['identity key', new Uint8Array([0]), message, signature],
    ['all-zero 65-byte key', concat(new Uint8Array([4]), new Uint8Array(64)), message, signature],
    ['null key', null, message, signature],
    ['string message', publicKey, 'hello', signature],
    ['array signature', publicKey, message, Array.from(signature)],
    ['undefined signature', publicKey, message, undefined],
  ];
}

/** Peer public keys that ECDH must refuse with 'bad-key', made from a valid public key. */
export function invalidPeerCases(publicKey: Uint8Array): [string, unknown][] {
  const offCurve = publicKey.slice();
  offCurve[64]! ^= 1;
  const hybrid = publicKey.slice();
  hybrid[0] = 6 + (publicKey[64]! & 1);
  return [
    ['off-curve', offCurve],
    ['x ≥ p', concat(new Uint8Array([4]), new Uint8Array(32).fill(0xff), publicKey.subarray(33))],
    ['compressed', concat(new Uint8Array([2 + (publicKey[64]! & 1)]), publicKey.subarray(1, 33))],
    ['hybrid encoding', hybrid],
    ['identity (0x00)', new Uint8Array([0])],
    ['zeros', concat(new Uint8Array([4]), new Uint8Array(64))],
    ['raw x‖y without prefix', publicKey.subarray(1)],
    ['empty', new Uint8Array(0)],
    ['66 bytes', concat(publicKey, new Uint8Array(1))],
    ['not bytes', Array.from(publicKey)],
  ];
}

/** Scalars p256Import must refuse: out of range is 'bad-key', the wrong type or length 'bad-input'. */
export function invalidScalarCases(): [string, CryptoReason, unknown][] {
  return [
    ['0', 'bad-key', new Uint8Array(32)],
    ['n', 'bad-key', fromHex(N_HEX)],
    ['n + 1', 'bad-key', fromHex(`${N_HEX.slice(0, 62)}52`)],
    ['2^256 - 1', 'bad-key', new Uint8Array(32).fill(0xff)],
    ['31 bytes', 'bad-input', new Uint8Array(31).fill(1)],
    ['33 bytes', 'bad-input', new Uint8Array(33).fill(1)],
    ['empty', 'bad-input', new Uint8Array(0)],
    ['a string', 'bad-input', '01'],
  ];
}

/**
 * Calls every provider must refuse with the same CryptoError reason. `foreign` is a key made by
 * another provider; `key` one made by `p`.
 */
export function refusalCases(
  p: CryptoProvider,
  key: P256PrivateKey,
  foreign: P256PrivateKey,
): [string, CryptoReason, () => unknown][] {
  const k16 = bytes(16);
  const iv = bytes(12);
  const text = 'text' as unknown as Uint8Array;
  return [
    ['AES-256 key', 'bad-input', () => p.aesGcmEncrypt(bytes(32), iv, bytes(4), bytes(0))],
    ['15-byte key', 'bad-input', () => p.aesGcmEncrypt(bytes(15), iv, bytes(4), bytes(0))],
    ['16-byte IV', 'bad-input', () => p.aesGcmEncrypt(k16, bytes(16), bytes(4), bytes(0))],
    ['string', 'bad-input', () => p.aesGcmEncrypt(k16, iv, text, bytes(0))],
    ['decrypt, 8-byte IV', 'bad-input', () => p.aesGcmDecrypt(k16, bytes(8), bytes(20), bytes(0))],
    ['shorter than the tag', 'decrypt-failed', () => p.aesGcmDecrypt(k16, iv, bytes(15), bytes(0))],
    ['AES-192 KEK', 'bad-input', () => p.aesKeyWrap(bytes(24), bytes(16))],
    ['8-byte key data', 'bad-input', () => p.aesKeyWrap(k16, bytes(8))],
    ['empty key data', 'bad-input', () => p.aesKeyWrap(k16, bytes(0))],
    ['20-byte key data', 'bad-input', () => p.aesKeyWrap(k16, bytes(20))],
    ['unwrap, AES-256 KEK', 'bad-input', () => p.aesKeyUnwrap(bytes(32), bytes(24))],
    ['wrapped 16 bytes', 'decrypt-failed', () => p.aesKeyUnwrap(k16, bytes(16))],
    ['wrapped 25 bytes', 'decrypt-failed', () => p.aesKeyUnwrap(k16, bytes(25))],
    ['HKDF 8161', 'bad-input', () => p.hkdfSha256(bytes(8), bytes(0), bytes(0), 255 * 32 + 1)],
    ['HKDF 0', 'bad-input', () => p.hkdfSha256(bytes(8), bytes(0), bytes(0), 0)],
    ['HKDF 1.5', 'bad-input', () => p.hkdfSha256(bytes(8), bytes(0), bytes(0), 1.5)],
    ['sha256(null)', 'bad-input', () => p.sha256(null as unknown as Uint8Array)],
    ['HMAC key a string', 'bad-input', () => p.hmacSha256(text, bytes(4))],
    ['random -1', 'bad-input', () => p.randomBytes(-1)],
    ['random 1.5', 'bad-input', () => p.randomBytes(1.5)],
    ['sign a string', 'bad-input', () => p.ecdsaP256Sign(key, text)],
    ['foreign key in sign', 'bad-key', () => p.ecdsaP256Sign(foreign, bytes(4))],
    ['foreign key in ECDH', 'bad-key', () => p.ecdhP256(foreign, key.publicKey)],
    [
      'look-alike key object',
      'bad-key',
      () => p.ecdsaP256Sign({ provider: p.name, publicKey: key.publicKey }, bytes(4)),
    ],
  ];
}
