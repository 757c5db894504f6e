/**
 * The enrollment decision for one request, without MQTT: given the device id of the topic a
 * request arrived on and its bytes, decide, issue or re-serve the certificate, and say what to
 * publish back. The service (`service.ts`) feeds it from the broker; tests call it directly.
 *
 * Order of checks (the first failure decides; CA work only after authorization):
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
 * A refusal is answered with status "refused" and a reason whose first word is the code. A
 * failure of the CA itself (no CA, no cloud certificate, a corrupt file) is answered with
 * "unavailable: …", which devices treat as transient, and logged.
 */
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
import { currentCloudCertificates } from '../pki/cloud-keys.js';
import { issueDeviceCertificate } from '../pki/device-issuer.js';
import type { Enrollment } from '../pki/records.js';
import { isRefusal, Refusal, type RefusalCode } from '../pki/refusal.js';
import { loadCaFromDir } from '../pki/store.js';
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

export interface Enroller {
  /** Decides on the request `payload` received on device `deviceId`'s enroll topic. Never throws. */
  handle(deviceId: string, payload: Uint8Array): Promise<EnrollDecision>;
}

export function createEnroller(options: EnrollerOptions): Enroller {
  const { dataDir: root, crypto } = options;

  function authorize(deviceId: string, request: EnrollRequest): Enrollment {
    if (request.mac === undefined) {
      if (!isAllowListed(root, deviceId)) {
        throw new Refusal(
          'not-allowed',
          `device ${deviceId} is not on the allow-list and the request has no credential`,
        );
      }
      return { mode: 'allow-list' };
    }
    const batch = request.batchId!;
    const secret = readBatchSecret(root, batch);
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

  async function handle(deviceId: string, payload: Uint8Array): Promise<EnrollDecision> {
    let request: EnrollRequest;
    try {
      request = parseEnrollRequest(payload);
    } catch (e) {
      return { deviceId, outcome: 'ignored', code: 'bad-request', reason: `bad-request: ${(e as Error).message}` };
    }
    const requestId = toHex(request.requestId);
    const refused = (
      code: DecisionCode,
      reason: string,
      extra: Partial<EnrollDecision> = {},
      sent: string = reason,
    ): EnrollDecision => ({
      deviceId,
      outcome: 'refused',
      code,
      reason,
      requestId,
      ...extra,
      reply: makeEnrollResult({ status: 'refused', requestId: request.requestId, reason: sent }),
    });
    let enrollment: Enrollment | undefined;
    try {
      enrollment = authorize(deviceId, request);
      const ca = await loadCaFromDir(root);
      const cloudCertificates = currentCloudCertificates(root);
      const allowRekey = readRekeyAllowed(root).includes(deviceId);
      const issued = await issueDeviceCertificate(root, ca, request.csr, {
        deviceId,
        allowRekey,
        enrollment,
        ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
        ...(options.now === undefined ? {} : { now: options.now }),
      });
      if (issued.outcome === 'rekeyed') consumeRekey(root, deviceId);
      return {
        deviceId,
        outcome: issued.outcome,
        requestId,
        mode: enrollment.mode,
        ...(enrollment.batch === undefined ? {} : { batch: enrollment.batch }),
        serial: issued.record.serial,
        reply: makeEnrollResult({
          status: 'issued',
          requestId: request.requestId,
          deviceCertificate: issued.certificateDer,
          caCertificate: ca.der,
          cloudCertificates,
        }),
      };
    } catch (e) {
      const context: Partial<EnrollDecision> =
        enrollment === undefined
          ? {}
          : { mode: enrollment.mode, ...(enrollment.batch === undefined ? {} : { batch: enrollment.batch }) };
      if (isRefusal(e)) return refused(e.code, e.message, context);
      // The detail (paths, file problems) goes to the log only, not to the broker.
      return refused('unavailable', `unavailable: ${(e as Error).message}`, context, UNAVAILABLE);
    }
  }

  return {
    async handle(deviceId, payload) {
      try {
        return await handle(deviceId, payload);
      } catch (e) {
        return { deviceId, outcome: 'ignored', code: 'unavailable', reason: `unavailable: ${(e as Error).message}` };
      }
    },
  };
}
