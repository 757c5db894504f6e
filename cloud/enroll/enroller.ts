/**
 * The enrollment decision for one request, without MQTT: given the device id of the topic a
 * request arrived on and its bytes, decide, issue or re-serve the certificate, and say what to
 * publish back. The service (`service.ts`) feeds it from the broker; tests call it directly.
 *
 * Order of checks (the first failure decides; CA work only after authorization). `admit` does
 * steps 1–2 (cheap, synchronous: the service runs it before its per-device rate limit, so that
 * unauthenticated garbage cannot use up a device's turn), `issue` steps 3–4:
 * 1. the request parses (`parseEnrollRequest`); otherwise it is ignored — there is no request id
 *    to answer to;
 * 2. authorization: a credentialed request names a batch whose secret this CA holds and its MAC
 *    verifies under `enrollmentKey(batch secret, topic device id)` with the topic device id as
 *    external AAD (`bad-credential` otherwise — which also catches a request replayed on another
 *    device's topic); a request without a credential needs the topic device id on the allow-list
 *    (`not-allowed`);
 * 3. the CSR (`checkCsr`: `bad-csr`), its CN equal to the topic device id (`device-mismatch`);
 * 4. the device's record (`issueDeviceCertificate`): issue, re-serve the same certificate for the
 *    same key (idempotent retries), `key-conflict` for another key unless an operator allowed a
 *    re-key (`cose-flow ca allow --rekey ID`, used up by the re-key), `revoked`.
 *
 * The CA and the cloud certificates are loaded once and again when their files change; `issueBatch`
 * decides many requests under one hold of the data directory lock (the service's batches).
 *
 * A refusal is answered with status "refused" and a reason whose first word is the code. A
 * failure of the CA itself (no CA, no cloud certificate, a corrupt file) is answered with
 * "unavailable: …", which devices treat as transient, and logged.
 */

import { statSync } from 'node:fs';
import { toHex } from '../../src/bytes.js';
import { isCoseError } from '../../src/cose/errors.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import {
  type EnrollRequest,
  enrollmentKey,
  makeEnrollResult,
  parseEnrollRequest,
  verifyEnrollRequest,
} from '../../src/profile/enrollment.js';
import type { CertificateAuthority } from '../pki/authority.js';
import { cloudKeysVersion, currentCloudCertificates } from '../pki/cloud-keys.js';
import { type DataDir, loadCaFromDir, openDataDir } from '../pki/data-dir.js';
import { type IssueResult, issueDeviceCertificates } from '../pki/device-issuer.js';
import type { Enrollment } from '../pki/records.js';
import { isRefusal, Refusal, type RefusalCode } from '../pki/refusal.js';
import { consumeRekey, isAllowListed, readBatchSecret, readRekeyAllowed } from './policy.js';

/** What a device is told when the CA itself cannot work (transient: the device retries later). */
const UNAVAILABLE = 'unavailable: the enrollment service cannot issue certificates now; try again later';

export type EnrollOutcome = 'issued' | 'existing' | 'renewed' | 'rekeyed' | 'refused' | 'ignored';

/** Codes beyond the refusals: a request that could not be read, a CA that cannot work right now. */
export type DecisionCode = RefusalCode | 'bad-request' | 'unavailable' | 'rate-limited' | 'busy';

export interface EnrollDecision {
  deviceId: string;
  outcome: EnrollOutcome;
  code?: DecisionCode;
  /** The reason text (the code first), as logged; sent to the device too, except the detail of `unavailable`. */
  reason?: string;
  /** The request id, hex (when the request parsed). */
  requestId?: string;
  mode?: Enrollment['mode'];
  batch?: string;
  /** The serial of the certificate sent back. */
  serial?: string;
  /** The enrollment result to publish on `{prefix}/{deviceId}/enroll/result`, when there is one. */
  reply?: Uint8Array;
}

export interface EnrollerOptions {
  dataDir: string;
  crypto: CryptoProvider;
  /** Validity of new device certificates in days (default 365). */
  validityDays?: number;
  now?: () => Date;
}

/**
 * The cheap first part of a decision (steps 1 and 2, no CA work, synchronous): `unauthenticated`
 * carries the final decision for a request that does not parse, whose credential does not verify,
 * or that has none and is not allow-listed; `admitted` a request that may go on to `issue`.
 */
