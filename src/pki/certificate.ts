/**
 * The cose-flow X.509 certificate profile (RFC 5280), read with the strict DER reader — no X.509
 * library. It is the one profile of the project: the device checks device certificates and the
 * cloud certificate with it, and the cloud's `cloud/pki/verify.ts` wraps the same rules
 * (`readCertificate`, `checkTrustAnchor`, `checkDeviceCertificate`, `checkValidity`) with
 * revocation and caching. Certificates are checked against one CA (trust anchor):
 *
 * - issued directly by a trust anchor: issuer Name DER equal to the anchor's subject Name DER,
 *   ecdsa-with-SHA256 signature over the tbsCertificate bytes as received verifying under the
 *   anchor's P-256 key; every anchor is a CA (basicConstraints cA, keyUsage — when present —
 *   with keyCertSign);
 * - the certificate is not a CA, its keyUsage (when present) has the bit its use needs
 *   (digitalSignature for a device, keyAgreement for the cloud), it has no extension twice and
 *   no critical extension outside basicConstraints, keyUsage, extKeyUsage, subjectKeyIdentifier,
 *   authorityKeyIdentifier, subjectAltName;
 * - the subject key is EC P-256; a device certificate's subject has exactly one CN, a valid
 *   device id;
 * - the certificate and its anchor are within their validity periods — when the clock is known.
 *   A device may not know the time (no RTC, no SNTP yet): its clock function returns undefined and
 *   the validity periods are not checked. Everything else still is.
 *
 * The device has no revocation check (it holds no revocation list) and no cache; the host adds both.
 * Refusals are `CoseError('bad-certificate')`; a bad trust anchor or clock is a configuration
 * error, a plain `Error`. Runtime-neutral (no Node APIs): this runs in XS.
 */
import { equal, toHex } from '../bytes.js';
import { CoseError } from '../cose/errors.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { CertifiedDevice, DeviceCertificateVerifier } from '../profile/key-message.js';
import { isValidDeviceId } from '../profile/topics.js';
import {
  DerError,
  type DerNode,
  expect,
  items,
  readBitStringBytes,
  readBits,
  readBoolean,
  readDer,
  readInteger,
  readOctetString,
  readOid,
  readSmallUnsigned,
  readTime,
  Tag,
} from './der.js';
import { ecdsaSignatureFromDer, readEcdsaSha256AlgorithmIdentifier } from './ecdsa-signature.js';
import { type Name, readName } from './name.js';
import { OID } from './oids.js';
import { readP256PublicKeyInfo } from './spki.js';

/** keyUsage bits as flags (bit i of the BIT STRING → 1 << i), the values @peculiar/x509 uses. */
export const KeyUsage = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  dataEncipherment: 8,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
  encipherOnly: 128,
  decipherOnly: 256,
} as const;

/** Extensions this profile knows; any other one marked critical is refused. */
export const KNOWN_EXTENSIONS: readonly string[] = [
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.subjectAltName,
];

/** Reader limits for a certificate (a device certificate is under 1 KiB and about 60 values). */
const LIMITS = { maxDepth: 16, maxNodes: 512 };
/** RFC 5280 §4.1.2.2: at most 20 octets. */
const MAX_SERIAL_BYTES = 20;

export interface Extension {
  oid: string;
  critical: boolean;
  /** The extnValue content (the extension's own DER), a view into `Certificate.der`. */
  value: Uint8Array;
}

/** A certificate taken apart. Byte arrays are views into `der`, a private copy of the input. */
export interface Certificate {
  der: Uint8Array;
  /** The tbsCertificate exactly as received: what the issuer's signature covers. */
  tbs: Uint8Array;
  /** 1 (no version field; then no extensions) or 3. */
  version: 1 | 3;
  /** Serial number, unsigned big-endian without leading zero bytes (positive, ≤ 20 bytes). */
  serial: Uint8Array;
  /** `serial` as lowercase hex (as `openssl x509 -serial` prints it, lowercased). */
  serialHex: string;
  issuer: Name;
  subject: Name;
  /** Validity period, milliseconds since the epoch (inclusive at both ends). */
  notBefore: number;
  notAfter: number;
  /** The subject key: a 65-byte uncompressed P-256 point (only such keys are accepted). */
  publicKey: Uint8Array;
  /** basicConstraints, when present. */
  basicConstraints: { cA: boolean; pathLength: number | undefined } | undefined;
  /** keyUsage as `KeyUsage` flags, when present. */
  keyUsage: number | undefined;
  extensions: Extension[];
  /** Always ecdsa-with-SHA256 (anything else is refused). */
  signatureAlgorithm: string;
  /** The issuer's signature as raw r ‖ s (64 bytes). */
  signature: Uint8Array;
}

