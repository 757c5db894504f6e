/**
 * The CA's check of a PKCS#10 certification request (from `makeCsr` on a device, or from
 * `openssl req`) before it issues a device certificate, with @peculiar/x509 (no hand-written
 * ASN.1). A request is accepted only when:
 *
 * - it is one DER CertificationRequest (PEM "CERTIFICATE REQUEST" or DER in), version 0 (v1);
 * - it is signed with ecdsa-with-SHA256 (no parameters);
 * - its key is EC P-256 (an uncompressed point);
 * - its self-signature verifies under that key: proof that the requester holds the private key;
 * - its subject is exactly one attribute, a CN that is a valid device id (and, when the caller
 *   knows the device id — the enrollment topic — that id: otherwise `device-mismatch`).
 *
 * Attributes (an extensionRequest, a challengePassword) are ignored: what a device certificate
 * may do is the CA's profile, never the requester's. Every refusal is `Refusal('bad-csr')` (or
 * `device-mismatch`) with a message that says what is wrong.
 */
import { CertificationRequest } from '@peculiar/asn1-csr';
import { id_ecdsaWithSHA256 } from '@peculiar/asn1-ecc';
import { nodeCrypto } from '../../node/crypto.js';
import { toHex } from '../../src/bytes.js';
import { ecdsaSignatureFromDer } from '../../src/pki/ecdsa-signature.js';
import { isValidDeviceId } from '../../src/profile/topics.js';
import { describePublicKeyInfo } from './certificate.js';
import { Refusal } from './refusal.js';
import { parseAsn1, x509 } from './x509.js';

const verifier = nodeCrypto();

/** A request is a few hundred bytes; anything past this is refused unread. */
export const MAX_CSR_BYTES = 8 * 1024;
const CN = '2.5.4.3';
const PEM_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

export interface CheckedCsr {
  /** The request DER and PEM. */
  der: Uint8Array;
  pem: string;
  /** The subject CN: the device id. */
  deviceId: string;
  /** The requested P-256 key: a 65-byte uncompressed point, and its hex. */
  publicKey: Uint8Array;
  publicKeyHex: string;
}

function bad(detail: string): Refusal {
  return new Refusal('bad-csr', detail);
}

/** The DER of a request given as PEM text (one CERTIFICATE REQUEST block) or as DER bytes. */
export function csrDer(data: Uint8Array | string): Uint8Array {
  const text =
    typeof data === 'string' ? data : Buffer.from(data.subarray(0, Math.min(data.length, 64))).toString('latin1');
  if (!text.includes('-----BEGIN ')) {
    if (typeof data === 'string') throw bad('the text holds no PEM "CERTIFICATE REQUEST" block');
    return Uint8Array.from(data);
  }
  const pem = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
  let blocks: { type: string; rawData: ArrayBuffer }[];
  try {
    blocks = x509.PemConverter.decodeWithHeaders(pem);
  } catch (e) {
    throw bad(`unreadable PEM: ${(e as Error).message}`);
  }
  const requests = blocks.filter((b) => PEM_LABELS.includes(b.type));
  if (requests.length !== 1) {
    throw bad(`the PEM text holds ${requests.length} CERTIFICATE REQUEST blocks, expected one`);
  }
  return new Uint8Array(requests[0]!.rawData);
}

export interface CheckCsrOptions {
  /** The device id the request must be for (the enrollment topic's); otherwise `device-mismatch`. */
  deviceId?: string;
}

/** Checks a request (PEM or DER) by the rules above; resolves to what the CA needs to issue. */
export async function checkCsr(data: Uint8Array | string, options: CheckCsrOptions = {}): Promise<CheckedCsr> {
  const der = csrDer(data);
  if (der.length === 0) throw bad('the request is empty');
  if (der.length > MAX_CSR_BYTES) throw bad(`the request is ${der.length} bytes (at most ${MAX_CSR_BYTES})`);
  let asn: CertificationRequest;
  try {
    asn = parseAsn1(der, CertificationRequest, 'the certification request');
  } catch (e) {
    throw bad((e as Error).message);
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(asn);
  } catch (e) {
    throw bad(`unreadable certification request: ${(e as Error).message}`);
  }
  const info = asn.certificationRequestInfo;
  if (info.version !== 0) throw bad(`the request version is ${info.version}, expected 0 (v1)`);

  const algorithm = asn.signatureAlgorithm;
  if (algorithm.algorithm !== id_ecdsaWithSHA256) {
    throw bad(`the signature algorithm is ${algorithm.algorithm}, expected ecdsa-with-SHA256 (${id_ecdsaWithSHA256})`);
  }
  if (algorithm.parameters != null) throw bad('ecdsa-with-SHA256 must not have algorithm parameters');

  const { p256PublicKey, keyType } = describePublicKeyInfo(info.subjectPKInfo);
  if (p256PublicKey === undefined) throw bad(`the key is ${keyType}; only EC P-256 keys are accepted`);

  // The signature over the certificationRequestInfo bytes as received, with node:crypto directly
  // (@peculiar/x509's verify imports the key into WebCrypto for each request: most of its cost).
  let signatureValid: boolean;
  try {
    const signed = asn.certificationRequestInfoRaw;
    if (signed === undefined) throw new Error('the parser did not keep the certificationRequestInfo bytes');
    const signature = ecdsaSignatureFromDer(new Uint8Array(asn.signature));
    signatureValid = verifier.ecdsaP256Verify(p256PublicKey, new Uint8Array(signed), signature);
  } catch (e) {
    throw bad(`the self-signature cannot be checked: ${(e as Error).message}`);
  }
  if (!signatureValid) {
    throw bad('the self-signature does not verify under the requested key (no proof of possession of the private key)');
  }

  const deviceId = subjectDeviceId(csr, info);
  if (options.deviceId !== undefined && deviceId !== options.deviceId) {
    throw new Refusal(
      'device-mismatch',
      `the request is for device ${JSON.stringify(deviceId)}, the topic names ${JSON.stringify(options.deviceId)}`,
    );
  }
  return {
    der,
    pem: x509.PemConverter.encode(der, 'CERTIFICATE REQUEST'),
    deviceId,
    publicKey: p256PublicKey,
    publicKeyHex: toHex(p256PublicKey),
  };
}

/** The subject must be exactly one attribute, CN = a valid device id. */
function subjectDeviceId(csr: x509.Pkcs10CertificateRequest, info: CertificationRequest['certificationRequestInfo']) {
  const subject = csr.subject === '' ? '(empty)' : JSON.stringify(csr.subject);
  const attributes = info.subject.flatMap((rdn) => rdn.map((atv) => atv.type));
  const cns = csr.subjectName.getField('CN');
  if (attributes.length !== 1 || attributes[0] !== CN || cns.length !== 1) {
    const why = cns.length === 0 ? 'it has no CN' : `it has ${attributes.length} attributes`;
    throw bad(`the subject must be exactly CN=<device id>, got ${subject}: ${why}`);
  }
  const deviceId = cns[0]!;
  if (!isValidDeviceId(deviceId)) {
    throw bad(`the subject CN ${JSON.stringify(deviceId)} is not a valid device id (1–64 of A-Z a-z 0-9 . _ -)`);
  }
  return deviceId;
}
