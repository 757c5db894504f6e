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
 * Record, certificate and CRL changes run under the data directory lock.
 */
import { type CertificateAuthority, issueCertificate } from './authority.js';
import { type CheckedCsr, checkCsr } from './csr.js';
import { type DataDirRef, openDataDir, withDataDirLock } from './data-dir.js';
import {
  type DeviceRecord,
  type Enrollment,
  readDeviceCertificate,
  readDeviceCertificatePem,
  readDeviceRecord,
  writeDevice,
} from './records.js';
import { Refusal } from './refusal.js';
import { addRevocation, readRevocations } from './revocation.js';

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
  const csr = await checkCsr(csrData, options.deviceId === undefined ? {} : { deviceId: options.deviceId });
  const now = options.now ?? (() => new Date());
  const data = openDataDir(dir);
  return withDataDirLock(data, async () => {
    const deviceId = csr.deviceId;
    const record = readDeviceRecord(data, deviceId);
    let outcome: IssueOutcome = 'issued';
    if (record !== undefined) {
      if (record.publicKey === csr.publicKeyHex) {
        const revoked = readRevocations(data).find((e) => e.serial === record.serial);
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
            certificateDer: readDeviceCertificate(data, deviceId),
            certificatePem: readDeviceCertificatePem(data, deviceId),
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
    writeDevice(data, next, { certificatePem: issued.pem, csrPem: csr.pem });
    let supersededSerial: string | undefined;
    if (outcome === 'rekeyed' && record !== undefined) {
      await addRevocation(data, ca, { serial: record.serial, deviceId, reason: 'superseded', now: now() });
      supersededSerial = record.serial;
    }
    return {
      outcome,
      deviceId,
      record: next,
      certificateDer: issued.der,
      certificatePem: issued.pem,
      csr,
      ...(supersededSerial === undefined ? {} : { supersededSerial }),
    };
  });
}

/** A short, printable identification of a public key: the start of its x-coordinate (hex). */
function fingerprint(publicKeyHex: string): string {
  return publicKeyHex.slice(2, 18);
}
