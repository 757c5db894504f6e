/**
 * Certificates and keys from files: PEM (possibly several blocks) or DER certificates, and P-256
 * private keys (PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY", PEM or DER) loaded into a
 * `CryptoProvider` key through node:crypto.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { equal, wipe } from '../../src/bytes.js';
import type { CryptoProvider, P256PrivateKey } from '../../src/crypto/provider.js';
import { x509 } from './x509.js';

const PEM_BEGIN = '-----BEGIN ';

function looksLikePem(data: Uint8Array | string): boolean {
  const text = typeof data === 'string' ? data : Buffer.from(data.subarray(0, 4096)).toString('latin1');
  return text.includes(PEM_BEGIN);
}

/**
 * The certificates in `data`: every "CERTIFICATE" block of a PEM text (other blocks such as keys
 * are skipped), or `data` itself as one DER certificate. Throws when PEM holds no certificate.
 * The DER is returned as is: the verifier or `parseCertificate` judges it.
 */
export function parseCertificates(data: Uint8Array | string): Uint8Array[] {
  if (!looksLikePem(data)) {
    if (typeof data === 'string') throw new Error('no PEM certificate found in the text');
    return [Uint8Array.from(data)];
  }
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
  let blocks: { type: string; rawData: ArrayBuffer }[];
  try {
    blocks = x509.PemConverter.decodeWithHeaders(text);
  } catch (e) {
    throw new Error(`unreadable PEM: ${(e as Error).message}`);
  }
  const certs = blocks.filter((b) => b.type === 'CERTIFICATE').map((b) => new Uint8Array(b.rawData));
  if (certs.length === 0) throw new Error('the PEM text holds no CERTIFICATE block');
  return certs;
}

/** Reads every certificate of a PEM or DER file (see `parseCertificates`). */
export function readCertificates(path: string): Uint8Array[] {
  const data = readFileSync(path);
  try {
    return parseCertificates(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** PEM text of DER certificates. */
export function certificatesToPem(ders: Uint8Array[]): string {
  return ders.map((der) => x509.PemConverter.encode(der, 'CERTIFICATE')).join('\n');
}

function keyObjectOf(data: Uint8Array | string): KeyObject {
  if (looksLikePem(data)) {
    const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
    return createPrivateKey({ key: text, format: 'pem' });
  }
  if (typeof data === 'string') throw new Error('no PEM private key found in the text');
  const der = Buffer.from(data);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    return createPrivateKey({ key: der, format: 'der', type: 'sec1' });
  }
}

/**
 * The 32-byte private scalar of a P-256 private key (PKCS#8 or SEC1, PEM or DER). The caller
 * owns (and should wipe) the result. Throws for other key types, curves or encrypted keys.
 */
export function p256PrivateScalar(data: Uint8Array | string): Uint8Array {
  let key: KeyObject;
  try {
    key = keyObjectOf(data);
  } catch (e) {
    throw new Error(`not a readable unencrypted private key: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec') throw new Error(`the private key is ${key.asymmetricKeyType}, not EC P-256`);
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'P-256' || typeof jwk.d !== 'string') {
    throw new Error(`the private key is on curve ${jwk.crv ?? key.asymmetricKeyDetails?.namedCurve}, not P-256`);
  }
  const d = new Uint8Array(Buffer.from(jwk.d, 'base64url'));
  if (d.length !== 32) throw new Error(`the P-256 private scalar is ${d.length} bytes, expected 32`);
  return d;
}

/** Loads a P-256 private key (PKCS#8 or SEC1, PEM or DER) into `crypto`. */
export function loadP256PrivateKey(crypto: CryptoProvider, data: Uint8Array | string): P256PrivateKey {
  const d = p256PrivateScalar(data);
  try {
    return crypto.p256Import(d);
  } finally {
    wipe(d);
  }
}

/** Reads a P-256 private key file into `crypto`; the file name is in any error. */
export function readP256PrivateKey(crypto: CryptoProvider, path: string): P256PrivateKey {
  const data = readFileSync(path);
  try {
    return loadP256PrivateKey(crypto, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  } finally {
    data.fill(0);
  }
}

/** True when `key` is the private half of `publicKey` (65-byte point), e.g. a key file matching its certificate. */
export function keyMatchesPublicKey(key: P256PrivateKey, publicKey: Uint8Array): boolean {
  return equal(key.publicKey, publicKey);
}