function bad(message: string): CoseError {
  return new CoseError('bad-certificate', message);
}

/**
 * Parses one DER X.509 certificate of this profile. `CoseError('bad-certificate')` when it is not
 * strict DER, not a v1/v3 certificate, has trailing bytes, a key other than EC P-256, a signature
 * algorithm other than ecdsa-with-SHA256, a malformed or duplicated extension, an unknown critical
 * extension, or a malformed signature. No trust decision is made here.
 */
export function parseCertificate(der: Uint8Array): Certificate {
  if (!(der instanceof Uint8Array)) throw bad('the certificate is not a byte string');
  if (der.length === 0) throw bad('the certificate is empty');
  try {
    return readCertificate(der);
  } catch (e) {
    if (e instanceof DerError) throw bad(`not a certificate this device accepts: ${e.message}`);
    throw e;
  }
}

/**
 * `parseCertificate` for callers that word the refusal themselves: a `DerError` (with a `problem`
 * for some) when `der` is not a certificate of this profile. Reads a private copy of `der`.
 */
export function readCertificate(input: Uint8Array): Certificate {
  const der = input.slice();
  const [tbs, outerAlgorithm, signatureBits] = items(readDer(der, LIMITS), Tag.SEQUENCE, 'the certificate', 3, 3);
  const fields = items(tbs, Tag.SEQUENCE, 'tbsCertificate', 6, 10);
  let at = 0;
  let version: 1 | 3 = 1;
  if (fields[0]!.tag === 0xa0) {
    const [v] = items(fields[at++], 0xa0, 'the version', 1, 1);
    const number = readSmallUnsigned(v, 'the version');
    if (number === 0) throw new DerError('the version v1 is written out (DER omits the default)', v!.start);
    if (number !== 2) throw new DerError(`certificate version ${number + 1} is not supported (v1 or v3)`, v!.start);
    version = 3;
  }
  const serialNode = fields[at++];
  const serial = readInteger(serialNode, 'the serial number');
  if ((serial[0]! & 0x80) !== 0) throw new DerError('the serial number is negative', serialNode!.start);
  const magnitude = serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;
  if (magnitude.length === 1 && magnitude[0] === 0) throw new DerError('the serial number is 0', serialNode!.start);
  if (magnitude.length > MAX_SERIAL_BYTES) {
    throw new DerError(`the serial number is longer than ${MAX_SERIAL_BYTES} bytes`, serialNode!.start);
  }
  readEcdsaSha256AlgorithmIdentifier(fields[at++], 'the tbsCertificate signature algorithm');
  const issuer = readName(fields[at++], 'the issuer');
  const [notBefore, notAfter] = items(fields[at++], Tag.SEQUENCE, 'the validity', 2, 2);
  const subject = readName(fields[at++], 'the subject');
  const publicKey = readP256PublicKeyInfo(fields[at++], 'the subject key');
  let extensions: Extension[] = [];
  const rest = fields.slice(at);
  if (rest.length > 0 && (rest[0]!.tag === 0x81 || rest[0]!.tag === 0x82)) {
    throw new DerError('issuer and subject unique identifiers are not supported', rest[0]!.start);
  }
  if (rest.length > 0) {
    if (version !== 3) throw new DerError('a v1 certificate has extensions', rest[0]!.start);
    extensions = readExtensions(rest[0]);
  }
  if (rest.length > 1) throw new DerError('tbsCertificate has fields after the extensions', rest[1]!.start);

  readEcdsaSha256AlgorithmIdentifier(outerAlgorithm, 'the signature algorithm');
  const signature = ecdsaSignatureFromDer(readBitStringBytes(signatureBits, 'the signature'));
  const validity = { notBefore: readTime(notBefore, 'notBefore'), notAfter: readTime(notAfter, 'notAfter') };
  if (validity.notAfter < validity.notBefore) throw new DerError('notAfter is before notBefore', notBefore!.start);
  return {
    der,
    tbs: tbs!.encoding,
    version,
    serial: magnitude,
    serialHex: toHex(magnitude),
    issuer,
    subject,
    ...validity,
    publicKey,
    basicConstraints: extensionValue(OID.basicConstraints, () => readBasicConstraints(extensions)),
    keyUsage: extensionValue(OID.keyUsage, () => readKeyUsage(extensions)),
    extensions,
    signatureAlgorithm: OID.ecdsaWithSha256,
    signature,
  };
}

