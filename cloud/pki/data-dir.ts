/**
 * The CA data directory as code: one stable layout that every `cose-flow` command, the enrollment
 * service, the cloud service and users rely on. `openDataDir(path)` gives the `DataDir` the rest
 * of the code passes around (its root and every path below it); functions taking a data
 * directory accept it or a bare path (`DataDirRef`).
 *
 *   DIR/ca.pem, DIR/ca.key                     the CA certificate and private key (PKCS#8 PEM, 0600)
 *   DIR/crl.pem                                the CA-signed CRL (regenerated on every revoke)
 *   DIR/revoked.json                           revocations: [{serial, deviceId, reason, time}]
 *   DIR/cloud.pem, DIR/cloud.key               the current cloud certificate and key (0600)
 *   DIR/cloud-keys/retired/<kid>.{pem,key}     cloud keys replaced by `cloud keygen --rotate`
 *   DIR/devices/<deviceId>/cert.pem            the device's current certificate
 *   DIR/devices/<deviceId>/csr.pem             the request it was issued for
 *   DIR/devices/<deviceId>/record.json         serial, public key, dates, enrollment mode
 *   DIR/enroll/allow-list                      device ids allowed to enroll without a credential
 *   DIR/enroll/rekey-allowed                   device ids an operator allows one new key
 *   DIR/enroll/batches/<name>.secret           enrollment batch secrets (hex, 0600)
 *
 * Every file is written through a temporary file and a rename (a crash never leaves half a file);
 * private keys and secrets with mode 0600, everything else 0644.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../node/atomic-write.js';
import { checkDeviceId } from '../../src/profile/topics.js';
import { type CertificateAuthority, loadCa } from './authority.js';

export const DEFAULT_DATA_DIR = './data';
export const SECRET_MODE = 0o600;
export const PUBLIC_MODE = 0o644;
/**
 * A data directory and the folders below it: 0700. It holds the database with decrypted readings,
 * logs and exports; files meant to be shared (certificates) are copied out of it, not read in place.
 */
export const PRIVATE_DIR_MODE = 0o700;

/** A problem with the data directory an operator must fix (no CA yet, a file in the way, …). */
export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}

export interface DeviceFiles {
  dir: string;
  certificate: string;
  csr: string;
  record: string;
}

/** A data directory: its root and the paths below it. */
export interface DataDir {
  /** The directory itself, as given to `openDataDir`. */
  root: string;
  caCertificate: string;
  caKey: string;
  crl: string;
  revoked: string;
  cloudCertificate: string;
  cloudKey: string;
  retiredCloudKeys: string;
  devices: string;
  device(deviceId: string): DeviceFiles;
  enroll: string;
  allowList: string;
  rekeyAllowed: string;
  batches: string;
  batchSecret(name: string): string;
}

/** Batch names: the device id alphabet (they are file names and a header value). */
const BATCH_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function checkBatchName(name: string): string {
  if (!BATCH_NAME.test(name) || name === '.' || name === '..') {
    throw new RangeError(`invalid batch name ${JSON.stringify(name)}: use 1–64 of A-Z a-z 0-9 . _ -`);
  }
  return name;
}

/** A data directory, or the path of one. */
export type DataDirRef = DataDir | string;

/** The data directory at path `dir` (a `DataDir` is returned as it is). Touches no file. */
export function openDataDir(dir: DataDirRef): DataDir {
  if (typeof dir === 'object' && dir !== null && typeof dir.root === 'string') return dir;
  const root = dir as string;
  if (typeof root !== 'string' || root === '') throw new RangeError('the data directory must be a non-empty path');
  const enroll = join(root, 'enroll');
  const devices = join(root, 'devices');
  const batches = join(enroll, 'batches');
  return {
    root,
    caCertificate: join(root, 'ca.pem'),
    caKey: join(root, 'ca.key'),
    crl: join(root, 'crl.pem'),
    revoked: join(root, 'revoked.json'),
    cloudCertificate: join(root, 'cloud.pem'),
    cloudKey: join(root, 'cloud.key'),
    retiredCloudKeys: join(root, 'cloud-keys', 'retired'),
    devices,
    device(deviceId) {
      const dir = join(devices, checkDeviceId(deviceId));
      return {
        dir,
        certificate: join(dir, 'cert.pem'),
        csr: join(dir, 'csr.pem'),
        record: join(dir, 'record.json'),
      };
    },
    enroll,
    allowList: join(enroll, 'allow-list'),
    rekeyAllowed: join(enroll, 'rekey-allowed'),
    batches,
    batchSecret: (name) => join(batches, `${checkBatchName(name)}.secret`),
  };
}

/** A private key or secret: mode 0600. */
export function writeSecretFile(path: string, data: string | Uint8Array): void {
  writeFileAtomic(path, data, SECRET_MODE);
}

export function readBytes(path: string): Uint8Array {
  const data = readFileSync(path);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Reads a JSON file, or `fallback` when it does not exist; a DataDirError naming the file when it is corrupt. */
export function readJson<T>(path: string, fallback: T): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new DataDirError(`${path} is not valid JSON (${(e as Error).message}); fix or remove it`);
  }
}

export function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, PUBLIC_MODE);
}

/** The CA of data directory `dir`, ready to issue; a DataDirError when there is none. */
export async function loadCaFromDir(dir: DataDirRef): Promise<CertificateAuthority> {
  const layout = openDataDir(dir);
  const root = layout.root;
  for (const path of [layout.caCertificate, layout.caKey]) {
    if (!existsSync(path)) {
      throw new DataDirError(`no CA in ${root}: ${path} is missing (run \`cose-flow ca init --data-dir ${root}\`)`);
    }
  }
  const key = readFileSync(layout.caKey);
  try {
    return await loadCa(readBytes(layout.caCertificate), new Uint8Array(key));
  } catch (e) {
    throw new DataDirError(`cannot load the CA of ${root}: ${(e as Error).message}`);
  } finally {
    key.fill(0);
  }
}

const LOCK_STALE_MS = 60_000;
const LOCK_WAIT_MS = 15_000;

/**
 * Runs `work` holding the data directory's lock (`DIR/.lock`, a directory: made atomically), so
 * the enrollment service and `cose-flow ca issue`/`ca revoke` run at the same time never interleave
 * a read-modify-write of a device record or of revoked.json. A lock older than a minute is taken
 * to be left over from a crash and broken.
 */
export async function withDataDirLock<T>(dir: DataDirRef, work: () => Promise<T> | T): Promise<T> {
  const { root } = openDataDir(dir);
  const lock = join(root, '.lock');
  mkdirSync(root, { recursive: true, mode: PRIVATE_DIR_MODE });
  const started = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const stat = statSync(lock, { throwIfNoEntry: false });
      if (stat !== undefined && Date.now() - stat.mtimeMs > LOCK_STALE_MS) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - started > LOCK_WAIT_MS) {
        throw new DataDirError(`${lock} is held by another cose-flow process; remove it if none is running`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
