/**
 * Issuing device certificates from certification requests, as `cose-flow ca issue` and the
 * enrollment service both do: check the request (`checkCsr`), then decide by the device's record.
 *
 * - No record: issue (CN = device id, keyUsage digitalSignature, validity from now), record it.
 * - Same device id, same key: idempotent — the existing certificate is returned as it is while it
 *   is valid (`existing`), a new one for the same key once it has expired (`renewed`); when that
 *   key's certificate has been revoked, refused with `revoked`.
 * - Same device id, another key: refused with `key-conflict` (the id is bound to the first key the
 *   CA saw), unless the operator allows a re-key; then the new key is certified (`rekeyed`) and
 *   the previous certificate revoked as superseded.
 *
 * Record, certificate and CRL changes run under the data directory lock. `issueDeviceCertificates`
 * decides a batch under one hold of it and writes the batch's files with one concurrent round of
 * fsyncs (records.ts `writeDevices`): every result it returns is durable on disk.
 */
import { type CertificateAuthority, issueCertificate } from './authority.js';
import { type CheckedCsr, checkCsr } from './csr.js';
import { type DataDir, type DataDirRef, openDataDir, withDataDirLock } from './data-dir.js';
import {
  type DeviceRecord,
  type DeviceWrite,
  type Enrollment,
  readDeviceCertificate,
  readDeviceCertificatePem,
  readDeviceRecord,
  writeDevices,
} from './records.js';
import { Refusal } from './refusal.js';
import { addRevocation, type RevocationEntry, readRevocations } from './revocation.js';

export type IssueOutcome = 'issued' | 'existing' | 'renewed' | 'rekeyed';

export interface IssueDeviceOptions {
  /** Validity of a new certificate in days (default 365, clamped to the CA's validity). */
  validityDays?: number;
  /** Certify a new key for a device id already bound to another key (the previous certificate is revoked). */
  allowRekey?: boolean;
  /** How the request reached the CA (recorded); default offline (`ca issue`). */
  enrollment?: Enrollment;
  /** The device id the request must be for (the enrollment topic's); otherwise `device-mismatch`. */
  deviceId?: string;
  now?: () => Date;
}

export interface IssuedDevice {
  outcome: IssueOutcome;
  deviceId: string;
  record: DeviceRecord;
  certificateDer: Uint8Array;
  certificatePem: string;
  csr: CheckedCsr;
  /** The serial revoked as superseded by a re-key. */
  supersededSerial?: string;
}

/** Checks `csr` (PEM or DER) and issues or re-serves the device certificate (see the top of this file). */
export async function issueDeviceCertificate(
  dir: DataDirRef,
  ca: CertificateAuthority,
  csrData: Uint8Array | string,
  options: IssueDeviceOptions = {},
): Promise<IssuedDevice> {
  const [result] = await issueDeviceCertificates(dir, ca, [{ csr: csrData, options }]);
  if (!result!.ok) throw result!.error;
  return result!.issued;
}

export interface IssueRequest {
  csr: Uint8Array | string;
  options?: IssueDeviceOptions;
}

export type IssueResult = { ok: true; issued: IssuedDevice } | { ok: false; error: unknown };

/**
 * Decides many requests under one hold of the data directory lock (the enrollment service's
 * batches): the CSRs are checked first (outside the lock), then each request is decided in order
 * as `issueDeviceCertificate` would (revocations read once), every new record, certificate and
 * request is written with `writeDevices` (one concurrent round of fsyncs), and only then are the
 * results returned: a certificate is never handed out before its record is durable. One result per
 * request, in order; a refusal or failure of one request does not affect the others, except that a
 * failed write fails every request that issued in the batch. A device id twice in one batch: the
 * later request is decided against the earlier one's record.
 */
