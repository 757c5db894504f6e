/**
 * `CryptoProvider` on the device's C crypto (native/crypto over PSA Crypto, bound to XS in
 * native/moddable/xs_cf_crypto.c): hardware AES/SHA where the chip has them, keys held in C and
 * wiped when their object is collected. Runs only in XS with those natives linked: the ESP32
 * application (the manifest selects this module there) and the project's XS test host.
 *
 * To the protocol code it is indistinguishable from the noble provider: the same argument checks
 * (src/crypto/checks.ts, so the same CryptoError reasons), `decrypt-failed` for a failed tag or
 * key-wrap check, `bad-key` for a peer point off the curve, and verify returns false, never throws.
 */
import './random.js';
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
} from '../crypto/checks.js';
import { CryptoError, type CryptoProvider, type P256PrivateKey } from '../crypto/provider.js';

const NAME = 'native';

type Bytes = Uint8Array;
type KeyMethod<A extends unknown[], R> = (this: NativeP256Key, ...args: A) => R;

// The C functions, bound once when this module is evaluated (what xsc does for `native(…)`).
const random = native<(length: number) => ArrayBuffer>('xs_cf_random');
const sha256 = native<(data: Bytes) => ArrayBuffer>('xs_cf_sha256');
const hmacSha256 = native<(key: Bytes, data: Bytes) => ArrayBuffer>('xs_cf_hmac_sha256');
const hkdfSha256 = native<(ikm: Bytes, salt: Bytes, info: Bytes, length: number) => ArrayBuffer>('xs_cf_hkdf_sha256');
const gcmEncrypt =
  native<(key: Bytes, iv: Bytes, plaintext: Bytes, aad: Bytes) => ArrayBuffer>('xs_cf_aes_gcm_encrypt');
const gcmDecrypt =
  native<(key: Bytes, iv: Bytes, sealed: Bytes, aad: Bytes) => ArrayBuffer | undefined>('xs_cf_aes_gcm_decrypt');
const keyWrap = native<(kek: Bytes, keyData: Bytes) => ArrayBuffer>('xs_cf_aes_key_wrap');
const keyUnwrap = native<(kek: Bytes, wrapped: Bytes) => ArrayBuffer | undefined>('xs_cf_aes_key_unwrap');
const keyGenerate = native<KeyMethod<[], ArrayBuffer>>('xs_cf_p256_key_generate');
const keyImport = native<KeyMethod<[d: Bytes], ArrayBuffer>>('xs_cf_p256_key_import');
const keyDevice = native<KeyMethod<[], ArrayBuffer>>('xs_cf_p256_key_device');
const deviceId = native<() => ArrayBuffer>('xs_cf_device_id');
const deviceSecretSource = native<() => string>('xs_cf_device_secret_source');
const ecdsaSign = native<KeyMethod<[message: Bytes], ArrayBuffer>>('xs_cf_ecdsa_sign');
const ecdsaVerify = native<(publicKey: Bytes, message: Bytes, signature: Bytes) => boolean>('xs_cf_ecdsa_verify');
const ecdh = native<KeyMethod<[peer: Bytes], ArrayBuffer | undefined>>('xs_cf_ecdh');

/**
 * A P-256 private key whose scalar lives in C (a host object): the C destructor wipes and frees
 * it when the key is collected. Only its public key is visible here.
 */
class NativeP256Key extends Native('xs_cf_p256_key_destructor') implements P256PrivateKey {
  readonly provider = NAME;
  readonly #publicKey: Uint8Array;

  /** `make` gives this host object its C key (generate, import, device) and returns the public key. */
  constructor(make: (key: NativeP256Key) => ArrayBuffer) {
    super();
    this.#publicKey = new Uint8Array(make(this));
  }

  /** A fresh copy on every read, so no caller can alter the key's public half. */
  get publicKey(): Uint8Array {
    return this.#publicKey.slice();
  }

