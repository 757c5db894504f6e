/**
 * Who may enroll: the files under `DIR/enroll/` that `cose-flow ca allow` / `ca batch` write and
 * the enrollment service reads on every request (so changes apply without a restart).
 *
 * - `allow-list`: device ids (one a line, `#` comments) that may enroll without a credential.
 * - `batches/<name>.secret`: a batch's 32-byte secret, hex (mode 0600). A device of the batch holds
 *   only its own key, `enrollmentKey(secret, deviceId)` (printed by `ca batch key`), and MACs its
 *   request with it; the service derives the same key from the batch named in the request.
 * - `rekey-allowed`: device ids an operator allows to enroll one new key (consumed when used).
 *
 * See docs/ENROLLMENT.md for what each of these lets an attacker do when it leaks.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../node/atomic-write.js';
import { fromHex, toHex } from '../../src/bytes.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { enrollmentKey } from '../../src/profile/enrollment.js';
import { checkDeviceId } from '../../src/profile/topics.js';
import { checkBatchName, DataDirError, type DataDirRef, openDataDir, writeSecretFile } from '../pki/data-dir.js';

export const BATCH_SECRET_BYTES = 32;

function readIdList(path: string): string[] {
  if (!existsSync(path)) return [];
  const ids: string[] = [];
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line !== '') ids.push(line);
  }
  return ids;
}

function writeIdList(path: string, header: string, ids: string[]): void {
  writeFileAtomic(path, `${header}\n${ids.map((id) => `${id}\n`).join('')}`);
}

/** The allow-listed device ids of `dir`. */
export function readAllowList(dir: DataDirRef): string[] {
  return readIdList(openDataDir(dir).allowList);
}

export function isAllowListed(dir: DataDirRef, deviceId: string): boolean {
  return readAllowList(dir).includes(deviceId);
}

/** Adds device ids to the allow-list; returns those that were new. */
export function allowDevices(dir: DataDirRef, deviceIds: string[]): string[] {
  for (const id of deviceIds) checkDeviceId(id);
  const current = readAllowList(dir);
  const added = [...new Set(deviceIds)].filter((id) => !current.includes(id));
  writeIdList(openDataDir(dir).allowList, '# device ids that may enroll without a credential (cose-flow ca allow)', [
    ...current,
    ...added,
  ]);
  return added;
}

/** The device ids currently allowed one re-key. */
export function readRekeyAllowed(dir: DataDirRef): string[] {
  return readIdList(openDataDir(dir).rekeyAllowed);
}

/** Allows each device one new key at its next enrollment. */
export function allowRekey(dir: DataDirRef, deviceIds: string[]): string[] {
  for (const id of deviceIds) checkDeviceId(id);
  const current = readRekeyAllowed(dir);
  const added = [...new Set(deviceIds)].filter((id) => !current.includes(id));
  writeIdList(
    openDataDir(dir).rekeyAllowed,
    '# device ids allowed one new key at their next enrollment (cose-flow ca allow --rekey)',
    [...current, ...added],
  );
  return added;
}

/** Takes back a device's re-key permission (after it was used). */
export function consumeRekey(dir: DataDirRef, deviceId: string): void {
  const current = readRekeyAllowed(dir);
  if (!current.includes(deviceId)) return;
  writeIdList(
    openDataDir(dir).rekeyAllowed,
    '# device ids allowed one new key at their next enrollment (cose-flow ca allow --rekey)',
    current.filter((id) => id !== deviceId),
  );
}

/** Makes a batch: a random secret in `DIR/enroll/batches/NAME.secret` (0600). Refuses to replace one. */
export function createBatch(crypto: CryptoProvider, dir: DataDirRef, name: string): { path: string } {
  const path = openDataDir(dir).batchSecret(checkBatchName(name));
  if (existsSync(path)) {
    throw new DataDirError(`batch ${name} already exists (${path}); its devices hold keys derived from it`);
  }
  const secret = crypto.randomBytes(BATCH_SECRET_BYTES);
  writeSecretFile(path, `${toHex(secret)}\n`);
  secret.fill(0);
  return { path };
}

/** A batch's secret, or undefined when there is no such batch. */
export function readBatchSecret(dir: DataDirRef, name: string): Uint8Array | undefined {
  let path: string;
  try {
    path = openDataDir(dir).batchSecret(name);
  } catch {
    return undefined; // not a batch name: no such batch
  }
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8').trim();
  let secret: Uint8Array;
  try {
    secret = fromHex(text);
  } catch {
    throw new DataDirError(`${path} does not hold a hex secret`);
  }
  if (secret.length < 16) throw new DataDirError(`${path}: the secret is ${secret.length} bytes, at least 16 expected`);
  return secret;
}

/** The per-device enrollment key of `deviceId` in batch `name` (what the factory writes into the device). */
export function batchDeviceKey(crypto: CryptoProvider, dir: DataDirRef, name: string, deviceId: string): Uint8Array {
  const secret = readBatchSecret(dir, checkBatchName(name));
  if (secret === undefined)
    throw new DataDirError(`no batch ${name} in ${openDataDir(dir).root} (run \`cose-flow ca batch create ${name}\`)`);
  try {
    return enrollmentKey(crypto, secret, checkDeviceId(deviceId));
  } finally {
    secret.fill(0);
  }
}