export async function issueDeviceCertificates(
  dir: DataDirRef,
  ca: CertificateAuthority,
  requests: IssueRequest[],
): Promise<IssueResult[]> {
  const data = openDataDir(dir);
  const checked = await Promise.all(
    requests.map(async ({ csr, options = {} }) => {
      try {
        return { csr: await checkCsr(csr, options.deviceId === undefined ? {} : { deviceId: options.deviceId }) };
      } catch (error) {
        return { error };
      }
    }),
  );
  if (checked.every((c) => c.csr === undefined)) return checked.map((c) => ({ ok: false, error: c.error }));
  return withDataDirLock(data, async () => {
    const revocations = readRevocations(data);
    const decided = new Map<string, { record: DeviceRecord; der: Uint8Array; pem: string }>();
    const writes: DeviceWrite[] = [];
    const results: IssueResult[] = [];
    const revokeAfter: { serial: string; deviceId: string; now: Date }[] = [];
    for (let i = 0; i < requests.length; i++) {
      const { csr, error } = checked[i]!;
      if (csr === undefined) {
        results.push({ ok: false, error });
        continue;
      }
      try {
        const options = requests[i]!.options ?? {};
        const issued = await decide(data, ca, csr, options, revocations, decided);
        if (issued.outcome !== 'existing') {
          decided.set(issued.deviceId, {
            record: issued.record,
            der: issued.certificateDer,
            pem: issued.certificatePem,
          });
          writes.push({ record: issued.record, certificatePem: issued.certificatePem, csrPem: csr.pem });
          if (issued.supersededSerial !== undefined) {
            revokeAfter.push({
              serial: issued.supersededSerial,
              deviceId: issued.deviceId,
              now: (options.now ?? (() => new Date()))(),
            });
          }
        }
        results.push({ ok: true, issued });
      } catch (e) {
        results.push({ ok: false, error: e });
      }
    }
    try {
      await writeDevices(data, writes);
    } catch (e) {
      return results.map((r) => (r.ok && r.issued.outcome !== 'existing' ? { ok: false, error: e } : r));
    }
    for (const r of revokeAfter) {
      await addRevocation(data, ca, { serial: r.serial, deviceId: r.deviceId, reason: 'superseded', now: r.now });
    }
    return results;
  });
}

/** One request's decision (see the top of this file); `decided` holds this batch's earlier outcomes. */
async function decide(
  data: DataDir,
  ca: CertificateAuthority,
  csr: CheckedCsr,
  options: IssueDeviceOptions,
  revocations: RevocationEntry[],
  decided: Map<string, { record: DeviceRecord; der: Uint8Array; pem: string }>,
): Promise<IssuedDevice> {
  const now = options.now ?? (() => new Date());
  const deviceId = csr.deviceId;
  const earlier = decided.get(deviceId);
  const record = earlier?.record ?? readDeviceRecord(data, deviceId);
  let outcome: IssueOutcome = 'issued';
  if (record !== undefined) {
    if (record.publicKey === csr.publicKeyHex) {
      const revoked = revocations.find((e) => e.serial === record.serial);
      if (revoked !== undefined) {
        throw new Refusal(
          'revoked',
          `the certificate of device ${deviceId} for this key (serial ${record.serial}) was revoked ` +
            `(${revoked.reason}, ${revoked.time}); the device needs a new key, and an operator must allow it`,
        );
      }
      if (now().getTime() < new Date(record.notAfter).getTime()) {
        return {
          outcome: 'existing',
          deviceId,
          record,
          certificateDer: earlier?.der ?? readDeviceCertificate(data, deviceId),
          certificatePem: earlier?.pem ?? readDeviceCertificatePem(data, deviceId),
          csr,
        };
      }
      outcome = 'renewed';
    } else if (!options.allowRekey) {
      throw new Refusal(
        'key-conflict',
        `device ${deviceId} is enrolled with another key (certificate serial ${record.serial}, key ` +
          `${fingerprint(record.publicKey)}…, this request's ${fingerprint(csr.publicKeyHex)}…); ` +
          'an operator must allow a re-key (ca issue --allow-rekey, or ca allow --rekey for enrollment)',
      );
    } else {
      outcome = 'rekeyed';
    }
  }
  const issued = await issueCertificate(ca, {
    commonName: deviceId,
    publicKey: csr.publicKey,
    keyUsage: 'device',
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
  });
  const previous = record === undefined ? [] : [...record.previous];
  if (record !== undefined) {
    previous.push({ serial: record.serial, publicKey: record.publicKey, notAfter: record.notAfter });
  }
  const next: DeviceRecord = {
    deviceId,
    serial: issued.serialHex,
    publicKey: csr.publicKeyHex,
    issued: now().toISOString(),
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
    enrollment: options.enrollment ?? { mode: 'offline' },
    previous,
  };
  return {
    outcome,
    deviceId,
    record: next,
    certificateDer: issued.der,
    certificatePem: issued.pem,
    csr,
    ...(outcome === 'rekeyed' && record !== undefined ? { supersededSerial: record.serial } : {}),
  };
}

/** A short, printable identification of a public key: the start of its x-coordinate (hex). */
function fingerprint(publicKeyHex: string): string {
  return publicKeyHex.slice(2, 18);
}
