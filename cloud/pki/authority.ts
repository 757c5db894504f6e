/**
 * The project's certificate authority on the host: make a CA (or load one from its files), issue
 * device and cloud certificates for P-256 public keys, and make host-side key pairs (the cloud key,
 * simulated devices). Built with @peculiar/x509 over node's WebCrypto, except device certificates
 * (one per enrollment): those are written with src/pki's DER writer and signed with node:crypto,
 * byte for byte what @peculiar/x509 makes for the profile up to the signature (a test compares).
 *
 *   const ca = await createCa({ name: 'my CA' });                // ca.pem / ca.keyPem → files
 *   const device = generateKeyPair();                            // or the public key of a CSR
 *   const cert = await issueCertificate(ca, { commonName: 'dev-1', publicKey: device.publicKey, keyUsage: 'device' });
 *
 * Certificate profiles (docs/PROTOCOL.md 4.7), all ecdsa-with-SHA256, P-256 keys, subject = CN only:
 * - CA: self-signed; basicConstraints cA=TRUE pathLen 0 (critical); keyUsage keyCertSign|cRLSign
 *   (critical); subjectKeyIdentifier.
 * - device: issued directly by the CA; CN = device id; basicConstraints cA=FALSE (critical);
 *   keyUsage digitalSignature (critical); subjectKeyIdentifier; authorityKeyIdentifier.
 * - cloud: the same with keyUsage keyAgreement (its key receives ECDH-ES key messages).
 * Serial numbers are 16 random bytes, positive. They pass `openssl verify -x509_strict`.
 *
 * Later CA work builds on this module: `ca init` writes `createCa`'s PEMs, `ca issue --csr` passes the
 * CSR's public key to `issueCertificate`, revocation records `IssuedCertificate.serialHex` (the same
 * form `deviceCertificateVerifier` passes to `isRevoked`), and CRLs are signed with `keys.privateKey`.
 */
import { createECDH, createHash, createPublicKey, generateKeyPairSync, KeyObject, sign, webcrypto } from 'node:crypto';
import { fromHex, wipe } from '../../src/bytes.js';
import * as DER from '../../src/pki/der.js';
import { ecdsaSha256AlgorithmIdentifier } from '../../src/pki/ecdsa-signature.js';
import { p256PublicKeyInfo } from '../../src/pki/spki.js';
import { isValidDeviceId } from '../../src/profile/topics.js';
import { integerHex, type ParsedCertificate, parseCertificate } from './certificate.js';
import { p256PrivateScalar, parseCertificates } from './files.js';
import { x509 } from './x509.js';

type X509Crypto = Parameters<typeof x509.cryptoProvider.set>[0];
/** Passed explicitly to every @peculiar/x509 call: the library's global provider is left alone. */
const provider = webcrypto as unknown as X509Crypto;
const subtle = webcrypto.subtle;

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export const DEFAULT_CA_NAME = 'cose-flow CA';
export const DEFAULT_CA_VALIDITY_DAYS = 3650;
export const DEFAULT_CERTIFICATE_VALIDITY_DAYS = 365;
/** notBefore is set this far in the past (clock skew between the CA host and verifiers). */
export const BACKDATE_MS = HOUR;
/** Random serial numbers: 16 bytes, top bit clear (positive), first byte non-zero (always 16 bytes). */
export const SERIAL_BYTES = 16;
/** RFC 5280 §4.1.2.2: a serial number is at most 20 octets. */
const MAX_SERIAL_OCTETS = 20;
/** X.520 ub-common-name. */
const MAX_COMMON_NAME = 64;
const MAX_VALIDITY_DAYS = 100 * 365;

/** What a certificate is for: `device` signs key messages, `cloud` receives them (ECDH). */
export type CertificateProfile = 'device' | 'cloud';

/** A CA that can issue: its certificate, its private key (PKCS#8 PEM) and the WebCrypto keys that sign. */
export interface CertificateAuthority {
  /** The CA's common name (or its whole subject when it has no single CN). */
  name: string;
  /** The CA certificate, DER. */
  der: Uint8Array;
  /** The CA certificate, PEM. */
  pem: string;
  /** The CA private key, PKCS#8 PEM ("PRIVATE KEY"). Secret: write it with file mode 0600. */
  keyPem: string;
  /** The CA public key, a 65-byte uncompressed P-256 point. */
  publicKey: Uint8Array;
  /** The CA certificate as @peculiar/x509 sees it (subject Name, validity, extensions). */
  certificate: x509.X509Certificate;
  /** The CA key pair in WebCrypto: `privateKey` signs certificates (and CRLs). */
  keys: webcrypto.CryptoKeyPair;
}

