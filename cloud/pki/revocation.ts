/**
 * Revocation: `DIR/revoked.json` is the list the cloud service consults (through
 * `revocationChecker`, which re-reads it when it changes); `DIR/crl.pem` is the same list as an
 * X.509 CRL signed by the CA (regenerated on every revoke; `openssl crl -text`, `openssl verify
 * -crl_check`) for anyone else.
 *
 *   revoked.json: [{ "serial": "5f0c…", "deviceId": "dev-1", "reason": "keyCompromise", "time": "2026-…Z" }]
 *
 * `reason` is free text; the RFC 5280 reason names (keyCompromise, superseded,
 * cessationOfOperation, affiliationChanged, privilegeWithdrawn, cACompromise, unspecified; also
 * written key-compromise, …) become the CRL entry's reasonCode, any other text is "unspecified" in
 * the CRL and kept as written in revoked.json.
 */

import { webcrypto } from 'node:crypto';
import { statSync } from 'node:fs';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import { writeFileAtomic } from '../../node/atomic-write.js';
import type { CertificateAuthority } from './authority.js';
import {
  type DataDir,
  DataDirError,
  type DataDirRef,
  openDataDir,
  readJson,
  withDataDirLock,
  writeJson,
} from './data-dir.js';
import { findSerial, normalizeSerial, readDeviceRecord } from './records.js';
import { x509 } from './x509.js';

type X509Crypto = Parameters<typeof x509.cryptoProvider.set>[0];
const provider = webcrypto as unknown as X509Crypto;

/** A CRL is valid this long (its nextUpdate); re-run a revoke (or `ca init` makes the first) before then. */
export const CRL_VALIDITY_DAYS = 30;
const DAY = 24 * 3600_000;
export const DEFAULT_REVOCATION_REASON = 'unspecified';

export interface RevocationEntry {
  /** Lowercase hex without leading zero bytes. */
  serial: string;
  deviceId: string;
  reason: string;
  /** ISO 8601 time of the revocation. */
  time: string;
}

const REASONS: Record<string, x509.X509CrlReason> = {
  unspecified: x509.X509CrlReason.unspecified,
  keycompromise: x509.X509CrlReason.keyCompromise,
  cacompromise: x509.X509CrlReason.cACompromise,
  affiliationchanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationofoperation: x509.X509CrlReason.cessationOfOperation,
  privilegewithdrawn: x509.X509CrlReason.privilegeWithdrawn,
};

/** The CRL reasonCode for a reason text (unspecified for free text). */
export function crlReason(reason: string): x509.X509CrlReason {
  return REASONS[reason.toLowerCase().replace(/[-_ ]/g, '')] ?? x509.X509CrlReason.unspecified;
}

/** The revocations of `dir` (an empty list when there are none); a DataDirError when the file is corrupt. */
export function readRevocations(dir: DataDirRef): RevocationEntry[] {
  const path = openDataDir(dir).revoked;
  const value = readJson<unknown>(path, []);
  if (!Array.isArray(value)) throw new DataDirError(`${path} is not a JSON array of revocations`);
  return value.map((e, i) => {
    const entry = e as Partial<RevocationEntry> | null;
    if (entry === null || typeof entry !== 'object' || typeof entry.serial !== 'string') {
      throw new DataDirError(`${path}: entry ${i} has no serial`);
    }
    return {
      serial: normalizeSerial(entry.serial),
      deviceId: String(entry.deviceId ?? ''),
      reason: String(entry.reason ?? DEFAULT_REVOCATION_REASON),
      time: String(entry.time ?? ''),
    };
  });
}

export function isSerialRevoked(entries: RevocationEntry[], serial: string): boolean {
  const wanted = normalizeSerial(serial);
  return entries.some((e) => e.serial === wanted);
}

/** Signs a CRL listing `entries` with the CA's key and writes it to `DIR/crl.pem`; returns the PEM. */
export async function writeCrl(
  dir: DataDirRef,
  ca: CertificateAuthority,
  entries: RevocationEntry[] = readRevocations(dir),
  now: Date = new Date(),
): Promise<string> {
  const extensions: x509.Extension[] = [
    new x509.Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(now.getTime()))),
  ];
  const ski = ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension);
  extensions.push(
    ski !== null
      ? new x509.AuthorityKeyIdentifierExtension(ski.keyId, false)
      : await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey, false, provider),
  );
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: ca.certificate.subjectName,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + CRL_VALIDITY_DAYS * DAY),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      signingKey: ca.keys.privateKey,
      extensions,
      entries: entries.map((e) => {
        const reason = crlReason(e.reason);
        const time = new Date(e.time);
        return {
          serialNumber: e.serial,
          revocationDate: Number.isNaN(time.getTime()) ? now : time,
          ...(reason === x509.X509CrlReason.unspecified ? {} : { reason }),
        };
      }),
    },
    provider,
  );
  // RFC 7468 §5: "X509 CRL" (what OpenSSL reads; the library's own PEM says "CRL").
  const pem = x509.PemConverter.encode(crl.rawData, 'X509 CRL');
  writeFileAtomic(openDataDir(dir).crl, `${pem}\n`);
  return pem;
}

