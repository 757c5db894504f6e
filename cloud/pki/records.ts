/**
 * What the CA remembers of each device it issued to: `DIR/devices/<deviceId>/record.json` beside
 * the certificate (`cert.pem`) and the request it answered (`csr.pem`). The record binds the device
 * id to one public key (first come, first bound); a re-key replaces it and lists the old serial.
 *
 *   {
 *     "deviceId": "dev-1",
 *     "serial": "5f0c…",                 // lowercase hex, no leading zero bytes (as the verifier reports it)
 *     "publicKey": "04ab…",              // the 65-byte P-256 point, hex
 *     "issued": "2026-…Z",               // when the CA issued it
 *     "notBefore": "…Z", "notAfter": "…Z",
 *     "enrollment": { "mode": "offline" | "allow-list" | "batch", "batch": "NAME" (batch mode) },
 *     "previous": [{ "serial": "…", "publicKey": "04…", "notAfter": "…Z" }]   // earlier certificates
 *   }
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../node/atomic-write.js';
import { isValidDeviceId } from '../../src/profile/topics.js';
import { DataDirError, type DataDirRef, openDataDir, readJson, writeJson } from './data-dir.js';
import { readCertificates } from './files.js';

export type EnrollmentMode = 'offline' | 'allow-list' | 'batch';

export interface Enrollment {
  mode: EnrollmentMode;
  /** The batch whose credential authorized it (mode "batch"). */
  batch?: string;
}

export interface PreviousCertificate {
  serial: string;
  publicKey: string;
  notAfter: string;
}

export interface DeviceRecord {
  deviceId: string;
  serial: string;
  publicKey: string;
  issued: string;
  notBefore: string;
  notAfter: string;
  enrollment: Enrollment;
  previous: PreviousCertificate[];
}

function checkRecord(value: unknown, path: string, deviceId: string): DeviceRecord {
  const r = value as Partial<DeviceRecord> | null;
  const text = (v: unknown) => typeof v === 'string' && v.length > 0;
  if (
    r === null ||
    typeof r !== 'object' ||
    r.deviceId !== deviceId ||
    !text(r.serial) ||
    !text(r.publicKey) ||
    !text(r.notAfter) ||
    typeof r.enrollment !== 'object' ||
    r.enrollment === null
  ) {
    throw new DataDirError(`${path} is not a device record for ${deviceId}; fix or remove the directory`);
  }
  return { ...(r as DeviceRecord), previous: Array.isArray(r.previous) ? r.previous : [] };
}

/** The record of `deviceId` in `dir`, or undefined when the CA never issued to it. */
export function readDeviceRecord(dir: DataDirRef, deviceId: string): DeviceRecord | undefined {
  const files = openDataDir(dir).device(deviceId);
  const value = readJson<unknown>(files.record, undefined);
  if (value === undefined) return undefined;
  return checkRecord(value, files.record, deviceId);
}

/** The certificate DER `DIR/devices/<id>/cert.pem` holds. */
export function readDeviceCertificate(dir: DataDirRef, deviceId: string): Uint8Array {
  const [der] = readCertificates(openDataDir(dir).device(deviceId).certificate);
  return der!;
}

export function readDeviceCertificatePem(dir: DataDirRef, deviceId: string): string {
  return readFileSync(openDataDir(dir).device(deviceId).certificate, 'utf8');
}

/** Writes a device's certificate, request and record (certificate and request first, the record last). */
export function writeDevice(
  dir: DataDirRef,
  record: DeviceRecord,
  files: { certificatePem: string; csrPem: string },
): void {
  const paths = openDataDir(dir).device(record.deviceId);
  writeFileAtomic(paths.certificate, files.certificatePem);
  writeFileAtomic(paths.csr, files.csrPem);
  writeJson(paths.record, record);
}

export interface DeviceWrite {
  record: DeviceRecord;
  certificatePem: string;
  csrPem: string;
}

let batchCounter = 0;

