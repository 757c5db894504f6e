/**
 * `cose-flow ca init` as a library call: a new P-256 CA in a data directory — `DIR/ca.pem`,
 * `DIR/ca.key` (PKCS#8 PEM, 0600) and an empty CRL `DIR/crl.pem`.
 *
 * Replacing a CA (`force`) re-issues the cloud certificate (`DIR/cloud.pem`) in the same step,
 * for the same cloud key, under the new CA: a cloud certificate of the old CA would not verify on
 * any device enrolled under the new one, and they would wait for a usable enrollment forever.
 */
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../../node/atomic-write.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { type CertificateAuthority, createCa, issueCertificate } from './authority.js';
import { parseCertificate } from './certificate.js';
import { DataDirError, type DataDirRef, openDataDir, writeSecretFile } from './data-dir.js';
import { readCertificates } from './files.js';
import { writeCrl } from './revocation.js';

export interface InitCaOptions {
  /** The CA's common name; default "cose-flow CA". */
  name?: string;
  /** Validity in days; default 3650. */
  validityDays?: number;
  /** Replace an existing CA. Every certificate it issued stops verifying against the new one. */
  force?: boolean;
}

export interface InitCaResult {
  ca: CertificateAuthority;
  /** With `force` and a cloud key in the directory: its certificate, re-issued under the new CA. */
  reissuedCloudCertificate?: { path: string; commonName: string };
  /** SHA-256 of the CA certificate DER, hex: what a device can pin instead of the whole certificate. */
  fingerprintHex: string;
}

export async function initCa(
  crypto: CryptoProvider,
  dir: DataDirRef,
  options: InitCaOptions = {},
): Promise<InitCaResult> {
  const layout = openDataDir(dir);
  const existing = [layout.caCertificate, layout.caKey].filter((p) => existsSync(p));
  if (existing.length > 0 && !options.force) {
    throw new DataDirError(
      `${layout.root} already has a CA (${existing.join(', ')}); --force replaces it, and every certificate it issued stops verifying`,
    );
  }
  const ca = await createCa({
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
  });
  // The key first: a crash in between leaves a key without a certificate (init again), never a
  // certificate whose key is lost.
  // The cloud certificate is read (and checked) before anything is replaced.
  const cloud =
    existing.length > 0 && existsSync(layout.cloudCertificate) ? currentCloud(layout.cloudCertificate) : undefined;
  const cloudIssued =
    cloud === undefined
      ? undefined
      : await issueCertificate(ca, { commonName: cloud.commonName, publicKey: cloud.publicKey, keyUsage: 'cloud' });
  writeSecretFile(layout.caKey, ca.keyPem);
  writeFileAtomic(layout.caCertificate, ca.pem);
  await writeCrl(layout, ca, [], new Date());
  if (cloudIssued !== undefined) writeFileAtomic(layout.cloudCertificate, cloudIssued.pem);
  return {
    ca,
    fingerprintHex: hex(crypto.sha256(ca.der)),
    ...(cloudIssued === undefined
      ? {}
      : { reissuedCloudCertificate: { path: layout.cloudCertificate, commonName: cloudIssued.commonName } }),
  };
}

/** The cloud key's public half and name, from its current certificate. */
function currentCloud(path: string): { publicKey: Uint8Array; commonName: string } {
  const [der] = readCertificates(path);
  const cert = parseCertificate(der!);
  if (cert.p256PublicKey === undefined)
    throw new DataDirError(`${path}: the cloud key is ${cert.keyType}, not EC P-256; cannot re-issue it`);
  return { publicKey: cert.p256PublicKey, commonName: cert.commonNames[0] ?? 'cose-flow cloud' };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
