/** COSE_Key (RFC 9052 §7, RFC 9053 §7): EC2 P-256 public keys and Symmetric keys with a Base IV. */
import { concat } from '../bytes.js';
import { CborError, decode as cborDecode } from '../cbor/index.js';
import { CoseError } from './errors.js';
import { bstr } from './headers.js';

export const KeyLabel = { kty: 1, kid: 2, alg: 3, baseIv: 5, crv: -1, x: -2, y: -3, k: -1 } as const;
export const Kty = { EC2: 2, Symmetric: 4 } as const;
export const Crv = { P256: 1 } as const;

/** EC2 P-256 public key map {1: 2, -1: 1, -2: x, -3: y} for a 65-byte uncompressed point. */
export function ec2PublicKeyMap(point: Uint8Array): Map<number, unknown> {
  if (point.length !== 65 || point[0] !== 0x04) throw new CoseError('bad-key', 'not an uncompressed P-256 point');
  return new Map<number, unknown>([
    [KeyLabel.kty, Kty.EC2],
    [KeyLabel.crv, Crv.P256],
    [KeyLabel.x, point.slice(1, 33)],
    [KeyLabel.y, point.slice(33, 65)],
  ]);
}

/**
 * Reads an EC2 P-256 public key map to a 65-byte uncompressed point. Only kty, crv, x, y (and kid)
 * are accepted; compressed points (y as a bool) are refused. Curve membership is checked later by the
 * crypto provider's ECDH.
 */
export function ec2PublicKeyFromMap(value: unknown): Uint8Array {
  if (!(value instanceof Map)) throw new CoseError('bad-key', 'COSE_Key is not a map');
  for (const label of value.keys()) {
    if (![KeyLabel.kty, KeyLabel.crv, KeyLabel.x, KeyLabel.y, KeyLabel.kid].includes(label)) {
      throw new CoseError('bad-key', `COSE_Key has unexpected label ${String(label)}`);
    }
  }
  if (value.get(KeyLabel.kty) !== Kty.EC2) throw new CoseError('bad-key', 'COSE_Key kty is not EC2');
  if (value.get(KeyLabel.crv) !== Crv.P256) throw new CoseError('bad-key', 'COSE_Key crv is not P-256');
  const x = value.get(KeyLabel.x);
  const y = value.get(KeyLabel.y);
  if (!(x instanceof Uint8Array) || x.length !== 32) throw new CoseError('bad-key', 'COSE_Key x is not 32 bytes');
  if (!(y instanceof Uint8Array) || y.length !== 32)
    throw new CoseError('bad-key', 'COSE_Key y is not a 32-byte coordinate (compressed points are not accepted)');
  return concat(Uint8Array.of(4), x, y);
}

/** A symmetric session key as the profile carries it. */
export interface SymmetricKey {
  kid: Uint8Array;
  /** Algorithm the key is for (1 = A128GCM). */
  alg: number;
  baseIv: Uint8Array;
  k: Uint8Array;
}

/** {1: 4, 2: kid, 3: alg, 5: Base IV, -1: k} */
export function symmetricKeyMap(key: SymmetricKey): Map<number, unknown> {
  return new Map<number, unknown>([
    [KeyLabel.kty, Kty.Symmetric],
    [KeyLabel.kid, key.kid],
    [KeyLabel.alg, key.alg],
    [KeyLabel.baseIv, key.baseIv],
    [KeyLabel.k, key.k],
  ]);
}

/** Parses an encoded Symmetric COSE_Key with exactly the labels kty, kid, alg, Base IV, k. */
export function decodeSymmetricKey(bytes: Uint8Array): SymmetricKey {
  let value: unknown;
  try {
    value = cborDecode(bytes, { maxDepth: 2 });
  } catch (e) {
    if (e instanceof CborError) throw new CoseError('bad-key', `session COSE_Key: ${e.message}`);
    throw e;
  }
  if (!(value instanceof Map)) throw new CoseError('bad-key', 'session COSE_Key is not a map');
  for (const label of value.keys()) {
    if (![KeyLabel.kty, KeyLabel.kid, KeyLabel.alg, KeyLabel.baseIv, KeyLabel.k].includes(label)) {
      throw new CoseError('bad-key', `session COSE_Key has unexpected label ${String(label)}`);
    }
  }
  if (value.get(KeyLabel.kty) !== Kty.Symmetric)
    throw new CoseError('bad-key', 'session COSE_Key kty is not Symmetric');
  const alg = value.get(KeyLabel.alg);
  if (typeof alg !== 'number') throw new CoseError('bad-key', 'session COSE_Key has no integer alg');
  const field = (label: number, name: string) => {
    const v = value.get(label);
    if (v === undefined) throw new CoseError('bad-key', `session COSE_Key has no ${name}`);
    try {
      // a copy: the caller wipes the plaintext this was decoded from
      return bstr(v, `session COSE_Key ${name}`).slice();
    } catch {
      throw new CoseError('bad-key', `session COSE_Key ${name} is not a byte string`);
    }
  };
  return { kid: field(KeyLabel.kid, 'kid'), alg, baseIv: field(KeyLabel.baseIv, 'Base IV'), k: field(KeyLabel.k, 'k') };
}
