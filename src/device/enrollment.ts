/**
 * Zero-touch enrollment, the device side: a device without a certificate asks the enrollment
 * service for one over MQTT, checks what comes back, and hands it to the caller to persist.
 *
 *   const enrolled = await enrollDevice({ mqtt, crypto, key, deviceId, credential, ca, timers });
 *   // persist enrolled.deviceCertificate, enrolled.caCertificate, enrolled.cloudCertificates; start a session
 *
 * 1. One request is made — a CSR (`makeCsr`, CN = the device id, signed by the device key), a
 *    random 16-byte request id, MACed with the enrollment credential when there is one — and kept
 *    for every retry, so a retry is the same request and the service answers it idempotently
 *    (a caller that starts over after `EnrollmentError` may pass the same `requestId` again, so a
 *    late answer to a queued copy still counts).
 * 2. The device subscribes to `{prefix}/{id}/enroll/result` (QoS 1), publishes the request on
 *    `{prefix}/{id}/enroll` (QoS 1) and waits `responseTimeoutMs` for a result with its request id
 *    (results for other request ids are ignored: anybody may publish on the topic).
 * 3. No answer, a failed publish, or a transient refusal (`unavailable`, any code not listed
 *    below): it waits an exponential backoff with jitter (src/backoff.ts: initial × multiplier^(n−1),
 *    at most `maxDelayMs`, minus up to `jitter` of it) and tries again, at most `maxAttempts` times in all.
 *    A result that arrives late, during the backoff, still counts.
 * 4. A refusal with a final code (`not-allowed`, `bad-credential`, `bad-csr`, `key-conflict`,
 *    `device-mismatch`, `revoked`) ends it at once: `EnrollmentError` with `final: true`. Asking
 *    again would get the same answer; an operator has to act first.
 * 5. An "issued" result is believed only when it verifies (otherwise it is ignored and the device
 *    keeps waiting, as for a forgery): the CA certificate is the pinned one (`ca`: same DER) or
 *    has the pinned SHA-256 (`caFingerprint`), or — with neither — is taken on first use; the
 *    device certificate is issued by that CA (`certificateVerifier`) for exactly this device id
 *    and this public key; every cloud certificate is issued by that CA for key agreement
 *    (`verifyCloudCertificate`). Validity periods are checked when the clock knows the time.
 *    These are `verifyCredentials` (src/device/credentials.ts), the same checks as for
 *    certificates given in configuration (offline provisioning).
 *
 * Trust on first use: without a pinned CA, whoever answers first with a self-consistent result
 * (any CA, certificates issued by it for our key) becomes the device's CA. That is safe only when
 * nobody else can publish on the device's result topic (broker ACLs) during enrollment; pin the CA
 * (or its fingerprint, 32 bytes) in the firmware when that is not so. See docs/ENROLLMENT.md.
 *
 * Runtime-neutral: no Node APIs (this runs in XS). Timers are injected.
 */
import { backoffDelay as sharedBackoffDelay } from '../backoff.js';
import { equal } from '../bytes.js';
import type { CryptoProvider, P256PrivateKey } from '../crypto/provider.js';
import { makeCsr } from '../pki/csr.js';
import type { MqttConnection } from '../platform/mqtt.js';
import { randomFraction } from '../platform/rng.js';
import type { Timers } from '../platform/timers.js';
import {
  ENROLL_REFUSAL_CODES,
  type EnrollCredential,
  type EnrollResult,
  makeEnrollRequest,
  parseEnrollResult,
} from '../profile/enrollment.js';
import { DEFAULT_PREFIX } from '../profile/limits.js';
import { checkDeviceId, checkPrefix, topic } from '../profile/topics.js';
import { verifyCredentials } from './credentials.js';

/** Refusal codes after which asking again is pointless: an operator must act. */
export const FINAL_REFUSALS: readonly string[] = ENROLL_REFUSAL_CODES;

const REQUEST_ID_BYTES = 16;
const SHA256_BYTES = 32;

/** `setTimeout`/`clearTimeout`, injected (Moddable's Timer, Node's globals, or a test clock). */
export type { Timers } from '../platform/timers.js';