/**
 * [3] EXPLICIT SEQUENCE SIZE (1..MAX) OF Extension { extnID, critical DEFAULT FALSE, extnValue }.
 * An empty list is accepted (as the host does): @peculiar/x509 writes one for a certificate made
 * without extensions.
 */
function readExtensions(node: DerNode | undefined): Extension[] {
  const [list] = items(node, 0xa3, 'the extensions', 1, 1);
  const out: Extension[] = [];
  for (const ext of items(list, Tag.SEQUENCE, 'the extensions')) {
    const parts = items(ext, Tag.SEQUENCE, 'an extension', 2, 3);
    const oid = readOid(parts[0], 'an extension id');
    const critical = parts.length === 3 && readBoolean(parts[1], `the critical flag of extension ${oid}`);
    if (parts.length === 3 && !critical) {
      throw new DerError(`extension ${oid} writes out critical FALSE (DER omits the default)`, parts[1]!.start);
    }
    const value = readOctetString(parts[parts.length - 1], `the value of extension ${oid}`);
    if (out.some((e) => e.oid === oid)) {
      throw new DerError(`the extension ${oid} appears more than once`, ext.start, {
        kind: 'duplicate-extension',
        oid,
      });
    }
    if (critical && !KNOWN_EXTENSIONS.includes(oid)) {
      throw new DerError(`unrecognised critical extension ${oid}`, ext.start, { kind: 'critical-extension', oid });
    }
    out.push({ oid, critical, value });
  }
  return out;
}

/** Reads a known extension's value; its DerError says which extension was malformed. */
function extensionValue<T>(oid: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof DerError && e.problem === undefined) e.problem = { kind: 'extension-value', oid };
    throw e;
  }
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL } */
function readBasicConstraints(extensions: Extension[]): Certificate['basicConstraints'] {
  const ext = extensions.find((e) => e.oid === OID.basicConstraints);
  if (ext === undefined) return undefined;
  const parts = items(readDer(ext.value, LIMITS), Tag.SEQUENCE, 'basicConstraints', 0, 2);
  let cA = false;
  let pathLength: number | undefined;
  let at = 0;
  if (parts[at]?.tag === Tag.BOOLEAN) {
    cA = readBoolean(parts[at], 'basicConstraints cA');
    if (!cA) throw new DerError('basicConstraints writes out cA FALSE (DER omits the default)', parts[at]!.start);
    at++;
  }
  if (at < parts.length) pathLength = readSmallUnsigned(parts[at++], 'basicConstraints pathLenConstraint');
  if (at < parts.length) throw new DerError('basicConstraints has an unexpected field', parts[at]!.start);
  return { cA, pathLength };
}

/** KeyUsage ::= BIT STRING (named bits, trailing zero bits removed: DER). */
function readKeyUsage(extensions: Extension[]): number | undefined {
  const ext = extensions.find((e) => e.oid === OID.keyUsage);
  if (ext === undefined) return undefined;
  const node = expect(readDer(ext.value, LIMITS), Tag.BIT_STRING, 'keyUsage');
  const { bytes, unusedBits } = readBits(node, 'keyUsage');
  if (bytes.length > 0 && (bytes[bytes.length - 1]! & (1 << unusedBits)) === 0) {
    throw new DerError('keyUsage has trailing zero bits (not DER)', node.start);
  }
  let flags = 0;
  for (let bit = 0; bit < 9 && bit < bytes.length * 8; bit++) {
    if ((bytes[bit >> 3]! & (0x80 >> (bit & 7))) !== 0) flags |= 1 << bit;
  }
  return flags;
}

// ---------------------------------------------------------------------------------------------
// Trust decisions
// ---------------------------------------------------------------------------------------------

