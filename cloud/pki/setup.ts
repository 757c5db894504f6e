/**
 * `cose-flow ca init` as a library call: a new P-256 CA in a data directory — `DIR/ca.pem`,
 * `DIR/ca.key` (PKCS#8 PEM, 0600) and an empty CRL `DIR/crl.pem`.
 */
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../../node/atomic-write.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { type CertificateAuthority, createCa } from './authority.js';
import { DataDirError, type DataDirRef, openDataDir, writeSecretFile } from './data-dir.js';
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
  writeSecretFile(layout.caKey, ca.keyPem);
  writeFileAtomic(layout.caCertificate, ca.pem);
  await writeCrl(layout, ca, [], new Date());
  return { ca, fingerprintHex: hex(crypto.sha256(ca.der)) };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
