/**
 * The cloud's ECDH key pairs in the data directory, and their rotation.
 *
 * `DIR/cloud.pem` + `DIR/cloud.key` are the current pair: its certificate (issued by the CA,
 * keyUsage keyAgreement) goes to devices at enrollment, and devices seal session keys to it,
 * naming its cloud key id (`cloudKeyId`: SHA-256 of the point, first 8 bytes) in the recipient
 * header. `rotate` moves the current pair to `DIR/cloud-keys/retired/<kid hex>.{pem,key}` before
 * the new one takes its place, so sessions sealed to an older key still open: `loadCloudKeys`
 * returns every configured key, current and retired, by key id, and the cloud service accepts a
 * key message for any of them. (Pushing the new certificate to devices is the control message of
 * the device/cloud issue.) Delete a retired pair once no device can still use it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../../src/bytes.js';
import type { CryptoProvider, P256PrivateKey } from '../../src/crypto/provider.js';
import { cloudKeyId } from '../../src/profile/session.js';
import { generateKeyPair, issueCertificate } from './authority.js';
import { parseCertificate } from './certificate.js';
import { keyMatchesPublicKey, readCertificates, readP256PrivateKey } from './files.js';
import { dataLayout, loadCaFromDir, StoreError, writeFileAtomic, writeSecretFile } from './store.js';

export const DEFAULT_CLOUD_NAME = 'cose-flow cloud';

export interface CloudKey {
  /** The cloud key id devices name (8 bytes) and its hex. */
  kid: Uint8Array;
  kidHex: string;
  /** The private key, imported into the provider given to `loadCloudKeys`. */
  key: P256PrivateKey;
  publicKey: Uint8Array;
  /** The certificate DER. */
  certificate: Uint8Array;
  notAfter: Date;
  /** True for `DIR/cloud.pem` / `DIR/cloud.key`, false for a retired pair. */
  current: boolean;
  /** The certificate and key files. */
  certificatePath: string;
  keyPath: string;
}

export interface CloudKeygenOptions {
  /** Replace an existing pair, keeping it as a retired key. Without it an existing pair is an error. */
  rotate?: boolean;
  validityDays?: number;
  /** The certificate's common name; default "cose-flow cloud". */
  name?: string;
}

export interface CloudKeygenResult {
  kidHex: string;
  certificatePem: string;
  serialHex: string;
  notAfter: Date;
  /** The key id of the pair that was retired, when rotating. */
  retiredKidHex?: string;
}

/** Makes the cloud key pair and its certificate (issued by the CA of `root`). */
export async function cloudKeygen(
  crypto: CryptoProvider,
  root: string,
  options: CloudKeygenOptions = {},
): Promise<CloudKeygenResult> {
  const layout = dataLayout(root);
  const exists = existsSync(layout.cloudCertificate) || existsSync(layout.cloudKey);
  if (exists && !options.rotate) {
    throw new StoreError(
      `${root} already has a cloud key (${layout.cloudKey}); use --rotate to replace it (the old key stays usable as a retired key)`,
    );
  }
  const ca = await loadCaFromDir(root);
  let retired: CloudKey | undefined;
  if (exists) {
    retired = readPair(crypto, layout.cloudCertificate, layout.cloudKey, true);
  }
  const pair = generateKeyPair();
  pair.privateScalar.fill(0);
  const issued = await issueCertificate(ca, {
    commonName: options.name ?? DEFAULT_CLOUD_NAME,
    publicKey: pair.publicKey,
    keyUsage: 'cloud',
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
  });
  let retiredKidHex: string | undefined;
  if (retired !== undefined) {
    // Keep the old pair first: a crash between the steps leaves both keys on disk, never neither.
    retiredKidHex = retired.kidHex;
    const base = join(layout.retiredCloudKeys, retired.kidHex);
    writeFileAtomic(`${base}.pem`, readFileText(layout.cloudCertificate));
    writeSecretFile(`${base}.key`, readFileText(layout.cloudKey));
  }
  writeSecretFile(layout.cloudKey, pair.privateKeyPem);
  writeFileAtomic(layout.cloudCertificate, issued.pem);
  return {
    kidHex: toHex(cloudKeyId(crypto, pair.publicKey)),
    certificatePem: issued.pem,
    serialHex: issued.serialHex,
    notAfter: issued.notAfter,
    ...(retiredKidHex === undefined ? {} : { retiredKidHex }),
  };
}

function readFileText(path: string): string {
  return readFileSync(path, 'utf8');
}

function readPair(crypto: CryptoProvider, certificatePath: string, keyPath: string, current: boolean): CloudKey {
  const [der] = readCertificates(certificatePath);
  const cert = parseCertificate(der!);
  if (cert.p256PublicKey === undefined) {
    throw new StoreError(`${certificatePath}: the cloud key is ${cert.keyType}, not EC P-256`);
  }
  const key = readP256PrivateKey(crypto, keyPath);
  if (!keyMatchesPublicKey(key, cert.p256PublicKey)) {
    throw new StoreError(`${keyPath} does not belong to the certificate ${certificatePath}`);
  }
  const kid = cloudKeyId(crypto, cert.p256PublicKey);
  return {
    kid,
    kidHex: toHex(kid),
    key,
    publicKey: cert.p256PublicKey,
    certificate: cert.der,
    notAfter: cert.notAfter,
    current,
    certificatePath,
    keyPath,
  };
}

/**
 * Every configured cloud key of `root` — the current pair and each retired one — by cloud key id
 * (lowercase hex), each private key imported into `crypto`. A StoreError when there is no current
 * pair or a pair is inconsistent (key not matching its certificate, file named for another key id).
 */
export function loadCloudKeys(crypto: CryptoProvider, root: string): Map<string, CloudKey> {
  const layout = dataLayout(root);
  if (!existsSync(layout.cloudCertificate) || !existsSync(layout.cloudKey)) {
    throw new StoreError(`no cloud key in ${root} (run \`cose-flow cloud keygen --data-dir ${root}\`)`);
  }
  const keys = new Map<string, CloudKey>();
  const current = readPair(crypto, layout.cloudCertificate, layout.cloudKey, true);
  keys.set(current.kidHex, current);
  const names = existsSync(layout.retiredCloudKeys) ? readdirSync(layout.retiredCloudKeys).sort() : [];
  for (const name of names) {
    const m = /^([0-9a-f]{16})\.key$/.exec(name);
    if (m === null) continue;
    const base = join(layout.retiredCloudKeys, m[1]!);
    if (!existsSync(`${base}.pem`)) throw new StoreError(`${base}.key has no certificate ${base}.pem`);
    const pair = readPair(crypto, `${base}.pem`, `${base}.key`, false);
    if (pair.kidHex !== m[1]) throw new StoreError(`${base}.key holds cloud key ${pair.kidHex}, not ${m[1]}`);
    if (!keys.has(pair.kidHex)) keys.set(pair.kidHex, pair);
  }
  return keys;
}

/** The `cloudKey` lookup of `openKeyMessage` over `loadCloudKeys`' result. */
export function cloudKeyLookup(keys: Map<string, CloudKey>): (kid: Uint8Array) => P256PrivateKey | undefined {
  return (kid) => keys.get(toHex(kid))?.key;
}

/** The current cloud certificates (DER) of `root`: what enrollment gives devices. */
export function currentCloudCertificates(root: string): Uint8Array[] {
  const layout = dataLayout(root);
  if (!existsSync(layout.cloudCertificate)) {
    throw new StoreError(`no cloud certificate in ${root} (run \`cose-flow cloud keygen --data-dir ${root}\`)`);
  }
  return readCertificates(layout.cloudCertificate);
}
