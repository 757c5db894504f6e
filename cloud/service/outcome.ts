/**
 * What became of one message the broker handed the service, and the one place that acts on it.
 *
 * Each step of the receiver (resolve the session, pre-check the replay window, decrypt, commit;
 * open and store a key message) returns an `Outcome`; `OutcomeSettler.settle` turns it into the
 * metrics, the log line, the service event and the MQTT acknowledgement:
 *
 *   accept     stored: counted, logged, (a session:) an event; (data:) delivered to the payload
 *              handlers; acknowledged
 *   duplicate  already stored: counted, acknowledged, not delivered again
 *   replay     older than the replay window: refused as `replay` (logged at info when the broker
 *              redelivered it, most likely stored before a restart)
 *   reject     refused with a reason code and detail: counted, event, logged, acknowledged (a
 *              refused message is dropped: redelivering it would change nothing)
 *   hold       not acknowledged: waiting for its key message in the pending buffer, no room to
 *              wait (the broker delivers it again), or the revocation list cannot be read
 */
import { toHex } from '../../src/bytes.js';
import { CborError } from '../../src/cbor/index.js';
import { CoseError } from '../../src/cose/errors.js';
import { CryptoError } from '../../src/crypto/provider.js';
import type { MessageKind, ServiceEvent } from '../telemetry/events.js';
import type { DeliveredPayload } from '../telemetry/payload.js';
import { type Logger, RefusalLog } from './log.js';
import type { ServiceMetrics } from './metrics.js';

/** Refusal codes: the codec's `CoseReason`s, the cloud's of §6.4, and the service's own. */
export type RejectReason =
  | CoseError['reason']
  | 'kid-reused'
  | 'kid-rollback'
  | 'kid-too-far'
  | 'session-closed'
  | 'replay'
  | 'unknown-kid'
  /** Admission (admission.ts): over the device's or the global key-message rate, or its quota. */
  | 'rate-limited'
  | 'quota-exceeded'
  /** Not `{prefix}/{valid device id}/session|data`. */
  | 'bad-topic'
  /** A bug: an exception the code did not expect (logged at error level). */
  | 'internal-error';

/** Why a message is left unacknowledged. */
export type HoldReason =
  /** In the pending buffer until its key message comes (acknowledged once handled or expired). */
  | 'pending'
  /** No room in the pending buffer although it could be real: the broker delivers it again. */
  | 'no-room'
  /** The revocation list cannot be read: the broker delivers it again. */
  | 'revocation-unreadable';

export type Outcome =
  | { type: 'accept'; stored: { kind: 'session'; cloudKidHex: string } | { kind: 'data'; payload: DeliveredPayload } }
  | { type: 'duplicate' }
  | { type: 'replay'; detail: string; redelivered: boolean }
  | { type: 'hold'; why: HoldReason; detail: string }
  | { type: 'reject'; reason: RejectReason; detail: string; extra?: Record<string, unknown>; cause?: unknown };

/** The message an outcome is about (what `settle` acknowledges). */
export interface SettledMessage {
  ack(): void;
  /** Epoch ms when the service received it (latency of accepted data). */
  receivedAt: number;
}

/** Who and what a message is about, as far as known (for metrics labels, events and log fields). */
export interface Subject {
  kind: MessageKind;
  deviceId?: string;
  kid?: Uint8Array;
  seq?: number;
}

export function reject(
  reason: RejectReason,
  detail: string,
  extra?: Record<string, unknown>,
): Extract<Outcome, { type: 'reject' }> {
  return extra === undefined ? { type: 'reject', reason, detail } : { type: 'reject', reason, detail, extra };
}

export function reasonOf(e: unknown): RejectReason {
  if (e instanceof CoseError) return e.reason;
  if (e instanceof CryptoError)
    return e.reason === 'bad-input' ? 'bad-structure' : e.reason === 'bad-key' ? 'bad-key' : 'decrypt-failed';
  if (e instanceof CborError) return 'bad-cbor';
  return 'internal-error';
}