export interface CreateCaOptions {
  /** The CA's common name; default "cose-flow CA". */
  name?: string;
  /** Validity from now (backdated by `BACKDATE_MS`); default 3650 days. */
  validityDays?: number;
  /** Exact validity bounds, overriding the defaults (e.g. for tests of expired CAs). */
  notBefore?: Date;
  notAfter?: Date;
}

export interface IssueCertificateOptions {
  /** Subject CN. For a device certificate the device id (checked with `isValidDeviceId`). */
  commonName: string;
  /** The subject's P-256 public key, a 65-byte uncompressed point (0x04 ‖ x ‖ y). */
  publicKey: Uint8Array;
  keyUsage: CertificateProfile;
  /**
   * Validity from now (backdated by `BACKDATE_MS`); default 365 days. The defaulted bounds are
   * clamped to the CA's own validity; issuing from a CA that has expired fails.
   */
  validityDays?: number;
  /** Serial number as hex (a positive integer of at most 20 octets); default 16 random bytes. */
  serialHex?: string;
  /** Exact validity bounds, overriding `validityDays` and taken as given (not clamped). */
  notBefore?: Date;
  notAfter?: Date;
}

/** An issued certificate and the facts a CA records about it. */
export interface IssuedCertificate {
  der: Uint8Array;
  pem: string;
  certificate: x509.X509Certificate;
  /** Lowercase hex without leading zero bytes: the form `deviceCertificateVerifier` gives `isRevoked`. */
  serialHex: string;
  commonName: string;
  keyUsage: CertificateProfile;
  notBefore: Date;
  notAfter: Date;
}

/** A P-256 key pair made on the host. */
export interface GeneratedKeyPair {
  /** PKCS#8 PEM ("PRIVATE KEY"). Secret: write it with file mode 0600. */
  privateKeyPem: string;
  /** 65-byte uncompressed point. */
  publicKey: Uint8Array;
  /** The 32-byte private scalar (for `CryptoProvider.p256Import`); the caller should wipe it after use. */
  privateScalar: Uint8Array;
}

/** A new P-256 key pair from node:crypto (OpenSSL). */
export function generateKeyPair(): GeneratedKeyPair {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = privateKey.export({ format: 'jwk' });
  const coordinate = (b64: string | undefined) => leftPad(new Uint8Array(Buffer.from(b64 ?? '', 'base64url')));
  const publicKey = new Uint8Array(65);
  publicKey[0] = 0x04;
  publicKey.set(coordinate(jwk.x), 1);
  publicKey.set(coordinate(jwk.y), 33);
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    publicKey,
    privateScalar: coordinate(jwk.d),
  };
}

/** A new self-signed P-256 CA. */
export async function createCa(options: CreateCaOptions = {}): Promise<CertificateAuthority> {
  const name = checkName(options.name ?? DEFAULT_CA_NAME, 'CA name');
  const { notBefore, notAfter } = validity(options, DEFAULT_CA_VALIDITY_DAYS);
  const keys = (await subtle.generateKey(P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialHex(),
      name: [{ CN: [name] }],
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider),
      ],
    },
    provider,
  );
  const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  pkcs8.fill(0);
  const der = new Uint8Array(certificate.rawData);
  return {
    name,
    der,
    pem: certificate.toString('pem'),
    keyPem,
    publicKey: new Uint8Array(await subtle.exportKey('raw', keys.publicKey)),
    certificate,
    keys,
  };
}

/**
 * An existing CA from its certificate (PEM or DER; one certificate) and private key (PKCS#8 or
 * SEC1, PEM or DER, unencrypted). Refuses a certificate that is not a P-256 CA that may sign
 * certificates, and a key that does not belong to it. An expired CA loads (to list or revoke)
 * but cannot issue.
 */