export interface RetryPolicy {
  /** Requests sent in all, the first included (default 10). */
  maxAttempts: number;
  /** How long to wait for a result after each request (default 10 000 ms). */
  responseTimeoutMs: number;
  /** The first backoff delay (default 2 000 ms), multiplied by `multiplier` (default 2) each time … */
  initialDelayMs: number;
  multiplier: number;
  /** … up to this (default 300 000 ms). */
  maxDelayMs: number;
  /** Fraction 0–1 of each delay taken off at random (default 0.5): devices of a batch spread out. */
  jitter: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = {
  maxAttempts: 10,
  responseTimeoutMs: 10_000,
  initialDelayMs: 2_000,
  multiplier: 2,
  maxDelayMs: 300_000,
  jitter: 0.5,
};

export type EnrollEvent =
  | { type: 'request'; attempt: number }
  | { type: 'publish-failed'; attempt: number; error: string }
  | { type: 'no-answer'; attempt: number }
  | { type: 'refused'; attempt: number; code: string; reason: string; final: boolean }
  | { type: 'invalid-result'; attempt: number; reason: string }
  | { type: 'backoff'; attempt: number; delayMs: number }
  | { type: 'enrolled'; attempt: number };

export interface Cancellation {
  cancelled(): boolean;
  /** Calls `fn` once on cancellation; returns a function that unregisters it. */
  onCancel(fn: () => void): () => void;
}

export interface EnrollDeviceOptions {
  mqtt: MqttConnection;
  crypto: CryptoProvider;
  /** The device key; its public key is what the certificate must certify. */
  key: P256PrivateKey;
  deviceId: string;
  /** Topic prefix (default cose-flow/v1). */
  prefix?: string;
  /** The enrollment credential (batch id + per-device key); without it the service must allow-list the id. */
  credential?: EnrollCredential;
  /** The CA certificate (DER) the device was provisioned with: the result's CA must be exactly it. */
  ca?: Uint8Array;
  /** Or its SHA-256 (32 bytes). With neither, the CA is trusted on first use. */
  caFingerprint?: Uint8Array;
  /** Epoch milliseconds, or undefined while the time is unknown (validity periods not checked). Default: none known. */
  now?: () => number | undefined;
  timers: Timers;
  retry?: Partial<RetryPolicy>;
  /**
   * Ends the attempts early, e.g. when the device stops: waits end at once, and enrollDevice
   * throws an EnrollmentError with code `cancelled` instead of trying again.
   */
  cancel?: Cancellation;
  /** Progress, for logs. */
  onEvent?: (event: EnrollEvent) => void;
  /**
   * The request id (16 bytes) to ask under; default a new random one. A caller that asks again
   * after an `EnrollmentError` passes the same id (src/device/trust.ts does), so that the answer to
   * a copy of its request still waiting in a busy service's queue is still its answer.
   */
  requestId?: Uint8Array;
}

export interface Enrolled {
  deviceCertificate: Uint8Array;
  caCertificate: Uint8Array;
  /** The cloud certificates, the one to use first. */
  cloudCertificates: Uint8Array[];
  /** Their P-256 public keys (65-byte points), in the same order: `makeKeyMessage`'s `cloudPublicKey`. */
  cloudPublicKeys: Uint8Array[];
  /** How the CA certificate came to be trusted. */
  caTrust: 'pinned' | 'fingerprint' | 'first-use';
  /** Requests sent. */
  attempts: number;
}

/**
 * Enrollment did not succeed. `final`: refused for good (`code` is the service's refusal code).
 * Otherwise the attempts ran out; `code` says what went wrong last: `no-answer`, `publish-failed`,
 * `invalid-result` or a transient refusal code such as `unavailable`. Try again later.
 */
export class EnrollmentError extends Error {
  // A field (defined), not `this.name = …` (assigned): XS freezes Error.prototype, where an
  // assignment to the inherited read-only `name` throws "set name: not writable".
  override name = 'EnrollmentError';
  readonly code: string;
  readonly final: boolean;
  readonly attempts: number;
  constructor(code: string, message: string, final: boolean, attempts: number) {
    super(`${code}: ${message}`);
    this.code = code;
    this.final = final;
    this.attempts = attempts;
  }
}

type Answer =
  | { kind: 'enrolled'; enrolled: Omit<Enrolled, 'attempts'> }
  | { kind: 'refused'; code: string; reason: string }
  | { kind: 'none' };

function retryPolicy(partial: Partial<RetryPolicy> | undefined): RetryPolicy {
  const policy = { ...DEFAULT_RETRY, ...partial };
  const check = (name: keyof RetryPolicy, ok: boolean) => {
    if (!ok) throw new RangeError(`retry.${name} is out of range: ${String(policy[name])}`);
  };
  check(
    'maxAttempts',
    policy.maxAttempts >= 1 && (Number.isInteger(policy.maxAttempts) || policy.maxAttempts === Infinity),
  );
  check('responseTimeoutMs', Number.isFinite(policy.responseTimeoutMs) && policy.responseTimeoutMs > 0);
  check('initialDelayMs', Number.isFinite(policy.initialDelayMs) && policy.initialDelayMs >= 0);
  check('multiplier', Number.isFinite(policy.multiplier) && policy.multiplier >= 1);
  check('maxDelayMs', Number.isFinite(policy.maxDelayMs) && policy.maxDelayMs >= policy.initialDelayMs);
  check('jitter', policy.jitter >= 0 && policy.jitter <= 1);
  return policy;
}

/**
 * The backoff before attempt `attempt + 1`: src/backoff.ts's, with this policy's names mapped onto
 * it (initialDelayMs → initialMs, maxDelayMs → maxMs).
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number): number {
  const { initialDelayMs: initialMs, multiplier, maxDelayMs: maxMs, jitter } = policy;
  return sharedBackoffDelay({ initialMs, multiplier, maxMs, jitter }, attempt, random);
}

/** Requests, waits, retries and verifies as described at the top of this file. */
export async function enrollDevice(options: EnrollDeviceOptions): Promise<Enrolled> {
  const { mqtt, crypto, key, timers } = options;
  const deviceId = checkDeviceId(options.deviceId);
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const policy = retryPolicy(options.retry);
  if (options.caFingerprint !== undefined && options.caFingerprint.length !== SHA256_BYTES) {
    throw new RangeError(`caFingerprint must be a ${SHA256_BYTES}-byte SHA-256`);
  }
  const now = options.now ?? (() => undefined);
  const emit = options.onEvent ?? (() => {});
  const random = () => randomFraction(crypto);

  const requestId = options.requestId ?? crypto.randomBytes(REQUEST_ID_BYTES);
  const request = makeEnrollRequest(crypto, {
    deviceId,
    csr: makeCsr(crypto, key, deviceId),
    requestId,
    ...(options.credential === undefined ? {} : { credential: options.credential }),
  });
  const requestTopic = topic('enroll', deviceId, prefix);
  const resultTopic = topic('enroll/result', deviceId, prefix);

  let attempt = 0;
  let lastProblem: { code: string; message: string } = { code: 'no-answer', message: 'no result arrived' };
  const inbox: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  const removeHandler = mqtt.onMessage((name, payload) => {
    if (name !== resultTopic) return;
    inbox.push(payload);
    if (wake !== undefined) wake();
  });

  /** Looks at one result: ours and decisive, or to be ignored (other request id, unparseable, forged). */
  function examine(payload: Uint8Array): Answer {
    let result: EnrollResult;
    try {
      result = parseEnrollResult(payload);
    } catch (e) {
      emit({ type: 'invalid-result', attempt, reason: (e as Error).message });
      return { kind: 'none' };
    }
    if (!equal(result.requestId, requestId)) return { kind: 'none' };
    if (result.status === 'refused') {
      const reason = result.reason ?? 'refused without a reason';
      const colon = reason.indexOf(':');
      const code = colon > 0 ? reason.slice(0, colon).trim() : 'refused';
      return { kind: 'refused', code, reason };
    }
    try {
      return { kind: 'enrolled', enrolled: verifyResult(result) };
    } catch (e) {
      const message = (e as Error).message;
      lastProblem = { code: 'invalid-result', message };
      emit({ type: 'invalid-result', attempt, reason: message });
      return { kind: 'none' };
    }
  }

  function verifyResult(result: EnrollResult): Omit<Enrolled, 'attempts'> {
    const candidate = {
      deviceCertificate: result.deviceCertificate!,
      caCertificate: result.caCertificate!,
      cloudCertificates: result.cloudCertificates!,
    };
    const verified = verifyCredentials(crypto, candidate, {
      deviceId,
      publicKey: key.publicKey,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.caFingerprint === undefined ? {} : { caFingerprint: options.caFingerprint }),
      now,
    });
    const caTrust = verified.pin === 'ca' ? 'pinned' : verified.pin === 'fingerprint' ? 'fingerprint' : 'first-use';
    return { ...candidate, cloudPublicKeys: verified.cloudPublicKeys, caTrust };
  }

