/**
 * The one door through which the protocol code reaches cryptography.
 *
 * Every primitive cose-flow/1 needs, and nothing else. Implementations:
 * - `src/crypto/noble.ts`: @noble/* (runs unchanged in Node and in XS),
 * - `node/crypto.ts`: node:crypto (OpenSSL; fastest on a server),
 * - `src/moddable/native-crypto.ts`: the C modules over PSA Crypto (ESP32).
 *
 * The interface is synchronous on purpose: the device runs every call to
 * completion on one thread, and node:crypto has synchronous forms of all of it.
 *
 * Conventions shared by every implementation:
 * - Byte strings are `Uint8Array`; results are fresh arrays the caller owns.
 * - P-256 public keys are 65-byte uncompressed SEC1 points (0x04 ‖ x ‖ y).
 * - ECDSA signatures are raw r ‖ s, 64 bytes (RFC 9053 §2.1), over SHA-256 of the message.
 * - Bad input (wrong lengths, points off the curve, a scalar out of range) throws `CryptoError`
 *   with a reason code; an authentication failure (GCM tag, key-wrap check value) throws
 *   `CryptoError('decrypt-failed')`; a signature that does not verify returns `false`.
 */
export interface CryptoProvider {
  /** A short name for logs and benchmarks: "noble", "node", "native". */
  readonly name: string;

  /** `length` bytes from a cryptographically secure source. */
  randomBytes(length: number): Uint8Array;

  sha256(data: Uint8Array): Uint8Array;

  /** HMAC-SHA-256 (RFC 2104); any key length. Used to authenticate enrollment requests. */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;

  /** RFC 5869 HKDF with SHA-256. An empty `salt` means no salt (a block of zeros). `length` ≤ 255·32. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** AES-GCM with a 16-byte key, a 12-byte IV and a 16-byte tag. Returns ciphertext ‖ tag. */
  aesGcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Inverse of `aesGcmEncrypt`; throws `CryptoError('decrypt-failed')` when the tag does not match. */
  aesGcmDecrypt(key: Uint8Array, iv: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array): Uint8Array;

  /** RFC 3394 AES key wrap with a 16-byte KEK. `keyData` is a multiple of 8 bytes, at least 16. */
  aesKeyWrap(kek: Uint8Array, keyData: Uint8Array): Uint8Array;
  /** RFC 3394 unwrap; throws `CryptoError('decrypt-failed')` when the integrity check fails. */
  aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array;

  /** A new P-256 key pair from this provider's secure random source. */
  p256Generate(): P256PrivateKey;
  /** A P-256 private key from its 32-byte big-endian scalar (1 ≤ d < n). */
  p256Import(d: Uint8Array): P256PrivateKey;

  /** ECDSA P-256 with SHA-256 over `message`; raw r ‖ s. */
  ecdsaP256Sign(key: P256PrivateKey, message: Uint8Array): Uint8Array;
  /** True only for a valid signature. Malformed keys or signatures return false, never throw. */
  ecdsaP256Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  /**
   * ECDH on P-256: the 32-byte x-coordinate of d·Q. Throws `CryptoError('bad-key')` when
   * `peerPublicKey` is not a valid uncompressed point on P-256 (invalid-curve attacks).
   */
  ecdhP256(key: P256PrivateKey, peerPublicKey: Uint8Array): Uint8Array;
}

/**
 * A P-256 private key held by one provider. Its scalar stays inside the provider
 * (in C on the device); only the public key is visible. A key made by one provider
 * must only be passed back to that provider.
 */
export interface P256PrivateKey {
  /** 65-byte uncompressed SEC1 public key. */
  readonly publicKey: Uint8Array;
  /** Which provider made this key (its `name`). */
  readonly provider: string;
}

/** Why a crypto call refused its input. */
export type CryptoReason = 'bad-input' | 'bad-key' | 'decrypt-failed';

export class CryptoError extends Error {
  // A field (defined), not `this.name = …` (assigned): XS freezes Error.prototype, where an
  // assignment to the inherited read-only `name` throws "set name: not writable".
  override name = 'CryptoError';
  readonly reason: CryptoReason;
  constructor(reason: CryptoReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Sizes fixed by the primitives cose-flow/1 uses. */
export const AES128_KEY_BYTES = 16;
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;
export const P256_SCALAR_BYTES = 32;
export const P256_PUBLIC_KEY_BYTES = 65;
export const P256_SIGNATURE_BYTES = 64;
export const HKDF_SHA256_MAX_BYTES = 255 * 32;