export type Admission =
  | { kind: 'unauthenticated'; decision: EnrollDecision }
  | { kind: 'admitted'; deviceId: string; request: EnrollRequest; enrollment: Enrollment };

export interface Enroller {
  /** Decides on the request `payload` received on device `deviceId`'s enroll topic. Never throws. */
  handle(deviceId: string, payload: Uint8Array): Promise<EnrollDecision>;
  /** Steps 1–2: parse and authorize (the MAC, or the allow-list). Never throws. */
  admit(deviceId: string, payload: Uint8Array): Admission;
  /** Steps 3–4 for an admitted request: the CSR and the device record. Never throws. */
  issue(admitted: Extract<Admission, { kind: 'admitted' }>): Promise<EnrollDecision>;
  /**
   * Steps 3–4 for many admitted requests under one hold of the data directory lock, their records
   * written together and durable before this resolves (device-issuer.ts `issueDeviceCertificates`).
   * One decision per request, in order. Never throws.
   */
  issueBatch(admitted: Extract<Admission, { kind: 'admitted' }>[]): Promise<EnrollDecision[]>;
}

/** A stat fingerprint of files: changes when any of them is replaced or rewritten. */
function filesStamp(paths: string[]): string {
  return paths
    .map((path) => {
      const s = statSync(path, { throwIfNoEntry: false });
      return s === undefined ? '-' : `${s.ino}:${s.size}:${s.mtimeMs}`;
    })
    .join('|');
}

/**
 * The CA and the cloud certificates of a data directory, loaded once and again only when their
 * files change (a stat each per batch, not a PEM parse and key import per request).
 */
function caCache(data: DataDir) {
  let ca: { stamp: string; value: Promise<CertificateAuthority> } | undefined;
  let cloud: { stamp: string; value: Uint8Array[] } | undefined;
  return {
    ca(): Promise<CertificateAuthority> {
      const stamp = filesStamp([data.caCertificate, data.caKey]);
      if (ca === undefined || ca.stamp !== stamp) {
        const value = loadCaFromDir(data);
        ca = { stamp, value };
        value.catch(() => {
          if (ca?.value === value) ca = undefined; // try again next time
        });
      }
      return ca.value;
    },
    cloudCertificates(): Uint8Array[] {
      const stamp = cloudKeysVersion(data.root);
      if (cloud === undefined || cloud.stamp !== stamp) cloud = { stamp, value: currentCloudCertificates(data.root) };
      return cloud.value;
    },
  };
}

