/**
 * The receiver of docs/PROTOCOL.md §6: what happens to each message the broker hands the service.
 *
 *   {prefix}/{id}/session  openKeyMessage (size, CBOR, headers, certificate chain + validity + key
 *                          usage + revocation, CN = topic id, ES256, cloud key by recipient kid,
 *                          ECDH + HKDF + unwrap, session COSE_Key) → seal the key at rest →
 *                          store.putSession with the certificate serial (§6.2: stored / duplicate /
 *                          kid-reused / kid-rollback / kid-too-far) → ack (PUBREC) → run the
 *                          pending data of that session. A refused kid of an authenticated key
 *                          message gets a re-key request (the device learns it was refused)
 *   {prefix}/{id}/data     parseDataMessage → session (memory, else store) → none: pending buffer
 *                          (kid above the floor) or unknown-kid + re-key request → closed or
 *                          revoked: session-closed → window pre-check (duplicate / replay without
 *                          decrypting) → openData → commit queue (store.commitBatch: window +
 *                          grace + insert, atomically) → accepted: handlers → ack (PUBACK)
 *
 * Every refusal is counted by reason, logged with device id, kid and sequence number, and
 * acknowledged (a refused message is dropped: redelivering it would change nothing). What is not
 * acknowledged: messages whose store operation has not completed (retried while the store is down),
 * pending data (acknowledged once handled or expired), data that finds no room in the pending
 * buffer (§6.3: it could be genuine), and whatever arrives while stopping — the broker redelivers
 * those. Key messages of one device are handled one at a time, in arrival order.
 */
import { equal, toHex } from '../../src/bytes.js';
import { CborError } from '../../src/cbor/index.js';
import { CoseError } from '../../src/cose/errors.js';
import { decodeSign1, sign1ToBeSigned } from '../../src/cose/sign1.js';
import { CryptoError, type CryptoProvider } from '../../src/crypto/provider.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { compareKids, decodeKid } from '../../src/profile/counter.js';
import { openData, type ParsedDataMessage, parseDataMessage } from '../../src/profile/data-message.js';
import type { OpenedKeyMessage } from '../../src/profile/key-message.js';
import { parseTopic } from '../../src/profile/topics.js';
import type { InboundMessage } from '../mqtt/consumer.js';
import { kidTooFar } from '../store/rules.js';
import type { Store } from '../store/store.js';
import type { Admission } from './admission.js';
import { AtRestError, type SessionSealer } from './at-rest.js';
import type { CommitQueue } from './commit-queue.js';
import type { ServiceEvent } from './events.js';
import { type Logger, RefusalLog } from './log.js';
import type { MessageKind, ServiceMetrics } from './metrics.js';
import type { DeliveredPayload } from './payload.js';
import { PendingBuffer, type PendingEntry } from './pending-buffer.js';
import type { RekeyRequester } from './rekey.js';
import type { ClosedSession, LiveSession, SessionTable } from './session-table.js';

/** Pending data for a known device within this many kids above its floor is plausible (evicted last). */
export const PLAUSIBLE_KIDS_AHEAD = 16n;

function nearFloor(kid: Uint8Array, floor: Uint8Array): boolean {
  return decodeKid(kid) <= decodeKid(floor) + PLAUSIBLE_KIDS_AHEAD;
}

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

export interface ReceiverOptions {
  crypto: CryptoProvider;
  store: Store;
  sessions: SessionTable;
  pending: PendingBuffer<PendingData>;
  commits: CommitQueue;
  rekey: RekeyRequester;
  sealer: SessionSealer;
  /** openKeyMessage with the service's cloud keys and certificate verifier. */
  openKeyMessage: (bytes: Uint8Array, topicDeviceId: string) => OpenedKeyMessage;
  /** Runs the registered handlers for an accepted payload (before its ack). */
  deliver: (payload: DeliveredPayload) => Promise<void>;
  metrics: ServiceMetrics;
  log: Logger;
  prefix: string;
  maxMessageBytes: number;
  /** Rates and quotas checked before any public-key work (default: none). */
  admission?: Admission;
  /** Store retry backoff bounds, ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** After each commit that accepted payloads (the --out file follows the store). */
  onAccepted?: () => void;
  /** Sessions stored, refusals, duplicates (never throws into the receiver). */
  observe?: (event: ServiceEvent) => void;
  /**
   * The revocation list (cached; re-read when it changes): data of a session whose certificate is
   * revoked is refused as `session-closed`, and the device's sessions under it are closed.
   */
  isRevoked?: (serialHex: string) => boolean;
  now?: () => number;
}