export async function loadCa(
  certificate: string | Uint8Array,
  privateKey: string | Uint8Array,
): Promise<CertificateAuthority> {
  const ders = parseCertificates(certificate);
  if (ders.length !== 1) throw new Error(`the CA file holds ${ders.length} certificates, expected exactly one`);
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(ders[0]!);
  } catch (e) {
    throw new Error(`the CA certificate is unreadable: ${(e as Error).message}`);
  }
  const problem = caProblem(cert.x509);
  if (problem !== undefined) throw new Error(`${cert.subject} cannot issue certificates: ${problem}`);
  if (cert.p256PublicKey === undefined) throw new Error(`the CA key is ${cert.keyType}; only EC P-256 is supported`);
  const publicKey = cert.p256PublicKey;

  const d = p256PrivateScalar(privateKey);
  let signingKey: webcrypto.CryptoKey;
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(d);
    if (!Buffer.from(ecdh.getPublicKey()).equals(Buffer.from(publicKey))) {
      throw new Error(`the private key does not belong to the CA certificate ${cert.subject}`);
    }
    const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
    signingKey = await subtle.importKey(
      'jwk',
      { kty: 'EC', crv: 'P-256', x: b64(publicKey.subarray(1, 33)), y: b64(publicKey.subarray(33)), d: b64(d) },
      P256,
      true,
      ['sign'],
    );
  } finally {
    wipe(d);
  }
  const verifyKey = await subtle.importKey('raw', publicKey, P256, true, ['verify']);
  const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', signingKey));
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  pkcs8.fill(0);
  return {
    name: cert.commonNames.length === 1 ? cert.commonNames[0]! : cert.subject,
    der: cert.der,
    pem: cert.x509.toString('pem'),
    keyPem,
    publicKey,
    certificate: cert.x509,
    keys: { privateKey: signingKey, publicKey: verifyKey },
  };
}

/** Issues a device or cloud certificate for `publicKey`, signed by `ca`. */
export async function issueCertificate(
  ca: CertificateAuthority,
  options: IssueCertificateOptions,
): Promise<IssuedCertificate> {
  const { commonName, keyUsage } = options;
  if (keyUsage === 'device') {
    if (!isValidDeviceId(commonName)) {
      throw new RangeError(
        `invalid device id ${JSON.stringify(commonName)} for a device certificate: use 1–64 of A-Z a-z 0-9 . _ -`,
      );
    }
  } else if (keyUsage === 'cloud') {
    checkName(commonName, 'cloud certificate common name');
  } else {
    throw new RangeError(`keyUsage must be 'device' or 'cloud', got ${JSON.stringify(keyUsage)}`);
  }
  const problem = caProblem(ca.certificate);
  if (problem !== undefined) throw new Error(`${ca.certificate.subject} cannot issue certificates: ${problem}`);
  const serialHex = options.serialHex === undefined ? randomSerialHex() : checkSerialHex(options.serialHex);
  // A device certificate's key goes into DER as it is (checked on the curve); a cloud one into WebCrypto.
  const deviceSpki = keyUsage === 'device' ? p256Spki(options.publicKey) : undefined;
  const subjectKey = deviceSpki === undefined ? await importPublicKey(options.publicKey) : undefined;

  let { notBefore, notAfter } = validity(options, DEFAULT_CERTIFICATE_VALIDITY_DAYS);
  if (options.notBefore === undefined && notBefore < ca.certificate.notBefore) notBefore = ca.certificate.notBefore;
  if (options.notAfter === undefined && notAfter > ca.certificate.notAfter) notAfter = ca.certificate.notAfter;
  if (options.notAfter === undefined && (notAfter.getTime() <= Date.now() || notAfter <= notBefore)) {
    throw new Error(
      `the CA ${ca.certificate.subject} is valid until ${ca.certificate.notAfter.toISOString()}: ` +
        'a certificate issued now would never be valid',
    );
  }
  if (notAfter <= notBefore) {
    throw new RangeError(`notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`);
  }

  if (deviceSpki !== undefined) {
    // The enrollment service's path (one per enrolled device): the same certificate, built with
    // src/pki's DER writer and signed with node:crypto, without @peculiar/x509's object model.
    const der = deviceCertificateDer(ca, {
      serialHex,
      commonName,
      publicKey: options.publicKey,
      spki: deviceSpki,
      notBefore,
      notAfter,
    });
    let certificate: x509.X509Certificate | undefined;
    return {
      der,
      pem: x509.PemConverter.encode(der, 'CERTIFICATE'),
      get certificate() {
        certificate ??= new x509.X509Certificate(der);
        return certificate;
      },
      serialHex: integerHex(fromHex(serialHex)),
      commonName,
      keyUsage,
      notBefore: wholeSeconds(notBefore),
      notAfter: wholeSeconds(notAfter),
    };
  }
  const usage = x509.KeyUsageFlags.keyAgreement;
  const publicKey = subjectKey!;
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex,
      subject: [{ CN: [commonName] }],
      issuer: ca.certificate.subjectName,
      notBefore,
      notAfter,
      signingAlgorithm: SIGNING,
      publicKey,
      signingKey: ca.keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(usage, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, provider),
        await authorityKeyIdentifier(ca),
      ],
    },
    provider,
  );
  const der = new Uint8Array(certificate.rawData);
  // The generator's certificate is parsed from those bytes already: its serial and dates are what
  // the DER says (no second parse per certificate).
  return {
    der,
    pem: certificate.toString('pem'),
    certificate,
    serialHex: integerHex(fromHex(certificate.serialNumber)),
    commonName,
    keyUsage,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
  };
}

