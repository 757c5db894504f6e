/**
 * Boundary checks shared by every `CryptoProvider`, so all of them refuse the same inputs
 * with the same `CryptoError` reason. Runtime-neutral (no Node APIs): this runs in XS.
 */
import {
  AES128_KEY_BYTES,
  CryptoError,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  HKDF_SHA256_MAX_BYTES,
  P256_PUBLIC_KEY_BYTES,
  P256_SCALAR_BYTES,
  P256_SIGNATURE_BYTES,
} from './provider.js';

/** The order n of the P-256 group, big-endian. */
export const P256_ORDER = new Uint8Array([
  0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
  0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
]);

/** RFC 3394 §2.2.3.1 default initial value. */
export const AES_KW_DEFAULT_IV = new Uint8Array([0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6]);

export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/** Throws `CryptoError('bad-input')` unless `value` is a Uint8Array (of `length` bytes, when given). */
export function checkBytes(value: unknown, name: string, length?: number): Uint8Array {
  if (!isBytes(value)) throw new CryptoError('bad-input', `${name} must be a Uint8Array`);
  if (length !== undefined && value.length !== length) {
    throw new CryptoError('bad-input', `${name} must be ${length} bytes, got ${value.length}`);
  }
  return value;
}

/** A non-negative safe integer, else `CryptoError('bad-input')`. */
export function checkLength(value: unknown, name: string, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new CryptoError('bad-input', `${name} must be an integer in 0..${max}, got ${String(value)}`);
  }
  return value;
}

export function checkHkdfLength(length: unknown): number {
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 1 || length > HKDF_SHA256_MAX_BYTES) {
    throw new CryptoError('bad-input', `HKDF length must be an integer in 1..${HKDF_SHA256_MAX_BYTES}, got ${length}`);
  }
  return length;
}

export function checkGcmArgs(key: unknown, iv: unknown, data: unknown, aad: unknown): void {
  checkBytes(key, 'AES-GCM key', AES128_KEY_BYTES);
  checkBytes(iv, 'AES-GCM IV', GCM_IV_BYTES);
  checkBytes(data, 'AES-GCM input');
  checkBytes(aad, 'AES-GCM AAD');
}

/** A ciphertext shorter than the tag cannot be authentic: that is a decryption failure, not a usage error. */
export function checkGcmCiphertext(ciphertextAndTag: Uint8Array): void {
  if (ciphertextAndTag.length < GCM_TAG_BYTES) {
    throw new CryptoError('decrypt-failed', 'AES-GCM ciphertext is shorter than the tag');
  }
}

export function checkKeyWrapArgs(kek: unknown, keyData: unknown): void {
  checkBytes(kek, 'AES key wrap KEK', AES128_KEY_BYTES);
  const data = checkBytes(keyData, 'AES key wrap key data');
  if (data.length < 16 || data.length % 8 !== 0) {
    throw new CryptoError(
      'bad-input',
      `AES key wrap key data must be a multiple of 8 bytes, at least 16; got ${data.length}`,
    );
  }
}

/**
 * A wrapped key that is not (n+1)·8 bytes with n ≥ 2 cannot come from `aesKeyWrap`: like a failed
 * integrity check, that is a decryption failure of untrusted input.
 */
export function checkKeyUnwrapArgs(kek: unknown, wrapped: unknown): void {
  checkBytes(kek, 'AES key wrap KEK', AES128_KEY_BYTES);
  const data = checkBytes(wrapped, 'wrapped key');
  if (data.length < 24 || data.length % 8 !== 0) {
    throw new CryptoError(
      'decrypt-failed',
      `wrapped key must be a multiple of 8 bytes, at least 24; got ${data.length}`,
    );
  }
}

/** 32 bytes, big-endian, 1 ≤ d < n. Wrong type or length is 'bad-input'; out of range is 'bad-key'. */
export function checkScalar(d: unknown): Uint8Array {
  const bytes = checkBytes(d, 'P-256 private scalar', P256_SCALAR_BYTES);
  let nonZero = 0;
  for (let i = 0; i < bytes.length; i++) nonZero |= bytes[i]!;
  if (nonZero === 0) throw new CryptoError('bad-key', 'P-256 private scalar is zero');
  // Compare with n, most significant byte first (the scalar's range is not secret, its value is;
  // this runs over all 32 bytes whatever the input).
  let less = 0;
  let greater = 0;
  for (let i = 0; i < bytes.length; i++) {
    const a = bytes[i]!;
    const b = P256_ORDER[i]!;
    const undecided = 1 ^ (less | greater);
    less |= undecided & (a < b ? 1 : 0);
    greater |= undecided & (a > b ? 1 : 0);
  }
  if (!less) throw new CryptoError('bad-key', 'P-256 private scalar is not below the group order n');
  return bytes;
}

/**
 * The shape of a P-256 public key: 65 bytes starting with 0x04 (uncompressed). Whether the point
 * is on the curve is left to the provider's decoder; this refuses compressed points, the
 * one-byte identity encoding and anything of the wrong size, all as 'bad-key'.
 */
export function checkPublicKeyShape(publicKey: unknown, name = 'P-256 public key'): Uint8Array {
  if (!isBytes(publicKey)) throw new CryptoError('bad-key', `${name} must be a Uint8Array`);
  if (publicKey.length !== P256_PUBLIC_KEY_BYTES || publicKey[0] !== 0x04) {
    throw new CryptoError('bad-key', `${name} must be a 65-byte uncompressed SEC1 point (0x04 ‖ x ‖ y)`);
  }
  return publicKey;
}

/** For verify: the same shape rules as a boolean (verify never throws). */
export function isVerifyInputShape(publicKey: unknown, message: unknown, signature: unknown): boolean {
  return (
    isBytes(publicKey) &&
    publicKey.length === P256_PUBLIC_KEY_BYTES &&
    publicKey[0] === 0x04 &&
    isBytes(message) &&
    isBytes(signature) &&
    signature.length === P256_SIGNATURE_BYTES
  );
}
