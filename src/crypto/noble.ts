/**
 * `CryptoProvider` on @noble/curves, @noble/ciphers and @noble/hashes (2.x): pure JavaScript that
 * runs unchanged in Node and in XS. No Node APIs here.
 *
 * Randomness: by default `globalThis.crypto.getRandomValues`, looked up on every call (the XS
 * platform installs it). Note that noble itself also probes `globalThis.crypto` once, when
 * `@noble/curves` is first imported, to decide whether to blind scalar multiplications and the
 * ECDSA nonce inversion; on XS, install `crypto` before this module is imported.
 */
import { aeskw, gcm } from '@noble/ciphers/aes.js';
import { p256 } from '@noble/curves/nist.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  checkBytes,
  checkGcmArgs,
  checkGcmCiphertext,
  checkHkdfLength,
  checkKeyUnwrapArgs,
  checkKeyWrapArgs,
  checkLength,
  checkPublicKeyShape,
  checkScalar,
  isVerifyInputShape,
} from './checks.js';
import { P256KeyHandle } from './key-handle.js';
import { CryptoError, type CryptoProvider, P256_SCALAR_BYTES, type P256PrivateKey } from './provider.js';

const NAME = 'noble';

/** getRandomValues may fill at most 65536 bytes per call (Web Crypto quota). */
const RANDOM_CHUNK = 65536;

/** Bytes of seed per generated key: noble maps 48 uniform bytes onto 1..n-1 (FIPS 186-5 A.2.1). */
const KEYGEN_SEED_BYTES = p256.lengths.seed ?? 48;

const SIGN_OPTIONS = { prehash: true, lowS: false, format: 'compact' } as const;
const VERIFY_OPTIONS = { prehash: true, lowS: false, format: 'compact' } as const;

function platformRandom(length: number): Uint8Array {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (typeof c?.getRandomValues !== 'function') {
    throw new Error(
      'no secure random source: globalThis.crypto.getRandomValues is missing ' +
        '(on XS the platform must install it, backed by the hardware RNG)',
    );
  }
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += RANDOM_CHUNK) {
    c.getRandomValues(out.subarray(at, Math.min(length, at + RANDOM_CHUNK)));
  }
  return out;
}

/** The scalar of each key this module made; only this module can read it. */
const scalars = new WeakMap<NobleP256Key, Uint8Array>();

class NobleP256Key extends P256KeyHandle {
  constructor(d: Uint8Array) {
    super(NAME, p256.getPublicKey(d, false));
    scalars.set(this, d);
  }
}

function scalarOf(key: P256PrivateKey): Uint8Array {
  const d = typeof key === 'object' && key !== null ? scalars.get(key as NobleP256Key) : undefined;
  if (d === undefined) {
    throw new CryptoError('bad-key', `not a P-256 key made by the noble provider (provider: ${safeProvider(key)})`);
  }
  return d;
}

function safeProvider(key: unknown): string {
  try {
    return String((key as { provider?: unknown })?.provider);
  } catch {
    return '?';
  }
}

/**
 * @param random optional source of randomness (for tests or a platform RNG); it must return
 *   exactly `n` fresh bytes. Defaults to `globalThis.crypto.getRandomValues`, read at call time.
 */
export function nobleCrypto(random?: (n: number) => Uint8Array): CryptoProvider {
  const rng = random ?? platformRandom;
  if (typeof rng !== 'function') throw new TypeError('nobleCrypto: random must be a function');

  function randomBytes(length: number): Uint8Array {
    checkLength(length, 'random length', Number.MAX_SAFE_INTEGER);
    const out = rng(length);
    if (!(out instanceof Uint8Array) || out.length !== length) {
      throw new Error(
        `random source returned ${out instanceof Uint8Array ? out.length : typeof out} bytes, not ${length}`,
      );
    }
    return out;
  }

  return {
    name: NAME,

    randomBytes,

    sha256(data: Uint8Array): Uint8Array {
      return sha256(checkBytes(data, 'data'));
    },

    hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
      return hmac(sha256, checkBytes(key, 'HMAC key'), checkBytes(data, 'data'));
    },

    hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
      checkBytes(ikm, 'HKDF ikm');
      checkBytes(salt, 'HKDF salt');
      checkBytes(info, 'HKDF info');
      checkHkdfLength(length);
      // An empty salt is an HMAC key of zero bytes, which HMAC pads to a block of zeros: RFC 5869's default.
      return hkdf(sha256, ikm, salt, info, length);
    },

    aesGcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
      checkGcmArgs(key, iv, plaintext, aad);
      return gcm(key, iv, aad).encrypt(plaintext);
    },

    aesGcmDecrypt(key: Uint8Array, iv: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array): Uint8Array {
      checkGcmArgs(key, iv, ciphertextAndTag, aad);
      checkGcmCiphertext(ciphertextAndTag);
      try {
        return gcm(key, iv, aad).decrypt(ciphertextAndTag);
      } catch {
        throw new CryptoError('decrypt-failed', 'AES-GCM authentication failed');
      }
    },

    aesKeyWrap(kek: Uint8Array, keyData: Uint8Array): Uint8Array {
      checkKeyWrapArgs(kek, keyData);
      return aeskw(kek).encrypt(keyData);
    },

    aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array {
      checkKeyUnwrapArgs(kek, wrapped);
      try {
        return aeskw(kek).decrypt(wrapped);
      } catch {
        throw new CryptoError('decrypt-failed', 'AES key unwrap integrity check failed');
      }
    },

    p256Generate(): P256PrivateKey {
      // mapHashToField over 48 random bytes gives a scalar in 1..n-1 with negligible bias.
      const d = p256.utils.randomSecretKey(randomBytes(KEYGEN_SEED_BYTES));
      return new NobleP256Key(d);
    },

    p256Import(d: Uint8Array): P256PrivateKey {
      return new NobleP256Key(checkScalar(d).slice());
    },

    ecdsaP256Sign(key: P256PrivateKey, message: Uint8Array): Uint8Array {
      const d = scalarOf(key);
      checkBytes(message, 'message');
      // Deterministic RFC 6979 nonces; s is left as computed (no low-S normalisation), as RFC 6979 and PSA do.
      return p256.sign(message, d, SIGN_OPTIONS);
    },

    ecdsaP256Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      if (!isVerifyInputShape(publicKey, message, signature)) return false;
      try {
        // lowS: false — ECDSA as specified accepts both s and n - s (COSE does not require low-S).
        return p256.verify(signature, message, publicKey, VERIFY_OPTIONS);
      } catch {
        return false;
      }
    },

    ecdhP256(key: P256PrivateKey, peerPublicKey: Uint8Array): Uint8Array {
      const d = scalarOf(key);
      checkPublicKeyShape(peerPublicKey, 'peer public key');
      let point: InstanceType<typeof p256.Point>;
      try {
        point = p256.Point.fromBytes(peerPublicKey); // decodes and asserts the point is on the curve
        point.assertValidity();
      } catch {
        throw new CryptoError('bad-key', 'peer public key is not a point on P-256');
      }
      if (point.is0()) throw new CryptoError('bad-key', 'peer public key is the point at infinity');
      const shared = point.multiply(p256.Point.Fn.fromBytes(d));
      if (shared.is0()) throw new CryptoError('bad-key', 'ECDH result is the point at infinity');
      return p256.Point.Fp.toBytes(shared.toAffine().x).slice(0, P256_SCALAR_BYTES);
    },
  };
}