  toJSON(): object {
    return { provider: this.provider, publicKey: this.#publicKey.slice() };
  }

  /** Made by this class (not merely inheriting its prototype). */
  static isKey(key: unknown): key is NativeP256Key {
    return typeof key === 'object' && key !== null && #publicKey in key;
  }
}

function nativeKey(key: P256PrivateKey): NativeP256Key {
  if (!NativeP256Key.isKey(key)) {
    throw new CryptoError('bad-key', `not a P-256 key made by the native provider (provider: ${safeProvider(key)})`);
  }
  return key;
}

function safeProvider(key: unknown): string {
  try {
    return String((key as { provider?: unknown })?.provider);
  } catch {
    return '?';
  }
}

/** The provider. Its random bytes come from the platform RNG in C; its keys from PSA's generator. */
export function nativeCrypto(): CryptoProvider {
  return {
    name: NAME,

    randomBytes(length: number): Uint8Array {
      return new Uint8Array(random(checkLength(length, 'random length', Number.MAX_SAFE_INTEGER)));
    },

    sha256(data: Uint8Array): Uint8Array {
      return new Uint8Array(sha256(checkBytes(data, 'data')));
    },

    hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
      return new Uint8Array(hmacSha256(checkBytes(key, 'HMAC key'), checkBytes(data, 'data')));
    },

    hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
      checkBytes(ikm, 'HKDF ikm');
      checkBytes(salt, 'HKDF salt');
      checkBytes(info, 'HKDF info');
      return new Uint8Array(hkdfSha256(ikm, salt, info, checkHkdfLength(length)));
    },

    aesGcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
      checkGcmArgs(key, iv, plaintext, aad);
      return new Uint8Array(gcmEncrypt(key, iv, plaintext, aad));
    },

    aesGcmDecrypt(key: Uint8Array, iv: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array): Uint8Array {
      checkGcmArgs(key, iv, ciphertextAndTag, aad);
      checkGcmCiphertext(ciphertextAndTag);
      const plaintext = gcmDecrypt(key, iv, ciphertextAndTag, aad);
      if (plaintext === undefined) throw new CryptoError('decrypt-failed', 'AES-GCM authentication failed');
      return new Uint8Array(plaintext);
    },

    aesKeyWrap(kek: Uint8Array, keyData: Uint8Array): Uint8Array {
      checkKeyWrapArgs(kek, keyData);
      return new Uint8Array(keyWrap(kek, keyData));
    },

    aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array {
      checkKeyUnwrapArgs(kek, wrapped);
      const keyData = keyUnwrap(kek, wrapped);
      if (keyData === undefined) throw new CryptoError('decrypt-failed', 'AES key unwrap integrity check failed');
      return new Uint8Array(keyData);
    },

    p256Generate(): P256PrivateKey {
      return new NativeP256Key((key) => keyGenerate.call(key));
    },

    p256Import(d: Uint8Array): P256PrivateKey {
      checkScalar(d);
      return new NativeP256Key((key) => keyImport.call(key, d));
    },

    ecdsaP256Sign(key: P256PrivateKey, message: Uint8Array): Uint8Array {
      const k = nativeKey(key);
      checkBytes(message, 'message');
      // Deterministic (RFC 6979) where PSA offers it, as noble; s is not normalised.
      return new Uint8Array(ecdsaSign.call(k, message));
    },

    ecdsaP256Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      if (!isVerifyInputShape(publicKey, message, signature)) return false;
      try {
        return ecdsaVerify(publicKey, message, signature) === true;
      } catch {
        return false; // only a failure of the library itself (out of memory) can throw here
      }
    },

    ecdhP256(key: P256PrivateKey, peerPublicKey: Uint8Array): Uint8Array {
      const k = nativeKey(key);
      checkPublicKeyShape(peerPublicKey, 'peer public key');
      const shared = ecdh.call(k, peerPublicKey);
      if (shared === undefined) throw new CryptoError('bad-key', 'peer public key is not a point on P-256');
      return new Uint8Array(shared);
    },
  };
}

/** Where the device secret comes from: the eFuse HMAC key, NVS (original ESP32), or a file (host). */
export type DeviceSecretSource = 'efuse-hmac' | 'nvs' | 'file';

/** The device identity (the shape of src/platform/huk.ts `DeviceIdentity`). */
export interface NativeDeviceIdentity {
  /** The device's P-256 key, derived in C from its hardware unique key (native/crypto/cf_device_key.h). */
  key: P256PrivateKey;
  /** A stable 16-byte id derived from the same secret. */
  id: Uint8Array;
  source: DeviceSecretSource;
}

/**
 * The device's identity, derived again on every call from the hardware unique key: the same key
 * and id after every reboot and firmware update. Throws an Error when the secret is not available
 * (on ESP32-S2/S3/C3/C6/H2: the eFuse key block was not provisioned; see native/README.md).
 */
export function deviceIdentity(): NativeDeviceIdentity {
  return {
    key: new NativeP256Key((key) => keyDevice.call(key)),
    id: new Uint8Array(deviceId()),
    source: deviceSecretSource() as DeviceSecretSource,
  };
}