  /**
   * Waits up to `ms` for an answer (looking at what is queued first): a certificate, a final
   * refusal, or — when `transientEnds` — a transient refusal.
   */
  function waitForAnswer(ms: number, transientEnds: boolean): Promise<Answer> {
    return new Promise((resolve) => {
      let done = false;
      let handle: unknown;
      let offCancel: (() => void) | undefined;
      const finish = (answer: Answer) => {
        if (done) return;
        done = true;
        wake = undefined;
        if (handle !== undefined) timers.clearTimeout(handle);
        offCancel?.();
        resolve(answer);
      };
      offCancel = options.cancel?.onCancel(() => finish({ kind: 'none' }));
      wake = () => {
        while (!done && inbox.length > 0) {
          const answer = examine(inbox.shift()!);
          if (answer.kind !== 'none') {
            const transient = answer.kind === 'refused' && !FINAL_REFUSALS.includes(answer.code);
            if (transient) {
              lastProblem = { code: answer.code, message: answer.reason };
              emit({ type: 'refused', attempt, code: answer.code, reason: answer.reason, final: false });
            }
            if (!transient || transientEnds) finish(answer);
          }
        }
      };
      wake();
      if (!done) handle = timers.setTimeout(() => finish({ kind: 'none' }), ms);
    });
  }

