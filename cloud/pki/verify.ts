/**
 * Host verification of device certificates (the `DeviceCertificateVerifier` of the key message).
 *
 * A device certificate is accepted when it is issued directly by one of the trust anchors (issuer
 * Name equal to the anchor's subject, ecdsa-with-SHA256 signature verifying under the anchor's P-256
 * key, checked synchronously through the `CryptoProvider`), both it and the anchor are within their
 * validity period, its subject key is EC P-256, its key usage (when present) allows
 * digitalSignature, it is not a CA, it carries no critical extension this code does not know, it
 * is not revoked, and its subject has exactly one CN that is a valid device id (the device id).
 *
 * Successful results are cached by SHA-256 of the certificate bytes (bounded LRU); the validity
 * period and the revocation check are evaluated again on every call, cache hit or not.
 *
 * Against floods (docs/CLOUD.md "Floods and quotas"): a certificate larger than
 * `maxCertificateBytes` (default 2 KiB; the project's device certificates are about 400 bytes) is
 * refused before it is hashed or parsed, and a certificate that failed the checks that depend
 * only on its bytes and the trust anchors (parse, issuer, signature, extensions, key, CN) is
 * remembered by its SHA-256 (bounded LRU) and refused again without parsing or verifying it.
 */
import { equal, toHex } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { OID } from '../../src/pki/oids.js';
import type { CertifiedDevice, DeviceCertificateVerifier } from '../../src/profile/key-message.js';
import { isValidDeviceId } from '../../src/profile/topics.js';
import { ecdsaSha256Signature, type ParsedCertificate, parseCertificate } from './certificate.js';
import { x509 } from './x509.js';

/** What a revocation check learns about the certificate in question. */
export interface RevocationQuery {
  /** Serial number: lowercase hex without leading zero bytes (as `openssl x509 -serial` prints it, lowercased). */
  serialHex: string;
  /** The issuer Name (RFC 4514 string); serials are unique per issuer. */
  issuer: string;
  deviceId: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  sha256: string;
}

export interface DeviceCertificateVerifierOptions {
  crypto: CryptoProvider;
  /** The CA certificates (DER) allowed to issue device certificates. Each must be a CA (basicConstraints cA). */
  trustAnchors: Uint8Array[];
  /** The clock; default `() => new Date()`. */
  now?: () => Date;
  /** True when the certificate is revoked. Called on every verification; if it throws, the certificate is refused. */
  isRevoked?: (serialHex: string, certificate: RevocationQuery) => boolean;
  /** Verified certificates remembered (LRU by SHA-256 of the DER). Default 10 000; 0 disables the cache. */
  cacheSize?: number;
  /** Certificates that failed, remembered (LRU by SHA-256 of the DER). Default 10 000; 0 disables it. */
  failedCacheSize?: number;
  /** Larger certificates are refused before parsing (default 2048 bytes). */
  maxCertificateBytes?: number;
}

/** The extensions this profile understands; any other marked critical is refused. */
const KNOWN_EXTENSIONS: readonly string[] = [
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.subjectAltName,
];

export const DEFAULT_CERTIFICATE_CACHE_SIZE = 10_000;
export const DEFAULT_MAX_CERTIFICATE_BYTES = 2048;

interface TrustAnchor {
  cert: ParsedCertificate;
  publicKey: Uint8Array;
}

interface VerifiedCertificate {
  deviceId: string;
  publicKey: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  serialHex: string;
  issuer: string;
  anchor: TrustAnchor;
  subject: string;
}

function bad(message: string): CoseError {
  return new CoseError('bad-certificate', message);
}

function basicConstraintsOf(cert: ParsedCertificate): x509.BasicConstraintsExtension | null {
  return cert.x509.getExtension(x509.BasicConstraintsExtension);
}

function keyUsageOf(cert: ParsedCertificate): x509.KeyUsagesExtension | null {
  return cert.x509.getExtension(x509.KeyUsagesExtension);
}