export interface RevokeOptions {
  /** Revoke this device's current certificate … */
  deviceId?: string;
  /** … or the certificate with this serial (hex). */
  serial?: string;
  reason?: string;
  now?: Date;
}

export interface RevokeResult {
  entry: RevocationEntry;
  /** True when it was already revoked (nothing changed, the CRL is not re-signed). */
  already: boolean;
}

/**
 * Records the revocation of a certificate the CA of `dir` issued (found by device id — its
 * current certificate — or by serial, current or previous) and re-signs the CRL. Idempotent.
 */
export async function revoke(dir: DataDirRef, ca: CertificateAuthority, options: RevokeOptions): Promise<RevokeResult> {
  if ((options.deviceId === undefined) === (options.serial === undefined)) {
    throw new RangeError('revoke takes a device id or a serial, not both');
  }
  const data = openDataDir(dir);
  return withDataDirLock(data, () => revokeLocked(data, ca, options));
}

async function revokeLocked(data: DataDir, ca: CertificateAuthority, options: RevokeOptions): Promise<RevokeResult> {
  const { root } = data;
  let serial: string;
  let deviceId: string;
  if (options.deviceId !== undefined) {
    const record = readDeviceRecord(data, options.deviceId);
    if (record === undefined)
      throw new DataDirError(`no certificate was issued to device ${options.deviceId} in ${root}`);
    serial = record.serial;
    deviceId = record.deviceId;
  } else {
    const found = findSerial(data, options.serial!);
    if (found === undefined) {
      throw new DataDirError(`no certificate with serial ${normalizeSerial(options.serial!)} was issued in ${root}`);
    }
    serial = normalizeSerial(options.serial!);
    deviceId = found.record.deviceId;
  }
  return addRevocation(data, ca, { serial, deviceId, reason: options.reason, now: options.now });
}

/**
 * Appends a revocation (unless the serial is already revoked) and re-signs the CRL. The caller
 * holds the data directory lock (`withDataDirLock`), as `revoke` and the device issuer do.
 */
export async function addRevocation(
  dir: DataDirRef,
  ca: CertificateAuthority,
  input: { serial: string; deviceId: string; reason?: string | undefined; now?: Date | undefined },
): Promise<RevokeResult> {
  const data = openDataDir(dir);
  const entries = readRevocations(data);
  const serial = normalizeSerial(input.serial);
  const existing = entries.find((e) => e.serial === serial);
  if (existing !== undefined) return { entry: existing, already: true };
  const now = input.now ?? new Date();
  const reason = input.reason?.trim() || DEFAULT_REVOCATION_REASON;
  if (/\p{Cc}/u.test(reason) || reason.length > 200) {
    throw new RangeError('the revocation reason must be at most 200 characters without control characters');
  }
  const entry: RevocationEntry = { serial, deviceId: input.deviceId, reason, time: now.toISOString() };
  entries.push(entry);
  writeJson(data.revoked, entries);
  await writeCrl(data, ca, entries, now);
  return { entry, already: false };
}

/**
 * The `isRevoked` of `deviceCertificateVerifier` for the CA of `dir`: true when revoked.json lists
 * the serial. The file is read again whenever it changes (checked with a stat on each call), so a
 * running service sees `cose-flow ca revoke` at once. A missing file means nothing is revoked; an
 * unreadable one throws, which the verifier turns into a refusal (fail closed).
 */
export function revocationChecker(dir: DataDirRef): (serialHex: string) => boolean {
  return checker(dir, () => true);
}

/**
 * `revocationChecker` for a service that checks every message: the file is looked at (a stat)
 * at most once per event-loop turn, whatever the number of devices, and a change is seen by the
 * next turn's calls. When the file cannot be read, every call of that turn throws (fail closed),
 * and the next turn reads it again.
 */
export function revocationCheckerPerTurn(dir: DataDirRef): (serialHex: string) => boolean {
  let looked = false;
  return checker(dir, () => {
    if (looked) return false;
    looked = true;
    setImmediate(() => {
      looked = false;
    });
    return true;
  });
}

/** Looks at the file when `look()` says so, and answers from what it read. */
function checker(dir: DataDirRef, look: () => boolean): (serialHex: string) => boolean {
  const data = openDataDir(dir);
  const path = data.revoked;
  let stamp = '';
  let serials = new Set<string>();
  let unreadable: Error | undefined;
  return (serialHex: string): boolean => {
    if (look()) {
      unreadable = undefined;
      try {
        const stat = statSync(path, { throwIfNoEntry: false });
        const now = stat === undefined ? 'none' : `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
        if (now !== stamp) {
          serials = new Set(stat === undefined ? [] : readRevocations(data).map((e) => e.serial));
          stamp = now;
        }
      } catch (e) {
        unreadable = e instanceof Error ? e : new Error(String(e));
      }
    }
    if (unreadable !== undefined) throw unreadable;
    return serials.has(normalizeSerial(serialHex));
  };
}
