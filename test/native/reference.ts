/**
 * What the native C must compute, computed independently on Node (node:crypto and BigInt), for
 * the C test program (test/native/cases.ts) and the XS tests of the native provider.
 */
import { createECDH, createHash, createHmac, hkdfSync } from 'node:crypto';
import { fromHex } from '../../src/bytes.js';

/** The order n of P-256. */
export const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

export function bigFromBytes(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

export function bytesFromBig(value: bigint, length: number): Uint8Array {
  return fromHex(value.toString(16).padStart(2 * length, '0'));
}

/** FIPS 186-5 A.2.1: d = (c mod (n - 1)) + 1 for a 48-byte seed c. */
export function scalarFromSeed(seed: Uint8Array): Uint8Array {
  return bytesFromBig((bigFromBytes(seed) % (P256_N - 1n)) + 1n, 32);
}

/** d·G as a 65-byte uncompressed point. */
export function p256PublicKey(d: Uint8Array): Uint8Array {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(Buffer.from(d));
  return new Uint8Array(ecdh.getPublicKey());
}

const hkdf = (ikm: Uint8Array, info: string, length: number) =>
  new Uint8Array(hkdfSync('sha256', ikm, new Uint8Array(0), Buffer.from(info), length));

/** S = HMAC-SHA-256(HUK, label): what the eFuse HMAC peripheral, NVS or the host file gives. */
export function deviceSecret(huk: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', huk).update('cose-flow/1 device secret').digest());
}

/** The device identity of native/crypto/cf_device_key.h, from S. */
export function deviceIdentityFromSecret(secret: Uint8Array): { d: Uint8Array; publicKey: Uint8Array; id: Uint8Array } {
  const d = scalarFromSeed(hkdf(secret, 'cose-flow/1 device key P-256', 48));
  return { d, publicKey: p256PublicKey(d), id: hkdf(secret, 'cose-flow/1 device id', 16) };
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}