/** The refusal for an exception: its reason code and message (an unexpected one: `internal-error`). */
export function rejectionOf(e: unknown): Extract<Outcome, { type: 'reject' }> {
  return { type: 'reject', reason: reasonOf(e), detail: e instanceof Error ? e.message : String(e), cause: e };
}

export interface OutcomeSettlerOptions {
  metrics: ServiceMetrics;
  log: Logger;
  /** Runs the payload handlers of accepted data (before its ack); a promise when one of them is async. */
  deliver: (payload: DeliveredPayload) => Promise<void> | void;
  /** After each accepted payload is counted (the --out file follows the store). */
  onAccepted?: () => void;
  /** Service events (never throws into the settler). */
  observe?: (event: ServiceEvent) => void;
  now?: () => number;
}

export class OutcomeSettler {
  readonly #o: OutcomeSettlerOptions;
  readonly #now: () => number;
  readonly #refusals: RefusalLog;
  /** The counts made per accepted or duplicate data message, their labels bound once. */
  readonly #acceptedData: { inc(): void };
  readonly #duplicateData: { inc(): void };
  #leftForRedelivery = 0;

  constructor(options: OutcomeSettlerOptions) {
    this.#o = options;
    this.#acceptedData = options.metrics.accepted.bind({ kind: 'data' });
    this.#duplicateData = options.metrics.duplicates.bind({ kind: 'data' });
    this.#now = options.now ?? Date.now;
    this.#refusals = new RefusalLog(options.log);
  }

  /** Data messages left unacknowledged because the pending buffer had no room. */
  get leftForRedelivery(): number {
    return this.#leftForRedelivery;
  }

  /** Writes the refusal summaries now (when stopping). */
  flush(): void {
    this.#refusals.flush();
  }

  /**
   * Acts on `outcome` for `message`: metrics, log, event, acknowledgement. Done when it returns,
   * or, for accepted data whose payload handlers are async, once the promise it returns resolves
   * (acknowledged).
   */
  settle(message: SettledMessage, subject: Subject, outcome: Outcome): Promise<void> | void {
    try {
      return this.#settle(message, subject, outcome);
    } catch (e) {
      return Promise.reject(e); // as an async function would: callers see a rejection, not a throw
    }
  }

