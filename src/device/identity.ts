/**
 * The device identity derived from a hardware unique key (HUK), in TypeScript: the derivation of
 * native/crypto/cf_device_key.h, so a HUK gives the same key and id here as in the device's C.
 *
 *   S  = HMAC-SHA-256(HUK, "cose-flow/1 device secret")
 *   c  = HKDF-SHA-256(ikm = S, salt = none, info = "cose-flow/1 device key P-256", L = 48)
 *   d  = (c mod (n - 1)) + 1                                  FIPS 186-5 A.2.1
 *   id = HKDF-SHA-256(ikm = S, salt = none, info = "cose-flow/1 device id", L = 16)
 *
 * Used where the HUK is not in hardware: the host simulator (a file or a seed per device) and the
 * Moddable desktop simulator (a random secret kept in the store). Runtime-neutral.
 */
import { toHex, utf8Encode } from '../bytes.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { DeviceIdentity } from '../platform/huk.js';

export const HUK_BYTES = 32;
const SECRET_LABEL = 'cose-flow/1 device secret';
const KEY_INFO = 'cose-flow/1 device key P-256';
const ID_INFO = 'cose-flow/1 device id';
/** The order n of the P-256 group. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** S = HMAC-SHA-256(HUK, label): the secret the derivation starts from. */
export function hukSecret(crypto: CryptoProvider, huk: Uint8Array): Uint8Array {
  if (huk.length !== HUK_BYTES) throw new RangeError(`a HUK is ${HUK_BYTES} bytes, got ${huk.length}`);
  return crypto.hmacSha256(huk, utf8Encode(SECRET_LABEL));
}

/** The device key and id from the secret S (32 bytes). */
export function deriveDeviceIdentity(crypto: CryptoProvider, secret: Uint8Array, source: string): DeviceIdentity {
  if (secret.length !== 32) throw new RangeError(`the device secret is 32 bytes, got ${secret.length}`);
  const empty = new Uint8Array(0);
  const seed = crypto.hkdfSha256(secret, empty, utf8Encode(KEY_INFO), 48);
  let c = 0n;
  for (const b of seed) c = (c << 8n) | BigInt(b);
  seed.fill(0);
  let d = (c % (P256_N - 1n)) + 1n;
  const scalar = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    scalar[i] = Number(d & 0xffn);
    d >>= 8n;
  }
  const key = crypto.p256Import(scalar);
  scalar.fill(0);
  return { key, id: crypto.hkdfSha256(secret, empty, utf8Encode(ID_INFO), 16), source };
}

/** The identity from a HUK: `deriveDeviceIdentity(hukSecret(huk))`. */
export function identityFromHuk(crypto: CryptoProvider, huk: Uint8Array, source: string): DeviceIdentity {
  const secret = hukSecret(crypto, huk);
  try {
    return deriveDeviceIdentity(crypto, secret, source);
  } finally {
    secret.fill(0);
  }
}

/** The device id used when none is configured: "cf-" and the first 8 bytes of the identity id in hex. */
export function defaultDeviceId(identity: DeviceIdentity): string {
  return `cf-${toHex(identity.id.subarray(0, 8))}`;
}