/** What signing a device certificate needs of a CA, worked out once per CA (its objects are reused). */
interface DerSigner {
  issuerDer: Uint8Array;
  authorityKeyId: Uint8Array;
  key: KeyObject;
}
const derSigners = new WeakMap<CertificateAuthority, DerSigner>();

function derSigner(ca: CertificateAuthority): DerSigner {
  let signer = derSigners.get(ca);
  if (signer === undefined) {
    // The issuer is the CA certificate's subject, byte for byte.
    const [tbs] = DER.items(DER.readDer(ca.der), DER.Tag.SEQUENCE, 'the CA certificate', 3, 3);
    const subject = DER.items(tbs, DER.Tag.SEQUENCE, 'the CA tbsCertificate', 7)[5]!;
    const ski = ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension);
    signer = {
      issuerDer: subject.encoding,
      // As `authorityKeyIdentifier`: the CA's own SKI, else the RFC 5280 SHA-1 of its key.
      authorityKeyId: ski !== null ? fromHex(ski.keyId) : sha1(ca.publicKey),
      key: KeyObject.from(ca.keys.privateKey),
    };
    derSigners.set(ca, signer);
  }
  return signer;
}

function sha1(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(bytes).digest());
}

const wholeSeconds = (t: Date): Date => new Date(Math.floor(t.getTime() / 1000) * 1000);

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050, whole seconds, Z. */
function derTime(t: Date): Uint8Array {
  const iso = wholeSeconds(t).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = t.getUTCFullYear();
  return year < 2050
    ? DER.tlv(DER.Tag.UTC_TIME, Buffer.from(digits.slice(2), 'latin1'))
    : DER.tlv(DER.Tag.GENERALIZED_TIME, Buffer.from(digits, 'latin1'));
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? DER.sequence(DER.oid(id), DER.boolean(true), DER.octetString(value))
    : DER.sequence(DER.oid(id), DER.octetString(value));
}

/**
 * The device profile (top of this file) as DER: what `X509CertificateGenerator.create` makes for
 * it, byte for byte up to the signature (test/pki/authority.test.ts compares the two).
 */
function deviceCertificateDer(
  ca: CertificateAuthority,
  c: {
    serialHex: string;
    commonName: string;
    publicKey: Uint8Array;
    spki: Uint8Array;
    notBefore: Date;
    notAfter: Date;
  },
): Uint8Array {
  const { spki } = c;
  const signer = derSigner(ca);
  const cn = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(c.commonName)
    ? DER.printableString(c.commonName)
    : DER.utf8String(c.commonName);
  const tbs = DER.sequence(
    DER.contextConstructed(0, DER.integer(Uint8Array.of(2))),
    DER.integer(fromHex(c.serialHex)),
    ecdsaSha256AlgorithmIdentifier(),
    signer.issuerDer,
    DER.sequence(derTime(c.notBefore), derTime(c.notAfter)),
    DER.sequence(DER.setOf(DER.sequence(DER.oid(OID_CN), cn))),
    spki,
    DER.contextConstructed(
      3,
      DER.sequence(
        extension(OID_BASIC_CONSTRAINTS, true, DER.sequence()),
        // digitalSignature: bit 0, so 7 unused bits.
        extension(OID_KEY_USAGE, true, DER.tlv(DER.Tag.BIT_STRING, Uint8Array.of(7, 0x80))),
        extension(OID_SKI, false, DER.octetString(sha1(c.publicKey))),
        extension(OID_AKI, false, DER.sequence(DER.contextPrimitive(0, signer.authorityKeyId))),
      ),
    ),
  );
  const signature = sign('sha256', tbs, { key: signer.key, dsaEncoding: 'der' });
  return DER.sequence(tbs, ecdsaSha256AlgorithmIdentifier(), DER.bitString(new Uint8Array(signature)));
}

