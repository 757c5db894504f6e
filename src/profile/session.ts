/** The session key a device makes and the cloud learns from a key message. */
import type { CryptoProvider } from '../crypto/provider.js';
import { encodeKid } from './counter.js';
import { BASE_IV_BYTES, CLOUD_KID_BYTES, SESSION_KEY_BYTES } from './limits.js';

export interface SessionKey {
  /** Session kid: minimal big-endian bytes of the device's kid counter. */
  kid: Uint8Array;
  /** 16-byte AES-128-GCM key. */
  key: Uint8Array;
  /** 12-byte Base IV; each message's nonce is this XOR its Partial IV. */
  baseIv: Uint8Array;
}

/** A fresh session key and Base IV from a secure random source (a provider's, a device platform's RNG). */
export function newSessionKey(crypto: Pick<CryptoProvider, 'randomBytes'>, kidCounter: number | bigint): SessionKey {
  return {
    kid: encodeKid(kidCounter),
    key: crypto.randomBytes(SESSION_KEY_BYTES),
    baseIv: crypto.randomBytes(BASE_IV_BYTES),
  };
}

/** The cloud key id devices put in the recipient header: SHA-256(uncompressed point)[0..8]. */
export function cloudKeyId(crypto: CryptoProvider, cloudPublicKey: Uint8Array): Uint8Array {
  return crypto.sha256(cloudPublicKey).slice(0, CLOUD_KID_BYTES);
}
