/**
 * SubjectPublicKeyInfo for EC P-256 (RFC 5480 §2): SEQUENCE { SEQUENCE { id-ecPublicKey,
 * prime256v1 }, BIT STRING 65-byte uncompressed point }. Any other key is refused with a message
 * naming it ("EC P-384", "RSA", …). Whether the point is on the curve is left to the provider,
 * whose verify and ECDH refuse points that are not.
 */
import { P256_PUBLIC_KEY_BYTES } from '../crypto/provider.js';
import { bitString, DerError, type DerNode, items, oid, readBitStringBytes, readOid, sequence, Tag } from './der.js';
import { OID, OID_NAMES } from './oids.js';

/** DER SubjectPublicKeyInfo of a 65-byte uncompressed P-256 point. */
export function p256PublicKeyInfo(point: Uint8Array): Uint8Array {
  if (!(point instanceof Uint8Array) || point.length !== P256_PUBLIC_KEY_BYTES || point[0] !== 0x04) {
    throw new RangeError('a P-256 public key is a 65-byte uncompressed SEC1 point (0x04 ‖ x ‖ y)');
  }
  return sequence(sequence(oid(OID.ecPublicKey), oid(OID.prime256v1)), bitString(point));
}

/** The 65-byte point of a P-256 SubjectPublicKeyInfo (a copy); `DerError` for any other key. */
export function readP256PublicKeyInfo(node: DerNode | undefined, what: string): Uint8Array {
  const [algorithm, key] = items(node, Tag.SEQUENCE, what, 2, 2);
  const [type, parameters] = items(algorithm, Tag.SEQUENCE, `${what} algorithm`, 1, 2);
  const keyType = readOid(type, `${what} algorithm`);
  const unsupported = (description: string): never => {
    throw new DerError(`${what} is ${description}, not EC P-256`, node!.start, {
      kind: 'subject-key',
      key: description,
    });
  };
  if (keyType !== OID.ecPublicKey) unsupported(OID_NAMES[keyType] ?? `algorithm ${keyType}`);
  if (parameters === undefined || parameters.tag !== Tag.OID) unsupported('EC without a named curve');
  const curve = readOid(parameters, `${what} curve`);
  if (curve !== OID.prime256v1) unsupported(`EC ${OID_NAMES[curve] ?? curve}`);
  const point = readBitStringBytes(key, `${what} point`);
  if (point.length !== P256_PUBLIC_KEY_BYTES || point[0] !== 0x04) {
    throw new DerError(`${what} is not a 65-byte uncompressed P-256 point (${point.length} bytes)`, key!.start);
  }
  return point.slice();
}
