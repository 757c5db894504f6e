/**
 * Host verification of device certificates (the `DeviceCertificateVerifier` of the key message):
 * the project's one certificate profile, `src/pki/certificate.ts` (the rules the device applies),
 * wrapped with what only the host has — a revocation check, caches, and flood limits.
 *
 * A device certificate is accepted when it is a certificate of that profile issued directly by one
 * of the trust anchors (issuer Name equal to the anchor's subject, ecdsa-with-SHA256 signature
 * verifying under the anchor's P-256 key, checked synchronously through the `CryptoProvider`),
 * both it and the anchor are within their validity period, its subject key is EC P-256, its key
 * usage (when present) allows digitalSignature, it is not a CA, it carries no critical extension
 * the profile does not know, it is not revoked, and its subject has exactly one CN that is a
 * valid device id (the device id).
 *
 * Successful results are cached by the certificate bytes themselves (bounded LRU; an exact match,
 * so a hit costs a lookup and no hash: the SHA-256 the revocation check is given was computed when
 * the certificate was verified); the validity period and the revocation check are evaluated again
 * on every call, cache hit or not.
 *
 * Against floods (docs/CLOUD.md "Floods and quotas"): a certificate larger than
 * `maxCertificateBytes` (default 2 KiB; the project's device certificates are about 400 bytes) is
 * refused before it is hashed or parsed, and a certificate that failed the checks that depend
 * only on its bytes and the trust anchors (parse, issuer, signature, extensions, key, CN) is
 * remembered by its SHA-256 (bounded LRU) and refused again without parsing or verifying it.
 */
import { toHex } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import {
  type Certificate,
  checkDeviceCertificate,
  checkTrustAnchor,
  checkValidity,
  readCertificate,
} from '../../src/pki/certificate.js';
import { DerError } from '../../src/pki/der.js';
import type { CertifiedDevice, DeviceCertificateVerifier } from '../../src/profile/key-message.js';

/** What a revocation check learns about the certificate in question. */
export interface RevocationQuery {
  /** Serial number: lowercase hex without leading zero bytes (as `openssl x509 -serial` prints it, lowercased). */
  serialHex: string;
  /** The issuer Name as text ("CN=cose-flow CA"); serials are unique per issuer. */
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
  /** Verified certificates remembered (LRU by the DER bytes). Default 10 000; 0 disables the cache. */
  cacheSize?: number;
  /** Certificates that failed, remembered (LRU by SHA-256 of the DER). Default 10 000; 0 disables it. */
  failedCacheSize?: number;
  /** Larger certificates are refused before parsing (default 2048 bytes). */
  maxCertificateBytes?: number;
}

export const DEFAULT_CERTIFICATE_CACHE_SIZE = 10_000;
export const DEFAULT_MAX_CERTIFICATE_BYTES = 2048;

interface VerifiedCertificate {
  deviceId: string;
  cert: Certificate;
  anchor: Certificate;
  /** SHA-256 of the DER, lowercase hex (for the revocation check). */
  sha256: string;
}

/** The cache key of a certificate: its bytes, one character per byte (exact; no hashing). */
function bytesKey(der: Uint8Array): string {
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
}

function bad(message: string): CoseError {
  return new CoseError('bad-certificate', message);
}

/**
 * Reads a certificate of the profile; a refusal worded for the host (the device words the same
 * problems its own way: `parseCertificate` of src/pki/certificate.ts).
 */
function parse(der: Uint8Array): Certificate {
  if (der.length === 0) throw bad('the certificate is empty');
  try {
    return readCertificate(der);
  } catch (e) {
    if (!(e instanceof DerError)) throw e;
    const p = e.problem;
    switch (p?.kind) {
      case 'trailing-bytes':
        throw bad(`not an X.509 certificate: the certificate has ${p.count} byte(s) after its DER encoding`);
      case 'duplicate-extension':
        throw bad(`the certificate has the extension ${p.oid} more than once`);
      case 'critical-extension':
        throw bad(`the certificate has an unrecognised critical extension ${p.oid}`);
      case 'extension-value':
        throw bad(`unreadable certificate: ${e.message}`);
      case 'subject-key':
        throw bad(`the subject key is ${p.key}, not EC P-256`);
      default:
        throw bad(`not an X.509 certificate: ${e.message}`);
    }
  }
}

/** Checks one trust anchor when the verifier is made; a plain Error (configuration problem) otherwise. */
function loadTrustAnchor(der: Uint8Array, index: number): Certificate {
  let cert: Certificate;
  try {
    cert = parse(der);
  } catch (e) {
    throw new Error(`trust anchor ${index}: ${(e as Error).message}`);
  }
  return checkTrustAnchor(cert, `trust anchor ${index}`);
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
  /** Insertion-ordered Map as an LRU, keyed by the DER bytes: a hit moves its entry to the end. */
  const cache = new Map<string, VerifiedCertificate>();
  /** Why each remembered failure failed (the same error is thrown again), by SHA-256 of the DER. */
  const failed = new Map<string, CoseError>();

  function verifyOnce(der: Uint8Array, sha256: string): VerifiedCertificate {
    const cert = parse(der);
    const { deviceId, anchor } = checkDeviceCertificate(crypto, cert, anchors);
    return { deviceId, cert, anchor, sha256 };
  }

  function checkTime(v: VerifiedCertificate, at: Date): void {
    const t = at.getTime();
    if (Number.isNaN(t)) throw new Error('the verifier clock returned an invalid date');
    checkValidity(v.cert, v.anchor, t);
  }

  function checkRevocation(v: VerifiedCertificate): void {
    if (options.isRevoked === undefined) return;
    const { cert, sha256 } = v;
    let revoked: boolean;
    try {
      revoked = options.isRevoked(cert.serialHex, {
        serialHex: cert.serialHex,
        issuer: cert.issuer.text,
        deviceId: v.deviceId,
        sha256,
      });
    } catch (e) {
      throw bad(`the revocation check failed for serial ${cert.serialHex}: ${(e as Error).message}`);
    }
    if (revoked) throw bad(`certificate ${cert.subject.text} (serial ${cert.serialHex}) has been revoked`);
  }

  return (certificateDer: Uint8Array): CertifiedDevice => {
    if (!(certificateDer instanceof Uint8Array)) throw bad('the certificate is not a byte string');
    if (certificateDer.length > maxBytes)
      throw bad(`a certificate of ${certificateDer.length} bytes is larger than ${maxBytes}: not parsed`);
    const key = cacheSize > 0 ? bytesKey(certificateDer) : '';
    let verified = cacheSize > 0 ? cache.get(key) : undefined;
    if (verified !== undefined) {
      cache.delete(key);
      cache.set(key, verified);
    } else {
      const id = toHex(crypto.sha256(certificateDer));
      const known = failed.get(id);
      if (known !== undefined) throw known;
      try {
        verified = verifyOnce(certificateDer, id);
      } catch (e) {
        // Anything else thrown while reading odd content is still bad-certificate.
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
        cache.set(key, verified);
      }
    }
    checkTime(verified, now());
    checkRevocation(verified);
    return { deviceId: verified.deviceId, publicKey: verified.cert.publicKey.slice() };
  };
}