export function createEnroller(options: EnrollerOptions): Enroller {
  const { crypto } = options;
  const data = openDataDir(options.dataDir);

  function authorize(deviceId: string, request: EnrollRequest): Enrollment {
    if (request.mac === undefined) {
      if (!isAllowListed(data, deviceId)) {
        throw new Refusal(
          'not-allowed',
          `device ${deviceId} is not on the allow-list and the request has no credential`,
        );
      }
      return { mode: 'allow-list' };
    }
    const batch = request.batchId!;
    const secret = readBatchSecret(data, batch);
    if (secret === undefined) throw new Refusal('bad-credential', `unknown enrollment batch ${JSON.stringify(batch)}`);
    const key = enrollmentKey(crypto, secret, deviceId);
    secret.fill(0);
    try {
      verifyEnrollRequest(crypto, request, key, deviceId);
    } catch (e) {
      if (!isCoseError(e)) throw e;
      throw new Refusal(
        'bad-credential',
        `the credential does not verify for device ${deviceId} in batch ${batch} (wrong key, or a request made for another device)`,
      );
    } finally {
      key.fill(0);
    }
    return { mode: 'batch', batch };
  }

  function refusal(
    deviceId: string,
    request: EnrollRequest,
    code: DecisionCode,
    reason: string,
    extra: Partial<EnrollDecision> = {},
    sent: string = reason,
  ): EnrollDecision {
    return {
      deviceId,
      outcome: 'refused',
      code,
      reason,
      requestId: toHex(request.requestId),
      ...extra,
      reply: makeEnrollResult({ status: 'refused', requestId: request.requestId, reason: sent }),
    };
  }

  function admit(deviceId: string, payload: Uint8Array): Admission {
    let request: EnrollRequest;
    try {
      request = parseEnrollRequest(payload);
    } catch (e) {
      const reason = `bad-request: ${(e as Error).message}`;
      return { kind: 'unauthenticated', decision: { deviceId, outcome: 'ignored', code: 'bad-request', reason } };
    }
    try {
      return { kind: 'admitted', deviceId, request, enrollment: authorize(deviceId, request) };
    } catch (e) {
      if (isRefusal(e)) return { kind: 'unauthenticated', decision: refusal(deviceId, request, e.code, e.message) };
      const reason = `unavailable: ${(e as Error).message}`;
      return {
        kind: 'unauthenticated',
        decision: refusal(deviceId, request, 'unavailable', reason, {}, UNAVAILABLE),
      };
    }
  }

  const loaded = caCache(data);

  function context(enrollment: Enrollment): Partial<EnrollDecision> {
    return { mode: enrollment.mode, ...(enrollment.batch === undefined ? {} : { batch: enrollment.batch }) };
  }

  function unavailable(admitted: Extract<Admission, { kind: 'admitted' }>, e: unknown): EnrollDecision {
    // The detail (paths, file problems) goes to the log only, not to the broker.
    const { deviceId, request, enrollment } = admitted;
    const reason = `unavailable: ${(e as Error).message}`;
    return refusal(deviceId, request, 'unavailable', reason, context(enrollment), UNAVAILABLE);
  }

  async function issueBatch(batch: Extract<Admission, { kind: 'admitted' }>[]): Promise<EnrollDecision[]> {
    if (batch.length === 0) return [];
    let ca: CertificateAuthority;
    let cloudCertificates: Uint8Array[];
    let rekeyAllowed: string[];
    try {
      ca = await loaded.ca();
      cloudCertificates = loaded.cloudCertificates();
      rekeyAllowed = readRekeyAllowed(data);
    } catch (e) {
      return batch.map((a) => unavailable(a, e));
    }
    const results: IssueResult[] = await issueDeviceCertificates(
      data,
      ca,
      batch.map(({ deviceId, request, enrollment }) => ({
        csr: request.csr,
        options: {
          deviceId,
          allowRekey: rekeyAllowed.includes(deviceId),
          enrollment,
          ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
          ...(options.now === undefined ? {} : { now: options.now }),
        },
      })),
    ).catch((e: unknown) => batch.map((): IssueResult => ({ ok: false, error: e })));
    return batch.map((admitted, i) => {
      const { deviceId, request, enrollment } = admitted;
      const result = results[i]!;
      if (!result.ok) {
        const e = result.error;
        if (isRefusal(e)) return refusal(deviceId, request, e.code, e.message, context(enrollment));
        return unavailable(admitted, e);
      }
      const issued = result.issued;
      if (issued.outcome === 'rekeyed') consumeRekey(data, deviceId);
      return {
        deviceId,
        outcome: issued.outcome,
        requestId: toHex(request.requestId),
        ...context(enrollment),
        serial: issued.record.serial,
        reply: makeEnrollResult({
          status: 'issued',
          requestId: request.requestId,
          deviceCertificate: issued.certificateDer,
          caCertificate: ca.der,
          cloudCertificates,
        }),
      } satisfies EnrollDecision;
    });
  }

  const failed = (deviceId: string, e: unknown): EnrollDecision => ({
    deviceId,
    outcome: 'ignored',
    code: 'unavailable',
    reason: `unavailable: ${(e as Error).message}`,
  });

  const api: Enroller = {
    admit(deviceId, payload) {
      try {
        return admit(deviceId, payload);
      } catch (e) {
        return { kind: 'unauthenticated', decision: failed(deviceId, e) };
      }
    },
    async issue(admitted) {
      return (await api.issueBatch([admitted]))[0]!;
    },
    async issueBatch(batch) {
      try {
        return await issueBatch(batch);
      } catch (e) {
        return batch.map((a) => failed(a.deviceId, e));
      }
    },
    async handle(deviceId, payload) {
      const admitted = api.admit(deviceId, payload);
      return admitted.kind === 'admitted' ? api.issue(admitted) : admitted.decision;
    },
  };
  return api;
}