function label(cert: Certificate): string {
  return `certificate ${cert.subject.text} (serial ${cert.serialHex})`;
}

/**
 * Checks that `cert` was issued by `ca`: `cert`'s issuer Name DER equals `ca`'s subject Name DER
 * and the signature over the tbsCertificate verifies under `ca`'s key. Nothing else (not whether
 * `ca` is a CA, not the validity periods). `CoseError('bad-certificate')` otherwise.
 */
export function verifyIssuedBy(crypto: CryptoProvider, cert: Certificate, ca: Certificate): void {
  if (!equal(cert.issuer.der, ca.subject.der)) {
    throw bad(`${label(cert)} is issued by ${cert.issuer.text}, not by ${ca.subject.text}`);
  }
  if (!crypto.ecdsaP256Verify(ca.publicKey, cert.tbs, cert.signature)) {
    throw bad(`${label(cert)}: the signature does not verify with the key of ${ca.subject.text}`);
  }
}

/** Reads and checks a CA certificate given as configuration; a plain Error (not a refusal) otherwise. */
function loadTrustAnchor(der: Uint8Array, what: string): Certificate {
  let ca: Certificate;
  try {
    ca = parseCertificate(der);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  return checkTrustAnchor(ca, what);
}

/**
 * Checks that `ca` (`what`: "trust anchor 0", …) may be a trust anchor: a CA (basicConstraints
 * cA) whose keyUsage, when present, has keyCertSign. A plain Error (a configuration problem) otherwise.
 */
export function checkTrustAnchor(ca: Certificate, what: string): Certificate {
  const name = `${what} (${ca.subject.text})`;
  if (ca.basicConstraints === undefined || !ca.basicConstraints.cA) {
    const why =
      ca.basicConstraints === undefined ? 'it has no basicConstraints extension' : 'basicConstraints cA is false';
    throw new Error(`${name} is not a CA certificate: ${why}`);
  }
  if (ca.keyUsage !== undefined && (ca.keyUsage & KeyUsage.keyCertSign) === 0) {
    throw new Error(`${name} has a keyUsage without keyCertSign: it may not sign certificates`);
  }
  return ca;
}

/** An end-entity certificate: not a CA, and its keyUsage (when present) has `usage`. */
function checkEndEntity(cert: Certificate, usage: keyof typeof KeyUsage): void {
  if (cert.basicConstraints?.cA) {
    throw bad(`${label(cert)} is a CA certificate (basicConstraints cA=true), not an end-entity certificate`);
  }
  if (cert.keyUsage !== undefined && (cert.keyUsage & KeyUsage[usage]) === 0) {
    throw bad(`${label(cert)}: its keyUsage (${keyUsageNames(cert.keyUsage)}) does not include ${usage}`);
  }
}

function keyUsageNames(flags: number): string {
  const names = Object.entries(KeyUsage)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
  return names.length > 0 ? names.join(', ') : 'none';
}

/** The clock's reading: epoch milliseconds, or undefined when the time is not known. */
function readClock(now: () => number | undefined): number | undefined {
  const t = now();
  if (t === undefined) return undefined;
  if (typeof t !== 'number' || !Number.isFinite(t)) {
    throw new Error(`the verifier clock must return epoch milliseconds or undefined, got ${String(t)}`);
  }
  return t;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `cert` and its issuer `ca` are both within their validity periods at `t` (epoch ms); `bad-certificate` otherwise. */
export function checkValidity(cert: Certificate, ca: Certificate, t: number): void {
  if (t < cert.notBefore)
    throw bad(`${label(cert)} is not yet valid: notBefore ${iso(cert.notBefore)} is after ${iso(t)}`);
  if (t > cert.notAfter) throw bad(`${label(cert)} has expired: notAfter ${iso(cert.notAfter)} is before ${iso(t)}`);
  if (t < ca.notBefore || t > ca.notAfter) {
    throw bad(
      `the issuing CA ${ca.subject.text} is outside its validity period ${iso(ca.notBefore)} … ${iso(ca.notAfter)} at ${iso(t)}`,
    );
  }
}

export interface CertificateVerifierOptions {
  crypto: CryptoProvider;
  /** The CA certificates (DER) allowed to issue device certificates; each must be a CA. */
  trustAnchors: Uint8Array[];
  /**
   * The clock in epoch milliseconds; default `Date.now`. Return undefined when the time is not
   * known (no RTC, SNTP not yet synchronised): the validity periods are then NOT checked, every
   * other rule still is. A device without a trustworthy clock must say so this way: an unset
   * clock that reads 1970 makes every certificate "not yet valid".
   */
  now?: () => number | undefined;
}

/**
 * A `DeviceCertificateVerifier` for `openKeyMessage`: the rules at the top of this file, without
 * revocation or cache (the host's `deviceCertificateVerifier` adds those). Checks the trust anchors now: a plain Error when one is unusable.
 */
export function certificateVerifier(options: CertificateVerifierOptions): DeviceCertificateVerifier {
  const { crypto, trustAnchors } = options;
  if (crypto === null || typeof crypto !== 'object') throw new TypeError('certificateVerifier needs a crypto provider');
  if (!Array.isArray(trustAnchors) || trustAnchors.length === 0) {
    throw new Error('certificateVerifier needs at least one trust anchor (CA certificate DER)');
  }
  const now = options.now ?? (() => Date.now());
  if (typeof now !== 'function') throw new TypeError('now must be a function');
  const anchors = trustAnchors.map((der, i) => loadTrustAnchor(der, `trust anchor ${i}`));

  return (certificateDer: Uint8Array): CertifiedDevice => {
    const cert = parseCertificate(certificateDer);
    const { deviceId, anchor } = checkDeviceCertificate(crypto, cert, anchors);
    const t = readClock(now);
    if (t !== undefined) checkValidity(cert, anchor, t);
    return { deviceId, publicKey: cert.publicKey.slice() };
  };
}

/**
 * The rules of a device certificate that do not depend on the time: issued by one of `anchors`
 * (checked with `checkTrustAnchor`; issuer Name and signature), not a CA, keyUsage (when present)
 * with digitalSignature, exactly one subject CN that is a valid device id. Returns the device id
 * and the anchor that issued it; `CoseError('bad-certificate')` otherwise.
 */
export function checkDeviceCertificate(
  crypto: CryptoProvider,
  cert: Certificate,
  anchors: readonly Certificate[],
): { deviceId: string; anchor: Certificate } {
  // Plain loops, no callbacks: the signature check is the deepest call, and XS stacks are small.
  let named = 0;
  let anchor: Certificate | undefined;
  for (const a of anchors) {
    if (!equal(a.subject.der, cert.issuer.der)) continue;
    named++;
    if (crypto.ecdsaP256Verify(a.publicKey, cert.tbs, cert.signature)) {
      anchor = a;
      break;
    }
  }
  if (named === 0) throw bad(`${label(cert)} is issued by ${cert.issuer.text}, which is not a trust anchor`);
  if (anchor === undefined) {
    throw bad(`${label(cert)}: the signature does not verify with the key of trust anchor ${cert.issuer.text}`);
  }
  checkEndEntity(cert, 'digitalSignature');
  const cns = cert.subject.commonNames;
  if (cns.length !== 1)
    throw bad(`${label(cert)}: the subject has ${cns.length} common names (CN), expected exactly one`);
  if (!isValidDeviceId(cns[0]!)) {
    throw bad(
      `${label(cert)}: the subject CN ${JSON.stringify(cns[0])} is not a valid device id (1–64 of A-Z a-z 0-9 . _ -)`,
    );
  }
  return { deviceId: cns[0]!, anchor };
}

/**
 * The cloud's P-256 public key (65-byte point, for `makeKeyMessage`) from its certificate, once
 * the certificate is checked against the CA `caDer`: issued by it, not a CA, keyUsage (when
 * present) with keyAgreement, and — when `now` (epoch ms) is given — both within their validity
 * periods. `CoseError('bad-certificate')` for the certificate, a plain Error for a bad CA.
 */
export function verifyCloudCertificate(
  crypto: CryptoProvider,
  der: Uint8Array,
  caDer: Uint8Array,
  now?: number,
): Uint8Array {
  const ca = loadTrustAnchor(caDer, 'the CA certificate');
  const cert = parseCertificate(der);
  verifyIssuedBy(crypto, cert, ca);
  checkEndEntity(cert, 'keyAgreement');
  const t = readClock(() => now);
  if (t !== undefined) checkValidity(cert, ca, t);
  return cert.publicKey.slice();
}
