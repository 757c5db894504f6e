/**
 * ECDSA P-256 with SHA-256 as X.509 and PKCS#10 carry it: the AlgorithmIdentifier
 * ecdsa-with-SHA256 (RFC 5758 §3.2, parameters absent) and the signature as the DER
 * ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER } (RFC 5480 §2.2 / RFC 3279 §2.2.3),
 * converted to and from the raw 64-byte r ‖ s of the `CryptoProvider`.
 */
import { P256_SIGNATURE_BYTES } from '../crypto/provider.js';
import { DerError, type DerNode, integer, items, oid, readDer, readOid, readUnsigned, sequence, Tag } from './der.js';
import { OID } from './oids.js';

const HALF = P256_SIGNATURE_BYTES / 2;

/** The AlgorithmIdentifier SEQUENCE { ecdsa-with-SHA256 } (no parameters). */
export function ecdsaSha256AlgorithmIdentifier(): Uint8Array {
  return sequence(oid(OID.ecdsaWithSha256));
}

/** Checks that `node` is the AlgorithmIdentifier ecdsa-with-SHA256 without parameters. */
export function readEcdsaSha256AlgorithmIdentifier(node: DerNode | undefined, what: string): void {
  const [algorithm, parameters] = items(node, Tag.SEQUENCE, what, 1, 2);
  const name = readOid(algorithm, `${what} algorithm`);
  if (name !== OID.ecdsaWithSha256) {
    throw new DerError(`${what} ${name} is not ecdsa-with-SHA256 (${OID.ecdsaWithSha256})`, algorithm!.start);
  }
  if (parameters !== undefined) {
    throw new DerError(`${what}: ecdsa-with-SHA256 must not have parameters`, parameters.start);
  }
}

/** Raw r ‖ s (64 bytes) → DER ECDSA-Sig-Value, each INTEGER minimal and positive. */
export function ecdsaSignatureToDer(raw: Uint8Array): Uint8Array {
  if (!(raw instanceof Uint8Array) || raw.length !== P256_SIGNATURE_BYTES) {
    throw new RangeError(`an ECDSA P-256 signature is ${P256_SIGNATURE_BYTES} bytes (r ‖ s)`);
  }
  return sequence(integer(raw.subarray(0, HALF)), integer(raw.subarray(HALF)));
}

/**
 * DER ECDSA-Sig-Value → raw r ‖ s (64 bytes). Refuses anything but exactly one SEQUENCE of two
 * minimal INTEGERs in 1 … 2^256 − 1 (zero, negative, over-long or non-minimal values are malformed).
 */
export function ecdsaSignatureFromDer(der: Uint8Array): Uint8Array {
  const [r, s] = items(readDer(der, { maxDepth: 2 }), Tag.SEQUENCE, 'the ECDSA signature', 2, 2);
  const out = new Uint8Array(P256_SIGNATURE_BYTES);
  for (const [i, node] of [r!, s!].entries()) {
    const name = i === 0 ? 'r' : 's';
    const value = readUnsigned(node, `ECDSA signature ${name}`);
    if (value.length > HALF) throw new DerError(`ECDSA signature ${name} is not below 2^256`, node.start);
    if (value.every((b) => b === 0)) throw new DerError(`ECDSA signature ${name} is zero`, node.start);
    out.set(value, HALF * i + HALF - value.length);
  }
  return out;
}