  try {
    let subscribed = false;
    const cancelled = () => {
      if (options.cancel?.cancelled())
        throw new EnrollmentError('cancelled', 'stopped before enrollment ended', true, attempt);
    };
    while (attempt < policy.maxAttempts) {
      cancelled();
      attempt++;
      let answer: Answer = { kind: 'none' };
      try {
        if (!subscribed) {
          await mqtt.subscribe(resultTopic, { qos: 1 });
          subscribed = true;
        }
        await mqtt.publish(requestTopic, request, { qos: 1 });
        emit({ type: 'request', attempt });
        answer = await waitForAnswer(policy.responseTimeoutMs, true);
        if (answer.kind === 'none') emit({ type: 'no-answer', attempt });
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        lastProblem = { code: 'publish-failed', message };
        emit({ type: 'publish-failed', attempt, error: message });
      }
      if (answer.kind !== 'enrolled') cancelled();
      if (answer.kind !== 'enrolled' && !isFinal(answer) && attempt < policy.maxAttempts) {
        const delayMs = backoffDelay(policy, attempt, random);
        emit({ type: 'backoff', attempt, delayMs });
        const late = await waitForAnswer(delayMs, false); // a late result still counts
        if (late.kind === 'enrolled' || isFinal(late)) answer = late;
      }
      if (answer.kind === 'enrolled') {
        emit({ type: 'enrolled', attempt });
        return { ...answer.enrolled, attempts: attempt };
      }
      if (isFinal(answer)) {
        emit({ type: 'refused', attempt, code: answer.code, reason: answer.reason, final: true });
        throw new EnrollmentError(answer.code, answer.reason.slice(answer.code.length + 1).trim(), true, attempt);
      }
    }
    throw new EnrollmentError(
      lastProblem.code,
      `no certificate after ${attempt} attempts (last: ${lastProblem.message})`,
      false,
      attempt,
    );
  } finally {
    wake = undefined;
    removeHandler();
  }
}

function isFinal(answer: Answer): answer is { kind: 'refused'; code: string; reason: string } {
  return answer.kind === 'refused' && FINAL_REFUSALS.includes(answer.code);
}