/** Checks one trust anchor when the verifier is made; a plain Error (configuration problem) otherwise. */
function loadTrustAnchor(der: Uint8Array, index: number): TrustAnchor {
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(der);
  } catch (e) {
    throw new Error(`trust anchor ${index}: ${(e as Error).message}`);
  }
  const name = `trust anchor ${index} (${cert.subject})`;
  const bc = basicConstraintsOf(cert);
  if (bc === null || !bc.ca) {
    throw new Error(
      `${name} is not a CA certificate: ${bc === null ? 'it has no basicConstraints extension' : 'basicConstraints cA is false'}`,
    );
  }
  const ku = keyUsageOf(cert);
  if (ku !== null && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new Error(`${name} has a keyUsage without keyCertSign: it may not sign certificates`);
  }
  if (cert.p256PublicKey === undefined) {
    throw new Error(`${name} has a ${cert.keyType} key; only EC P-256 CA keys are supported`);
  }
  return { cert, publicKey: cert.p256PublicKey };
}

/** Makes the verifier `openKeyMessage` calls for the certificate in a key message. */
export function deviceCertificateVerifier(options: DeviceCertificateVerifierOptions): DeviceCertificateVerifier {
  const { crypto } = options;
  const now = options.now ?? (() => new Date());
  const cacheSize = options.cacheSize ?? DEFAULT_CERTIFICATE_CACHE_SIZE;
  const failedCacheSize = options.failedCacheSize ?? DEFAULT_CERTIFICATE_CACHE_SIZE;
  const maxBytes = options.maxCertificateBytes ?? DEFAULT_MAX_CERTIFICATE_BYTES;
  if (!Array.isArray(options.trustAnchors) || options.trustAnchors.length === 0) {
    throw new Error('deviceCertificateVerifier needs at least one trust anchor (CA certificate DER)');
  }
  const anchors = options.trustAnchors.map(loadTrustAnchor);
  /** Insertion-ordered Map as an LRU: a hit moves its entry to the end. */
  const cache = new Map<string, VerifiedCertificate>();
  /** Why each remembered failure failed (the same error is thrown again). */
  const failed = new Map<string, CoseError>();

  function verifyOnce(der: Uint8Array): VerifiedCertificate {
    const cert = parseCertificate(der);
    const name = `certificate ${cert.subject} (serial ${cert.serialHex})`;
    const signature = ecdsaSha256Signature(cert);
    const issuers = anchors.filter((a) => equal(a.cert.subjectDer, cert.issuerDer));
    if (issuers.length === 0) {
      throw bad(`${name} is issued by ${cert.issuer}, which is not a trust anchor`);
    }
    const anchor = issuers.find((a) => crypto.ecdsaP256Verify(a.publicKey, cert.tbs, signature));
    if (anchor === undefined) {
      throw bad(`${name}: the signature does not verify with the key of trust anchor ${cert.issuer}`);
    }
    checkExtensions(cert, name);
    if (cert.p256PublicKey === undefined) throw bad(`${name}: the subject key is ${cert.keyType}, not EC P-256`);
    if (cert.commonNames.length !== 1) {
      throw bad(`${name}: the subject has ${cert.commonNames.length} common names (CN), expected exactly one`);
    }
    const deviceId = cert.commonNames[0]!;
    if (!isValidDeviceId(deviceId)) {
      throw bad(
        `${name}: the subject CN ${JSON.stringify(deviceId)} is not a valid device id (1–64 of A-Z a-z 0-9 . _ -)`,
      );
    }
    return {
      deviceId,
      publicKey: cert.p256PublicKey,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      serialHex: cert.serialHex,
      issuer: cert.issuer,
      subject: cert.subject,
      anchor,
    };
  }

  function checkTime(v: VerifiedCertificate, at: Date): void {
    const t = at.getTime();
    if (Number.isNaN(t)) throw new Error('the verifier clock returned an invalid date');
    const name = `certificate ${v.subject} (serial ${v.serialHex})`;
    if (t < v.notBefore.getTime()) {
      throw bad(`${name} is not yet valid: notBefore ${v.notBefore.toISOString()} is after ${at.toISOString()}`);
    }
    if (t > v.notAfter.getTime()) {
      throw bad(`${name} has expired: notAfter ${v.notAfter.toISOString()} is before ${at.toISOString()}`);
    }
    const ca = v.anchor.cert;
    if (t < ca.notBefore.getTime() || t > ca.notAfter.getTime()) {
      throw bad(
        `the issuing CA ${ca.subject} is outside its validity period ` +
          `${ca.notBefore.toISOString()} … ${ca.notAfter.toISOString()} at ${at.toISOString()}`,
      );
    }
  }

  function checkRevocation(v: VerifiedCertificate, sha256: string): void {
    if (options.isRevoked === undefined) return;
    let revoked: boolean;
    try {
      revoked = options.isRevoked(v.serialHex, {
        serialHex: v.serialHex,
        issuer: v.issuer,
        deviceId: v.deviceId,
        sha256,
      });
    } catch (e) {
      throw bad(`the revocation check failed for serial ${v.serialHex}: ${(e as Error).message}`);
    }
    if (revoked) throw bad(`certificate ${v.subject} (serial ${v.serialHex}) has been revoked`);
  }

  return (certificateDer: Uint8Array): CertifiedDevice => {
    if (!(certificateDer instanceof Uint8Array)) throw bad('the certificate is not a byte string');
    if (certificateDer.length > maxBytes)
      throw bad(`a certificate of ${certificateDer.length} bytes is larger than ${maxBytes}: not parsed`);
    const id = toHex(crypto.sha256(certificateDer));
    let verified = cache.get(id);
    if (verified !== undefined) {
      cache.delete(id);
      cache.set(id, verified);
    } else {
      const known = failed.get(id);
      if (known !== undefined) throw known;
      try {
        verified = verifyOnce(certificateDer);
      } catch (e) {
        // The library may throw its own errors for odd content (e.g. an extension value): still bad-certificate.
        const refusal =
          e instanceof CoseError ? e : bad(`unreadable certificate: ${e instanceof Error ? e.message : String(e)}`);
        if (failedCacheSize > 0) {
          if (failed.size >= failedCacheSize) failed.delete(failed.keys().next().value!);
          failed.set(id, refusal);
        }
        throw refusal;
      }
      if (cacheSize > 0) {
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
        cache.set(id, verified);
      }
    }
    checkTime(verified, now());
    checkRevocation(verified, id);
    return { deviceId: verified.deviceId, publicKey: verified.publicKey.slice() };
  };
}

/** Device certificate extensions: not a CA, digitalSignature allowed, no unknown critical extension. */
function checkExtensions(cert: ParsedCertificate, name: string): void {
  const seen = new Set<string>();
  for (const ext of cert.x509.extensions) {
    if (seen.has(ext.type)) throw bad(`${name} has the extension ${ext.type} more than once`);
    seen.add(ext.type);
    if (ext.critical && !KNOWN_EXTENSIONS.includes(ext.type)) {
      throw bad(`${name} has an unrecognised critical extension ${ext.type}`);
    }
  }
  const bc = basicConstraintsOf(cert);
  if (bc?.ca) throw bad(`${name} is a CA certificate (basicConstraints cA=true), not a device certificate`);
  const ku = keyUsageOf(cert);
  if (ku !== null && (ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    throw bad(`${name}: its keyUsage (${keyUsageNames(ku.usages)}) does not include digitalSignature`);
  }
}

function keyUsageNames(usages: number): string {
  const names = Object.entries(x509.KeyUsageFlags)
    .filter(([, bit]) => typeof bit === 'number' && (usages & bit) !== 0)
    .map(([flag]) => flag);
  return names.length > 0 ? names.join(', ') : 'none';
}