const OID_CN = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_SKI = '2.5.29.14';
const OID_AKI = '2.5.29.35';

/** Why `cert` may not issue certificates (not a CA, keyUsage without keyCertSign), or undefined. */
function caProblem(cert: x509.X509Certificate): string | undefined {
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (bc === null || !bc.ca)
    return bc === null ? 'it has no basicConstraints extension' : 'basicConstraints cA is false';
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku !== null && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) return 'its keyUsage lacks keyCertSign';
  return undefined;
}

/** The CA's own subjectKeyIdentifier when it has one (so the AKI matches it), else the RFC 5280 SHA-1 id. */
async function authorityKeyIdentifier(ca: CertificateAuthority): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski !== null) return new x509.AuthorityKeyIdentifierExtension(ski.keyId, false);
  return x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey, false, provider);
}

/** A subject key must be an uncompressed P-256 point (whether it is on the curve is checked after). */
function checkPointShape(point: Uint8Array): void {
  if (!(point instanceof Uint8Array) || point.length !== 65 || point[0] !== 0x04) {
    throw new RangeError('the public key must be a 65-byte uncompressed P-256 point (0x04 ‖ x ‖ y)');
  }
}

/** The SubjectPublicKeyInfo of a P-256 point, with the same checks and messages as `importPublicKey`. */
function p256Spki(point: Uint8Array): Uint8Array {
  checkPointShape(point);
  const spki = p256PublicKeyInfo(point);
  try {
    createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }); // refuses a point off the curve
  } catch {
    throw new RangeError('the public key is not a point on P-256');
  }
  return spki;
}

async function importPublicKey(point: Uint8Array): Promise<webcrypto.CryptoKey> {
  checkPointShape(point);
  try {
    return await subtle.importKey('raw', point, P256, true, ['verify']);
  } catch {
    throw new RangeError('the public key is not a point on P-256');
  }
}

function validity(options: { validityDays?: number; notBefore?: Date; notAfter?: Date }, defaultDays: number) {
  const days = options.validityDays ?? defaultDays;
  if (!Number.isInteger(days) || days < 1 || days > MAX_VALIDITY_DAYS) {
    throw new RangeError(`validityDays must be an integer from 1 to ${MAX_VALIDITY_DAYS}, got ${days}`);
  }
  const now = Date.now();
  const notBefore = options.notBefore ?? new Date(now - BACKDATE_MS);
  const notAfter = options.notAfter ?? new Date(now + days * DAY);
  for (const [label, date] of [
    ['notBefore', notBefore],
    ['notAfter', notAfter],
  ] as const) {
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new RangeError(`${label} is not a valid date`);
  }
  if (notAfter <= notBefore) {
    throw new RangeError(`notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`);
  }
  return { notBefore, notAfter };
}

function checkName(name: string, what: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_COMMON_NAME || /\p{Cc}/u.test(name)) {
    throw new RangeError(`${what} must be 1–${MAX_COMMON_NAME} characters without control characters`);
  }
  return name;
}

function randomSerialHex(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(SERIAL_BYTES));
  bytes[0] = bytes[0]! & 0x7f || 0x01; // positive, and no leading zero byte
  return Buffer.from(bytes).toString('hex');
}

/** A given serial: hex of a positive integer of at most 20 DER octets, normalized (lowercase, no leading zeros). */
function checkSerialHex(hex: string): string {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]+$/.test(hex)) throw new RangeError('serialHex must be hex digits');
  let digits = hex.toLowerCase().replace(/^0+/, '');
  if (digits.length === 0) throw new RangeError('the serial number must be positive (not zero)');
  if (digits.length % 2 === 1) digits = `0${digits}`;
  const octets = digits.length / 2 + (Number.parseInt(digits.slice(0, 2), 16) >= 0x80 ? 1 : 0);
  if (octets > MAX_SERIAL_OCTETS) {
    throw new RangeError(`the serial number takes ${octets} octets; RFC 5280 allows at most ${MAX_SERIAL_OCTETS}`);
  }
  return digits;
}

function leftPad(bytes: Uint8Array): Uint8Array {
  if (bytes.length > 32) throw new Error(`a P-256 coordinate or scalar of ${bytes.length} bytes`);
  const out = new Uint8Array(32);
  out.set(bytes, 32 - bytes.length);
  return out;
}
