/**
 * Reading X.509 certificates on the host with @peculiar/x509 (and its asn1 schemas): the parts
 * cose-flow needs — exact tbsCertificate bytes, signature as raw r ‖ s, the P-256 subject key as a
 * 65-byte point, names, validity, extensions. No hand-written ASN.1. Failures are
 * `CoseError('bad-certificate')` with a message that says what is wrong.
 */
import { ECDSASigValue, ECParameters, id_ecdsaWithSHA256, id_ecPublicKey, id_secp256r1 } from '@peculiar/asn1-ecc';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { toHex } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import { parseAsn1, x509 } from './x509.js';

/** Curve names for the subject-key error messages. */
const CURVE_NAMES: Record<string, string> = {
  [id_secp256r1]: 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
  '1.3.132.0.10': 'secp256k1',
};
const KEY_ALGORITHM_NAMES: Record<string, string> = {
  '1.2.840.113549.1.1.1': 'RSA',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
  '1.3.101.110': 'X25519',
};

/** A certificate taken apart. Every byte array is a private copy. */
export interface ParsedCertificate {
  /** The certificate as given. */
  der: Uint8Array;
  /** The @peculiar/x509 view (names, dates, extensions). */
  x509: x509.X509Certificate;
  /** The ASN.1 structure (@peculiar/asn1-x509). */
  asn: Certificate;
  /** The exact tbsCertificate bytes the signature covers. */
  tbs: Uint8Array;
  /** DER of the subject and issuer Names (compared bytewise to chain a certificate to its issuer). */
  subjectDer: Uint8Array;
  issuerDer: Uint8Array;
  /** RFC 4514 strings, e.g. "CN=dev-1". */
  subject: string;
  issuer: string;
  /** Lowercase hex of the serial number without leading zero bytes (`openssl x509 -serial`, lowercased). */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  /** The subject key as a 65-byte uncompressed P-256 point, or undefined for any other key. */
  p256PublicKey: Uint8Array | undefined;
  /** What the subject key is: "EC P-256", "EC P-384", "RSA", … */
  keyType: string;
  /** The subject common names (normally exactly one). */
  commonNames: string[];
}

function bad(message: string): CoseError {
  return new CoseError('bad-certificate', message);
}

function bytesOf(buffer: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(buffer)
    ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).slice()
    : new Uint8Array(buffer).slice();
}

/** Lowercase hex of a DER INTEGER's content without leading zero bytes (at least one byte). */
export function integerHex(content: ArrayBuffer | Uint8Array): string {
  const bytes = bytesOf(content);
  let from = 0;
  while (from < bytes.length - 1 && bytes[from] === 0) from++;
  return toHex(bytes.subarray(from));
}

/** Parses a DER certificate; `bad-certificate` unless it is one well-formed X.509 certificate. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  if (!(der instanceof Uint8Array)) throw bad('the certificate is not a byte string');
  if (der.length === 0) throw bad('the certificate is empty');
  let asn: Certificate;
  try {
    asn = parseAsn1(der, Certificate, 'the certificate');
  } catch (e) {
    throw bad(`not an X.509 certificate: ${(e as Error).message}`);
  }
  if (asn.tbsCertificateRaw === undefined) throw bad('the parser did not keep the tbsCertificate bytes');
  try {
    const cert = new x509.X509Certificate(asn);
    const spki = asn.tbsCertificate.subjectPublicKeyInfo;
    const { p256PublicKey, keyType } = subjectKey(spki.algorithm.algorithm, spki.algorithm.parameters, spki);
    return {
      der: der.slice(),
      x509: cert,
      asn,
      tbs: bytesOf(asn.tbsCertificateRaw),
      subjectDer: bytesOf(AsnConvert.serialize(asn.tbsCertificate.subject)),
      issuerDer: bytesOf(AsnConvert.serialize(asn.tbsCertificate.issuer)),
      subject: cert.subject,
      issuer: cert.issuer,
      serialHex: integerHex(asn.tbsCertificate.serialNumber),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      p256PublicKey,
      keyType,
      commonNames: cert.subjectName.getField('CN'),
    };
  } catch (e) {
    if (e instanceof CoseError) throw e;
    throw bad(`unreadable certificate: ${(e as Error).message}`);
  }
}

/**
 * What a SubjectPublicKeyInfo holds (a certificate's or a certification request's): the 65-byte
 * uncompressed point when it is EC P-256, and a name for the key type either way ("EC P-384", …).
 */