/** A data message waiting in the pending buffer. */
export interface PendingData {
  message: InboundMessage;
  parsed: ParsedDataMessage;
}

/** Thrown through a flow when the service stops: the message stays unacknowledged. */
class Stopping extends Error {}

interface Context {
  kind: MessageKind;
  deviceId?: string;
  kid?: Uint8Array;
  seq?: number;
}

export function reasonOf(e: unknown): RejectReason {
  if (e instanceof CoseError) return e.reason;
  if (e instanceof CryptoError)
    return e.reason === 'bad-input' ? 'bad-structure' : e.reason === 'bad-key' ? 'bad-key' : 'decrypt-failed';
  if (e instanceof CborError) return 'bad-cbor';
  return 'internal-error';
}

export class Receiver {
  readonly #o: ReceiverOptions;
  readonly #now: () => number;
  readonly #keyChains = new Map<string, Promise<void>>();
  readonly #refusals: RefusalLog;
  /** Data that found the pending buffer full (half its size more, no per-device quota). */
  readonly #overflow: PendingBuffer<PendingData>;
  #inFlight = 0;
  #unreadable = 0;
  #leftForRedelivery = 0;
  #idleWaiters: (() => void)[] = [];
  #stopping = false;
  #sweeping = false;

  constructor(options: ReceiverOptions) {
    this.#o = options;
    const room = Math.floor(options.pending.limits.total / 2);
    this.#overflow = new PendingBuffer({
      perKid: room,
      perDevice: room,
      total: room,
      ttlMs: options.pending.limits.ttlMs,
    });
    this.#now = options.now ?? Date.now;
    this.#refusals = new RefusalLog(options.log);
  }

  /** Messages left unacknowledged because their stored session did not open (wrong storage key). */
  get unreadable(): number {
    return this.#unreadable;
  }

  /** Data messages left unacknowledged because the pending buffer had no room (redelivered later). */
  get leftForRedelivery(): number {
    return this.#leftForRedelivery;
  }

  /** Messages being handled now (not counting the pending buffer). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Takes one message from the broker. Never throws. */
  handle(message: InboundMessage): void {
    if (this.#stopping) return;
    const where = parseTopic(message.topic, this.#o.prefix);
    const kind: MessageKind = where?.kind === 'session' || where?.kind === 'data' ? where.kind : 'other';
    this.#o.metrics.received.inc({ kind });
    if (where === undefined || kind === 'other') {
      this.#reject(message, { kind: 'other' }, 'bad-topic', `not a ${this.#o.prefix}/{deviceId}/session|data topic`, {
        topic: message.topic.slice(0, 200),
      });
      return;
    }
    const flow =
      kind === 'session' ? this.#keyMessage(where.deviceId, message) : this.#dataMessage(where.deviceId, message);
    this.#track(flow, message, { kind, deviceId: where.deviceId });
  }

  /** Resolves when no message is being handled (pending ones wait in the buffer). */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops taking messages; flows waiting for the store give up (their messages stay unacked). */
  stop(): void {
    this.#stopping = true;
    this.#o.pending.clear();
    this.#overflow.clear();
    this.#refusals.flush();
  }

  /**
   * Looks for the sessions of pending data in the store (another instance may have stored them),
   * and drops what waited too long (as `unknown-kid`; no re-key request: its kid never
   * authenticated). Call it every few hundred milliseconds.
   */
  async sweep(): Promise<void> {
    if (this.#sweeping || this.#stopping) return;
    this.#sweeping = true;
    try {
      const now = this.#now();
      const expired = [...this.#o.pending.expire(now), ...this.#overflow.expire(now)];
      for (const e of expired) {
        this.#reject(
          e.value.message,
          { kind: 'data', deviceId: e.deviceId, kid: e.kid, seq: e.seq },
          'unknown-kid',
          `no key message for this kid within ${this.#o.pending.limits.ttlMs} ms`,
        );
      }
      for (const group of [...this.#o.pending.groups(), ...this.#overflow.groups()]) {
        if (now - group.checkedAt < 200) continue;
        group.checkedAt = now;
        let live: LiveSession | ClosedSession | undefined;
        try {
          live = await this.#o.sessions.load(group.deviceId, group.kid);
        } catch (e) {
          if (!(e instanceof AtRestError)) this.#storeError(e, 'getSession');
          continue;
        }
        if (live !== undefined) this.#drainPending(group.deviceId, group.kid);
      }
    } finally {
      this.#sweeping = false;
    }
  }

  // -------------------------------------------------------------------------------- key messages

  #keyMessage(deviceId: string, message: InboundMessage): Promise<void> {
    const refused = this.#o.admission?.admitKeyMessage(deviceId);
    if (refused !== undefined) {
      this.#reject(message, { kind: 'session', deviceId }, refused.reason, refused.detail);
      return Promise.resolve();
    }
    const previous = this.#keyChains.get(deviceId) ?? Promise.resolve();
    const run = previous.then(() => this.#openAndStore(deviceId, message));
    const tail = run.catch(() => {});
    this.#keyChains.set(deviceId, tail);
    void tail.then(() => {
      if (this.#keyChains.get(deviceId) === tail) this.#keyChains.delete(deviceId);
    });
    return run;
  }

  async #openAndStore(deviceId: string, message: InboundMessage): Promise<void> {
    const ctx: Context = { kind: 'session', deviceId };
    const quota = this.#o.admission?.admitSession(deviceId);
    if (quota !== undefined) {
      this.#reject(message, ctx, quota.reason, quota.detail);
      return;
    }
    let opened: OpenedKeyMessage;
    try {
      opened = this.#o.openKeyMessage(message.payload, deviceId);
    } catch (e) {
      this.#rejectError(message, ctx, e);
      return;
    }
    const { session } = opened;
    ctx.kid = session.kid;
    // §6.2: compare the signed content (protected bytes + payload), not the whole message.
    const sign1 = decodeSign1(message.payload, { requireTag: true, maxBytes: this.#o.maxMessageBytes });
    const digest = this.#o.crypto.sha256(sign1ToBeSigned(sign1.protectedBytes, new Uint8Array(0), sign1.payload!));
    const sealed = this.#o.sealer.seal(deviceId, session);
    const serial = parseCertificate(opened.deviceCertificate).serialHex;
    const result = await this.#withStore('putSession', () =>
      this.#o.store.putSession({
        deviceId,
        kid: session.kid,
        wrappedKey: sealed,
        keyMessageDigest: digest,
        createdAt: this.#now(),
        certificateSerial: serial,
      }),
    );
    const fields = { deviceId, kid: toHex(session.kid) };
    switch (result) {
      case 'stored':
        this.#o.sessions.remember(deviceId, session, sealed, serial);
        this.#o.admission?.sessionStored(deviceId);
        this.#o.metrics.accepted.inc({ kind: 'session' });
        this.#o.log.info({ event: 'session', ...fields }, 'session stored');
        this.#observe({
          type: 'session',
          deviceId,
          kidHex: fields.kid,
          at: this.#now(),
          cloudKid: toHex(opened.cloudKid),
        });
        message.ack();
        this.#drainPending(deviceId, session.kid);
        return;
      case 'duplicate':
        session.key.fill(0);
        this.#o.metrics.duplicates.inc({ kind: 'session' });
        this.#o.log.info({ event: 'duplicate', kind: 'session', ...fields }, 'key message already accepted');
        message.ack();
        this.#drainPending(deviceId, session.kid); // another instance may have stored it
        return;
      case 'kid-too-far':
        session.key.fill(0);
        this.#reject(
          message,
          ctx,
          result,
          'the kid is above 2^53 − 1 or more than 65 536 above the highest kid accepted for this device',
        );
        return;
      default:
        session.key.fill(0);
        this.#reject(
          message,
          ctx,
          result,
          result === 'kid-reused'
            ? 'a different key message was accepted under this kid'
            : 'the kid is not above the highest kid accepted for this device, or this key message was accepted before (cose-flow cloud reset-kid resets the floor)',
        );
        // The key message authenticated: tell the device its kid was refused (a re-key request
        // for that kid; the requester signs only for kids at or below the floor).
        void this.#o.rekey.request(deviceId, session.kid);
    }
  }

  // ------------------------------------------------------------------------------- data messages

  async #dataMessage(deviceId: string, message: InboundMessage): Promise<void> {
    const refused = this.#o.admission?.admitData(deviceId);
    if (refused !== undefined) {
      this.#reject(message, { kind: 'data', deviceId }, refused.reason, refused.detail);
      return;
    }
    let parsed: ParsedDataMessage;
    try {
      parsed = parseDataMessage(message.payload, this.#o.maxMessageBytes);
    } catch (e) {
      this.#rejectError(message, { kind: 'data', deviceId }, e);
      return;
    }
    await this.#sessionData(deviceId, message, parsed, false);
  }

  async #sessionData(deviceId: string, message: InboundMessage, parsed: ParsedDataMessage, retried: boolean) {
    const { kid, seq } = parsed;
    const ctx: Context = { kind: 'data', deviceId, kid, seq };
    const keyChain = this.#keyChains.get(deviceId);
    if (keyChain !== undefined) await keyChain; // a key message of this device is being stored
    let found: LiveSession | ClosedSession | undefined = this.#o.sessions.cached(deviceId, kid);
    let fromCache = found !== undefined;
    if (found === undefined) {
      // An AtRestError (the session does not open) goes up to #track: left unacknowledged.
      found = await this.#withStore('getSession', () => this.#o.sessions.load(deviceId, kid));
    }
    if (found === undefined) {
      found = await this.#noSession(deviceId, message, parsed, ctx);
      if (found === undefined) return;
      fromCache = false;
    }
    if (found.closed) {
      this.#reject(
        message,
        ctx,
        'session-closed',
        'the session has ended (superseded beyond its grace, revoked or reset)',
      );
      return;
    }
    let live: LiveSession | undefined = found;
    if (live.serial !== null && this.#o.isRevoked !== undefined) {
      let revoked: boolean;
      try {
        revoked = this.#o.isRevoked(live.serial);
      } catch (e) {
        this.#o.log.error(
          { event: 'revocation-check-failed', deviceId, error: (e as Error).message },
          'the revocation list cannot be read: data left unacknowledged',
        );
        return;
      }
      if (revoked) {
        const serial = live.serial;
        await this.#withStore('closeSessions', () =>
          this.#o.store.closeSessions(deviceId, { serial, at: this.#now() }),
        );
        this.#o.sessions.forgetDevice(deviceId);
        this.#reject(message, ctx, 'session-closed', `the certificate (serial ${serial}) of this session is revoked`);
        return;
      }
    }
    const pre = live.window.check(seq);
    if (pre === 'too-old') {
      // A broker redelivery (DUP) after a restart of the service is, most likely, a message stored
      // before the restart: still `replay` (the window cannot tell), but not worth a warning.
      this.#reject(
        message,
        ctx,
        'replay',
        message.dup
          ? `redelivered by the broker and older than the replay window (W = ${live.window.size}): most likely stored before`
          : `sequence number is older than the replay window (W = ${live.window.size})`,
        {},
        message.dup ? 'info' : 'warn',
      );
      return;
    }
    if (pre === 'duplicate') {
      this.#duplicate(message, ctx);
      return;
    }
    let payload: Uint8Array;
    try {
      payload = openData(this.#o.crypto, parsed, live.key);
    } catch (e) {
      if (fromCache && reasonOf(e) === 'decrypt-failed') {
        // The cached session may be stale (the operator reset the kid floor and the device
        // started over): look in the store once.
        const stale = live;
        try {
          const again = await this.#withStore('getSession', () => this.#o.sessions.load(deviceId, kid));
          live = again?.closed === false ? again : undefined;
        } catch (e) {
          if (!(e instanceof Stopping)) throw e;
          live = undefined;
        }
        fromCache = false;
        if (live !== undefined && !equal(live.sealed, stale.sealed)) {
          await this.#sessionData(deviceId, message, parsed, retried);
          return;
        }
      }
      this.#rejectError(message, ctx, e);
      return;
    }
    const result = await this.#o.commits
      .add({ deviceId, kid, seq, receivedAt: message.receivedAt, payload })
      .catch((e: Error) => {
        throw new Stopping(e.message);
      });
    switch (result) {
      case 'accepted': {
        if (live.window.check(seq) === 'new') live.window.accept(seq);
        this.#o.admission?.payloadStored(deviceId, payload.length);
        this.#o.metrics.accepted.inc({ kind: 'data' });
        this.#o.onAccepted?.();
        await this.#o.deliver({
          deviceId,
          kid,
          kidHex: live.kidHex,
          seq,
          receivedAt: new Date(message.receivedAt),
          payload,
        });
        message.ack();
        this.#o.metrics.latency.observe((Date.now() - message.receivedAt) / 1000);
        if (this.#o.log.isLevelEnabled('debug'))
          this.#o.log.debug({ event: 'accepted', deviceId, kid: live.kidHex, seq }, 'payload stored');
        return;
      }
      case 'duplicate':
        this.#duplicate(message, ctx);
        return;
      case 'replay':
        this.#reject(
          message,
          ctx,
          'replay',
          'sequence number is older than the replay window',
          {},
          message.dup ? 'info' : 'warn',
        );
        return;
      case 'closed':
        this.#o.sessions.forget(deviceId, kid);
        this.#reject(
          message,
          ctx,
          'session-closed',
          'the session has ended (a newer kid was stored and its grace is over)',
        );
        return;
      case 'unknown-session':
        // The store holds no such session in the device's current epoch (its kid floor was reset).
        this.#o.sessions.forget(deviceId, kid);
        if (!retried) {
          await this.#sessionData(deviceId, message, parsed, true);
          return;
        }
        this.#reject(message, ctx, 'unknown-kid', 'the session is gone from the store');
        return;
    }
  }

  /**
   * No session for the kid: hold the message when the kid is above the device's floor (its key
   * message may still come), else refuse it as unknown-kid and ask the device to re-key. A kid no
   * key message could ever open (above 2^53 − 1, or far above the floor) is refused at once. Data
   * that finds no room is looked for in the store once more, then held in the overflow (half the
   * buffer's size, no per-device quota); if that is full too, it is left unacknowledged (the
   * broker delivers it again) when it could be real (a known device, a kid near its floor), and
   * refused otherwise. Plausible data evicts implausible data (refused). Returns the session if
   * it turned up meanwhile (stored between the lookups).
   */
  async #noSession(
    deviceId: string,
    message: InboundMessage,
    parsed: ParsedDataMessage,
    ctx: Context,
  ): Promise<LiveSession | ClosedSession | undefined> {
    const device = await this.#withStore('getDevice', () => this.#o.store.getDevice(deviceId));
    const floor = device?.kidFloor ?? null;
    if (floor === null || compareKids(parsed.kid, floor) > 0) {
      if (kidTooFar(parsed.kid, floor)) {
        this.#reject(message, ctx, 'unknown-kid', 'the kid is far above the kid floor: no key message can open it');
        return undefined;
      }
      const plausible = floor !== null && nearFloor(parsed.kid, floor);
      const entry = {
        deviceId,
        kid: parsed.kid,
        seq: parsed.seq,
        addedAt: this.#now(),
        value: { message, parsed },
        plausible,
      };
      const evict = (evicted: PendingEntry<PendingData>) =>
        this.#reject(
          evicted.value.message,
          { kind: 'data', deviceId: evicted.deviceId, kid: evicted.kid, seq: evicted.seq },
          'unknown-kid',
          'evicted from the full pending buffer to make room for data that could be real (this: an unknown device, or a kid far above the floor)',
        );
      let held = this.#o.pending.add(entry, evict);
      if (held !== 'held') {
        // Another instance may have stored the session meanwhile: look before refusing.
        const again = await this.#withStore('getSession', () => this.#o.sessions.load(deviceId, parsed.kid));
        if (again !== undefined) return again;
        // The overflow: no per-device quota (a new device of a shared subscription whose key
        // message another instance is storing), bounded overall.
        if (this.#overflow.add(entry, evict) === 'held') held = 'held';
      }
      if (held === 'held') {
        if (this.#o.log.isLevelEnabled('debug'))
          this.#o.log.debug(
            { event: 'pending', deviceId, kid: toHex(parsed.kid), seq: parsed.seq },
            'data before its key message: held',
          );
        return undefined;
      }
      if (!plausible) {
        // Cannot be real (an unknown device, or a kid far above the floor): dropped, so that a
        // flood of it cannot fill the broker's in-flight window with unacknowledged messages.
        this.#reject(
          message,
          ctx,
          'unknown-kid',
          `no session yet and the pending buffer is full (${held}): an unknown device or a kid far above the floor`,
        );
        return undefined;
      }
      this.#leaveForRedelivery(deviceId, parsed, `the pending buffer is full (${held})`);
      return undefined;
    }
    // The floor reached this kid: its session may have been stored since the first lookup.
    const live = await this.#withStore('getSession', () => this.#o.sessions.load(deviceId, parsed.kid));
    if (live !== undefined) return live;
    this.#reject(message, ctx, 'unknown-kid', 'no session for this kid, which is not above the kid floor');
    void this.#o.rekey.request(deviceId, parsed.kid);
    return undefined;
  }

  /** Data refused for lack of room: not acknowledged, so the broker delivers it again. */
  #leaveForRedelivery(deviceId: string, parsed: ParsedDataMessage, why: string): void {
    this.#leftForRedelivery++;
    if (this.#o.log.isLevelEnabled('debug'))
      this.#o.log.debug(
        { event: 'pending-full', deviceId, kid: toHex(parsed.kid), seq: parsed.seq, detail: why },
        'data left unacknowledged for redelivery',
      );
  }

  #drainPending(deviceId: string, kid: Uint8Array): void {
    const entries = [...this.#o.pending.take(deviceId, kid), ...this.#overflow.take(deviceId, kid)];
    for (const entry of entries.sort((a, b) => a.seq - b.seq)) {
      const { message, parsed } = entry.value;
      this.#track(this.#sessionData(deviceId, message, parsed, false), message, {
        kind: 'data',
        deviceId,
        kid,
        seq: parsed.seq,
      });
    }
  }

  // ------------------------------------------------------------------------------------ outcomes

  #observe(event: ServiceEvent): void {
    if (this.#o.observe === undefined) return;
    try {
      this.#o.observe(event);
    } catch (e) {
      this.#o.log.error({ event: 'observer-failed', error: String(e) }, 'an event observer threw');
    }
  }

  #duplicate(message: InboundMessage, ctx: Context): void {
    this.#o.metrics.duplicates.inc({ kind: ctx.kind });
    this.#observe({
      type: 'duplicate',
      kind: ctx.kind,
      ...(ctx.deviceId === undefined ? {} : { deviceId: ctx.deviceId }),
      ...(ctx.kid === undefined ? {} : { kidHex: toHex(ctx.kid) }),
      ...(ctx.seq === undefined ? {} : { seq: ctx.seq }),
      at: this.#now(),
    });
    if (this.#o.log.isLevelEnabled('debug'))
      this.#o.log.debug(
        { event: 'duplicate', kind: ctx.kind, deviceId: ctx.deviceId, kid: ctx.kid && toHex(ctx.kid), seq: ctx.seq },
        'already accepted: acknowledged, not delivered again',
      );
    message.ack();
  }

  #rejectError(message: InboundMessage, ctx: Context, e: unknown): void {
    const reason = reasonOf(e);
    const detail = e instanceof Error ? e.message : String(e);
    if (reason === 'internal-error')
      this.#o.log.error(
        {
          event: 'internal-error',
          kind: ctx.kind,
          deviceId: ctx.deviceId,
          error: e instanceof Error ? e.stack : detail,
        },
        'unexpected error while handling a message',
      );
    this.#reject(message, ctx, reason, detail);
  }

  #reject(
    message: InboundMessage,
    ctx: Context,
    reason: RejectReason,
    detail: string,
    extra: object = {},
    level: 'warn' | 'info' = 'warn',
  ): void {
    this.#o.metrics.rejected.inc({ kind: ctx.kind, reason });
    this.#observe({
      type: 'rejected',
      kind: ctx.kind,
      reason,
      ...(ctx.deviceId === undefined ? {} : { deviceId: ctx.deviceId }),
      ...(ctx.kid === undefined ? {} : { kidHex: toHex(ctx.kid) }),
      ...(ctx.seq === undefined ? {} : { seq: ctx.seq }),
      detail,
      at: this.#now(),
    });
    this.#refusals.refused(
      level,
      {
        kind: ctx.kind,
        reason,
        deviceId: ctx.deviceId,
        kid: ctx.kid === undefined ? undefined : toHex(ctx.kid),
        seq: ctx.seq,
        detail,
        ...extra,
      },
      'message refused',
    );
    message.ack();
  }

  // ----------------------------------------------------------------------------------- plumbing

  #storeError(e: unknown, what: string): void {
    this.#o.metrics.storeErrors.inc();
    this.#o.log.error({ event: 'store-error', operation: what, error: e instanceof Error ? e.message : String(e) });
  }

  /** Runs a store call, retrying with backoff while it fails (the store is down) unless stopping. */
  async #withStore<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.#stopping) throw new Stopping(`stopping during ${what}`);
      try {
        return await fn();
      } catch (e) {
        if (e instanceof AtRestError) throw e;
        this.#storeError(e, what);
        const min = this.#o.retryMinMs ?? 100;
        await new Promise((r) =>
          setTimeout(r, Math.min(this.#o.retryMaxMs ?? 5000, min * 2 ** Math.min(attempt - 1, 10))),
        );
      }
    }
  }

  #track(flow: Promise<void>, message: InboundMessage, ctx: Context): void {
    this.#inFlight++;
    flow
      .catch((e: unknown) => {
        if (e instanceof Stopping) return; // unacknowledged: the broker redelivers it
        if (e instanceof AtRestError) {
          // A configuration problem, not bad input: dropping the message would lose data that
          // another instance (with the right storage key) or a fixed restart can still store.
          this.#unreadable++;
          this.#o.log.error(
            {
              event: 'session-unreadable',
              kind: ctx.kind,
              deviceId: ctx.deviceId,
              kid: ctx.kid && toHex(ctx.kid),
              error: e.message,
            },
            'a stored session does not open: message left unacknowledged (does every instance have the same storage key?)',
          );
          return;
        }
        // A bug, not bad input: log it loudly, and drop the message like any refused one.
        this.#rejectError(message, ctx, e instanceof CoseError ? new Error(e.message) : e);
      })
      .finally(() => {
        this.#inFlight--;
        if (this.#inFlight === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      });
  }
}