  #settle(message: SettledMessage, subject: Subject, outcome: Outcome): Promise<void> | void {
    switch (outcome.type) {
      case 'accept':
        if (outcome.stored.kind === 'data') return this.#acceptData(message, subject, outcome.stored.payload);
        this.#acceptSession(message, subject, outcome.stored.cloudKidHex);
        return;
      case 'duplicate':
        this.#duplicate(message, subject);
        return;
      case 'replay':
        this.#reject(message, subject, 'replay', outcome.detail, {}, outcome.redelivered ? 'info' : 'warn');
        return;
      case 'reject':
        if (outcome.reason === 'internal-error' && outcome.cause !== undefined) {
          const e = outcome.cause;
          this.#o.log.error(
            {
              event: 'internal-error',
              kind: subject.kind,
              deviceId: subject.deviceId,
              error: e instanceof Error ? e.stack : outcome.detail,
            },
            'unexpected error while handling a message',
          );
        }
        this.#reject(message, subject, outcome.reason, outcome.detail, outcome.extra ?? {}, 'warn');
        return;
      case 'hold':
        this.#hold(subject, outcome.why, outcome.detail);
        return;
    }
  }

  #acceptData(message: SettledMessage, subject: Subject, payload: DeliveredPayload): Promise<void> | void {
    this.#acceptedData.inc();
    this.#o.onAccepted?.();
    const delivered = this.#o.deliver(payload);
    if (delivered !== undefined) return delivered.then(() => this.#acknowledgeData(message, subject, payload));
    this.#acknowledgeData(message, subject, payload);
  }

  /** After its handlers: the ack of accepted data, its latency, its debug line. */
  #acknowledgeData(message: SettledMessage, subject: Subject, payload: DeliveredPayload): void {
    message.ack();
    this.#o.metrics.latency.observe((Date.now() - message.receivedAt) / 1000);
    if (this.#o.log.isLevelEnabled('debug'))
      this.#o.log.debug(
        { event: 'accepted', deviceId: subject.deviceId, kid: payload.kidHex, seq: payload.seq },
        'payload stored',
      );
  }

  #acceptSession(message: SettledMessage, subject: Subject, cloudKidHex: string): void {
    const deviceId = subject.deviceId ?? '';
    const kidHex = subject.kid === undefined ? '' : toHex(subject.kid);
    this.#o.metrics.accepted.inc({ kind: 'session' });
    this.#o.log.info({ event: 'session', deviceId, kid: kidHex }, 'session stored');
    this.#observe({ type: 'session', deviceId, kidHex, at: this.#now(), cloudKid: cloudKidHex });
    message.ack();
  }

  #duplicate(message: SettledMessage, subject: Subject): void {
    if (subject.kind === 'data') this.#duplicateData.inc();
    else this.#o.metrics.duplicates.inc({ kind: subject.kind });
    const kid = subject.kid === undefined ? undefined : toHex(subject.kid);
    if (subject.kind === 'session') {
      // A re-sent key message: worth a line, not an event (the dashboard counts data duplicates).
      this.#o.log.info(
        { event: 'duplicate', kind: 'session', deviceId: subject.deviceId, kid },
        'key message already accepted',
      );
    } else {
      this.#observe({ type: 'duplicate', kind: subject.kind, ...this.#who(subject), at: this.#now() });
      if (this.#o.log.isLevelEnabled('debug'))
        this.#o.log.debug(
          { event: 'duplicate', kind: subject.kind, deviceId: subject.deviceId, kid, seq: subject.seq },
          'already accepted: acknowledged, not delivered again',
        );
    }
    message.ack();
  }

  #reject(
    message: SettledMessage,
    subject: Subject,
    reason: RejectReason,
    detail: string,
    extra: Record<string, unknown>,
    level: 'warn' | 'info',
  ): void {
    this.#o.metrics.rejected.inc({ kind: subject.kind, reason });
    this.#observe({ type: 'rejected', kind: subject.kind, reason, ...this.#who(subject), detail, at: this.#now() });
    this.#refusals.refused(
      level,
      {
        kind: subject.kind,
        reason,
        deviceId: subject.deviceId,
        kid: subject.kid === undefined ? undefined : toHex(subject.kid),
        seq: subject.seq,
        detail,
        ...extra,
      },
      'message refused',
    );
    message.ack();
  }

  #hold(subject: Subject, why: HoldReason, detail: string): void {
    const log = this.#o.log;
    const fields = {
      deviceId: subject.deviceId,
      kid: subject.kid === undefined ? undefined : toHex(subject.kid),
      seq: subject.seq,
    };
    switch (why) {
      case 'pending':
        if (log.isLevelEnabled('debug'))
          log.debug({ event: 'pending', ...fields }, 'data before its key message: held');
        return;
      case 'no-room':
        this.#leftForRedelivery++;
        if (log.isLevelEnabled('debug'))
          log.debug({ event: 'pending-full', ...fields, detail }, 'data left unacknowledged for redelivery');
        return;
      case 'revocation-unreadable':
        log.error(
          { event: 'revocation-check-failed', deviceId: subject.deviceId, error: detail },
          'the revocation list cannot be read: data left unacknowledged',
        );
        return;
    }
  }

  #who(subject: Subject): { deviceId?: string; kidHex?: string; seq?: number } {
    return {
      ...(subject.deviceId === undefined ? {} : { deviceId: subject.deviceId }),
      ...(subject.kid === undefined ? {} : { kidHex: toHex(subject.kid) }),
      ...(subject.seq === undefined ? {} : { seq: subject.seq }),
    };
  }

  #observe(event: ServiceEvent): void {
    if (this.#o.observe === undefined) return;
    try {
      this.#o.observe(event);
    } catch (e) {
      this.#o.log.error({ event: 'observer-failed', error: String(e) }, 'an event observer threw');
    }
  }
}