export function describePublicKeyInfo(spki: {
  algorithm: { algorithm: string; parameters?: ArrayBuffer | null };
  subjectPublicKey: ArrayBuffer;
}): { p256PublicKey: Uint8Array | undefined; keyType: string } {
  return subjectKey(spki.algorithm.algorithm, spki.algorithm.parameters, spki);
}

function subjectKey(
  algorithm: string,
  parameters: ArrayBuffer | null | undefined,
  spki: { subjectPublicKey: ArrayBuffer },
): { p256PublicKey: Uint8Array | undefined; keyType: string } {
  if (algorithm !== id_ecPublicKey) {
    return { p256PublicKey: undefined, keyType: KEY_ALGORITHM_NAMES[algorithm] ?? `algorithm ${algorithm}` };
  }
  if (parameters === null || parameters === undefined) return { p256PublicKey: undefined, keyType: 'EC without curve' };
  let curve: string | undefined;
  try {
    curve = parseAsn1(bytesOf(parameters), ECParameters, 'EC parameters').namedCurve;
  } catch {
    curve = undefined;
  }
  if (curve === undefined) return { p256PublicKey: undefined, keyType: 'EC with explicit curve parameters' };
  const keyType = `EC ${CURVE_NAMES[curve] ?? curve}`;
  if (curve !== id_secp256r1) return { p256PublicKey: undefined, keyType };
  const point = bytesOf(spki.subjectPublicKey);
  if (point.length !== 65 || point[0] !== 0x04) {
    return { p256PublicKey: undefined, keyType: `EC P-256 (not an uncompressed point: ${point.length} bytes)` };
  }
  return { p256PublicKey: point, keyType };
}

/** The signature of a certificate as raw r ‖ s (64 bytes); `bad-certificate` unless ecdsa-with-SHA256. */
export function ecdsaSha256Signature(cert: ParsedCertificate): Uint8Array {
  const outer = cert.asn.signatureAlgorithm;
  const inner = cert.asn.tbsCertificate.signature;
  if (outer.algorithm !== id_ecdsaWithSHA256) {
    throw bad(`signature algorithm ${outer.algorithm} is not ecdsa-with-SHA256 (${id_ecdsaWithSHA256})`);
  }
  if (inner.algorithm !== outer.algorithm) {
    throw bad('the signature algorithm inside tbsCertificate differs from the outer one');
  }
  if (outer.parameters != null || inner.parameters != null) {
    throw bad('ecdsa-with-SHA256 must not have algorithm parameters');
  }
  let value: ECDSASigValue;
  try {
    value = parseAsn1(bytesOf(cert.asn.signatureValue), ECDSASigValue, 'the ECDSA signature');
  } catch (e) {
    throw bad((e as Error).message);
  }
  const out = new Uint8Array(64);
  [value.r, value.s].forEach((part, i) => {
    const bytes = bytesOf(part);
    if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) throw bad('the ECDSA signature has a negative r or s');
    let from = 0;
    while (from < bytes.length && bytes[from] === 0) from++;
    const digits = bytes.subarray(from);
    if (digits.length === 0 || digits.length > 32) throw bad('the ECDSA signature r or s is out of range for P-256');
    out.set(digits, 32 * i + 32 - digits.length);
  });
  return out;
}

/** Display summary of a certificate (for logs and the CLI). */
export interface CertificateSummary {
  subject: string;
  issuer: string;
  serialHex: string;
  notBefore: string;
  notAfter: string;
  keyType: string;
  commonName: string | undefined;
}

export function summarizeCertificate(cert: ParsedCertificate): CertificateSummary {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialHex: cert.serialHex,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    keyType: cert.keyType,
    commonName: cert.commonNames.length === 1 ? cert.commonNames[0] : undefined,
  };
}

/**
 * The subject P-256 public key (65-byte point) of a certificate, e.g. the cloud's key from its
 * certificate for `makeKeyMessage`. No trust decision is made here. `bad-certificate` otherwise.
 */
export function certificateP256PublicKey(der: Uint8Array): Uint8Array {
  const cert = parseCertificate(der);
  if (cert.p256PublicKey === undefined) throw bad(`the subject key is ${cert.keyType}, not an EC P-256 key`);
  return cert.p256PublicKey;
}