/** Writes `data` to a new file `path` (mode 0644) and fsyncs it (off the event loop). */
async function writeSynced(path: string, data: string): Promise<void> {
  const handle = await open(path, 'w', 0o644);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.chmod(0o644);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectoryAsync(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * `writeDevice` for many devices at once (the enrollment service's batches), with the same
 * guarantee as node/atomic-write.ts for every file — temporary file, fsync, rename, fsync of the
 * directory — but the fsyncs of the whole batch run concurrently in libuv's thread pool (the file
 * system commits them together: ~0.5 ms a device here instead of ~7 ms one after the other) and
 * never block the event loop. When it resolves, every record, certificate and request of the batch
 * is durable; on failure nothing is claimed (renamed files may or may not be on disk).
 * Certificates and requests are renamed into place before records, as in `writeDevice`.
 */
export async function writeDevices(dir: DataDirRef, writes: DeviceWrite[]): Promise<void> {
  if (writes.length === 0) return;
  const data = openDataDir(dir);
  const tag = `${process.pid}.b${batchCounter++}.tmp`;
  const files = writes.map((w) => {
    const paths = data.device(w.record.deviceId);
    return {
      dir: paths.dir,
      first: [
        { path: paths.certificate, text: w.certificatePem },
        { path: paths.csr, text: w.csrPem },
      ],
      record: { path: paths.record, text: `${JSON.stringify(w.record, null, 2)}\n` },
    };
  });
  const all = files.flatMap((f) => [...f.first, f.record]);
  try {
    await mkdir(data.devices, { recursive: true, mode: 0o700 });
    await Promise.all(files.map((f) => mkdir(f.dir, { recursive: true, mode: 0o700 })));
    await Promise.all(all.map((f) => writeSynced(`${f.path}.${tag}`, f.text)));
    await Promise.all(files.flatMap((f) => f.first.map((x) => rename(`${x.path}.${tag}`, x.path))));
    await Promise.all(files.map((f) => rename(`${f.record.path}.${tag}`, f.record.path)));
  } finally {
    await Promise.all(all.map((f) => rm(`${f.path}.${tag}`, { force: true })));
  }
  // The renames, and the new device directories in devices/, are durable once their directories are.
  const dirs = new Set(files.map((f) => f.dir));
  dirs.add(data.devices);
  dirs.add(dirname(data.devices));
  await Promise.all([...dirs].map(syncDirectoryAsync));
}

/** Every device record of `dir`, sorted by device id. */
export function listDeviceRecords(dir: DataDirRef): DeviceRecord[] {
  const data = openDataDir(dir);
  if (!existsSync(data.devices)) return [];
  const out: DeviceRecord[] = [];
  for (const name of readdirSync(data.devices).sort()) {
    if (!isValidDeviceId(name)) continue;
    const record = readDeviceRecord(data, name);
    if (record !== undefined) out.push(record);
  }
  return out;
}

/** The device and record a serial was issued under (current or previous), or undefined. */
export function findSerial(
  dir: DataDirRef,
  serial: string,
): { record: DeviceRecord; current: boolean; publicKey: string } | undefined {
  const wanted = normalizeSerial(serial);
  for (const record of listDeviceRecords(dir)) {
    if (record.serial === wanted) return { record, current: true, publicKey: record.publicKey };
    const old = record.previous.find((p) => p.serial === wanted);
    if (old !== undefined) return { record, current: false, publicKey: old.publicKey };
  }
  return undefined;
}

/** Lowercase hex without leading zero bytes (the form `IssuedCertificate.serialHex` and the verifier use). */
export function normalizeSerial(serial: string): string {
  const hex = serial.trim().toLowerCase().replace(/^0x/, '').replace(/:/g, '');
  if (!/^[0-9a-f]+$/.test(hex)) throw new RangeError(`serial ${JSON.stringify(serial)} is not hex`);
  let digits = hex.replace(/^0+/, '');
  if (digits.length % 2 === 1) digits = `0${digits}`;
  return digits.length === 0 ? '00' : digits;
}
