/**
 * The receiver of docs/PROTOCOL.md §6: what happens to each message the broker hands the service.
 *
 *   {prefix}/{id}/session  admission → the key path (key-path.ts: open, seal, store.putSession) →
 *                          settle → run the pending data of that session
 *   {prefix}/{id}/data     admission → parseDataMessage → the data path (data-path.ts: resolve
 *                          session → window pre-check → decrypt → commit) → settle
 *
 * Each path returns an `Outcome` (outcome.ts: accept, duplicate, replay, hold, reject) and
 * `OutcomeSettler.settle` acts on it in one place: metrics, log, service event, acknowledgement.
 * Every refusal is counted by reason, logged with device id, kid and sequence number, and
 * acknowledged (a refused message is dropped: redelivering it would change nothing). What is not
 * acknowledged: messages whose store operation has not completed (retried while the store is down,
 * store-retry.ts), pending data (acknowledged once handled or expired), data that finds no room in
 * the pending buffer (§6.3: it could be genuine), and whatever arrives while stopping — the broker
 * redelivers those. Key messages of one device are handled one at a time, in arrival order.
 */
import { toHex } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { type ParsedDataMessage, parseDataMessage } from '../../src/profile/data-message.js';
import type { OpenedKeyMessage } from '../../src/profile/key-message.js';
import { parseTopic, type TopicKind } from '../../src/profile/topics.js';
import type { InboundMessage } from '../mqtt/consumer.js';
import type { Store } from '../store/store.js';
import type { MessageKind, ServiceEvent } from '../telemetry/events.js';
import type { DeliveredPayload } from '../telemetry/payload.js';
import type { Admission } from './admission.js';
import { AtRestError, type SessionSealer } from './at-rest.js';
import type { CommitQueue } from './commit-queue.js';
import { DataPath, type DataPathDone, dataSubject, type PendingData } from './data-path.js';
import { KeyPath } from './key-path.js';
import type { Logger } from './log.js';
import type { ServiceMetrics } from './metrics.js';
import { type Outcome, OutcomeSettler, reject, rejectionOf, type Subject } from './outcome.js';
import { PendingBuffer } from './pending-buffer.js';
import type { RekeyRequester } from './rekey.js';
import type { SessionTable } from './session-table.js';
import { Stopping, type StoreCall, storeRetry, storeRetryPolicy } from './store-retry.js';

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
  /** Runs the registered handlers for an accepted payload (before its ack); a promise when one of them is async. */
  deliver: (payload: DeliveredPayload) => Promise<void> | void;
  metrics: ServiceMetrics;
  log: Logger;
  prefix: string;
  maxMessageBytes: number;
  /** Rates and quotas checked before any public-key work (default: none). */
  admission?: Admission;
  /** Store retry backoff bounds, ms (exponential, no jitter; default 100 … 5000). */
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

/** Most valid topics remembered by the receiver (two per device: session and data). */
const TOPIC_CACHE = 65_536;

export class Receiver implements DataPathDone {
  readonly #o: ReceiverOptions;
  readonly #now: () => number;
  readonly #keyChains = new Map<string, Promise<void>>();
  readonly #settler: OutcomeSettler;
  readonly #withStore: StoreCall;
  readonly #keys: KeyPath;
  readonly #data: DataPath;
  /** Data that found the pending buffer full (half its size more, no per-device quota). */
  readonly #overflow: PendingBuffer<PendingData>;
  #inFlight = 0;
  #unreadable = 0;
  #idleWaiters: (() => void)[] = [];
  /** Valid topics already parsed (see #parseTopic). */
  readonly #topics = new Map<string, { deviceId: string; kind: TopicKind }>();
  /** `received_total{kind}` for each kind, bound once (counted per message). */
  readonly #received: Record<MessageKind, { inc(): void }>;
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
    const received = options.metrics.received;
    this.#received = {
      session: received.bind({ kind: 'session' }),
      data: received.bind({ kind: 'data' }),
      other: received.bind({ kind: 'other' }),
    };
    this.#settler = new OutcomeSettler({
      metrics: options.metrics,
      log: options.log,
      deliver: options.deliver,
      now: this.#now,
      ...(options.onAccepted === undefined ? {} : { onAccepted: options.onAccepted }),
      ...(options.observe === undefined ? {} : { observe: options.observe }),
    });
    this.#withStore = storeRetry({
      policy: storeRetryPolicy(options.retryMinMs, options.retryMaxMs),
      stopping: () => this.#stopping,
      onError: (e, what) => this.#storeError(e, what),
    });
    const admission = options.admission === undefined ? {} : { admission: options.admission };
    this.#keys = new KeyPath({
      store: options.store,
      sessions: options.sessions,
      sealer: options.sealer,
      rekey: options.rekey,
      openKeyMessage: options.openKeyMessage,
      withStore: this.#withStore,
      now: this.#now,
      ...admission,
    });
    this.#data = new DataPath({
      crypto: options.crypto,
      store: options.store,
      sessions: options.sessions,
      commits: options.commits,
      rekey: options.rekey,
      pending: options.pending,
      overflow: this.#overflow,
      withStore: this.#withStore,
      evicted: (e, outcome) => this.#settle(e.value.message, dataSubject(e.deviceId, e.value.parsed), outcome),
      keyMessageInProgress: (deviceId) => this.#keyChains.get(deviceId),
      now: this.#now,
      ...admission,
      ...(options.isRevoked === undefined ? {} : { isRevoked: options.isRevoked }),
    });
  }

  /** Messages left unacknowledged because their stored session did not open (wrong storage key). */
  get unreadable(): number {
    return this.#unreadable;
  }

  /** Data messages left unacknowledged because the pending buffer had no room (redelivered later). */
  get leftForRedelivery(): number {
    return this.#settler.leftForRedelivery;
  }

  /** Messages being handled now (not counting the pending buffer). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Takes one message from the broker. Never throws. */
  handle(message: InboundMessage): void {
    if (this.#stopping) return;
    const where = this.#parseTopic(message.topic);
    const kind: MessageKind = where?.kind === 'session' || where?.kind === 'data' ? where.kind : 'other';
    this.#received[kind].inc();
    if (where === undefined || kind === 'other') {
      const detail = `not a ${this.#o.prefix}/{deviceId}/session|data topic`;
      this.#settle(message, { kind: 'other' }, reject('bad-topic', detail, { topic: message.topic.slice(0, 200) }));
      return;
    }
    if (kind === 'session') {
      this.#track(this.#keyMessage(where.deviceId, message), message, { kind, deviceId: where.deviceId });
      return;
    }
    this.#inFlight++;
    this.#dataMessage(where.deviceId, message);
  }

  /**
   * `parseTopic` under the prefix, remembered for valid topics (a device's few topics come again
   * with every message: no parse and no new device id string each time). Invalid topics are
   * parsed every time and never kept; the memory is bounded (cleared when full).
   */
  #parseTopic(topic: string): { deviceId: string; kind: TopicKind } | undefined {
    let where = this.#topics.get(topic);
    if (where === undefined) {
      where = parseTopic(topic, this.#o.prefix);
      if (where === undefined) return undefined;
      if (this.#topics.size >= TOPIC_CACHE) this.#topics.clear();
      this.#topics.set(topic, where);
    }
    return where;
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
    this.#settler.flush();
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
      const detail = `no key message for this kid within ${this.#o.pending.limits.ttlMs} ms`;
      for (const e of expired)
        this.#settle(e.value.message, dataSubject(e.deviceId, e.value.parsed), reject('unknown-kid', detail));
      for (const group of [...this.#o.pending.groups(), ...this.#overflow.groups()]) {
        if (now - group.checkedAt < 200) continue;
        group.checkedAt = now;
        try {
          if ((await this.#o.sessions.load(group.deviceId, group.kid)) === undefined) continue;
        } catch (e) {
          if (!(e instanceof AtRestError)) this.#storeError(e, 'getSession');
          continue;
        }
        this.#drainPending(group.deviceId, group.kid);
      }
    } finally {
      this.#sweeping = false;
    }
  }

  // ---------------------------------------------------------------------------------- the paths

  #keyMessage(deviceId: string, message: InboundMessage): Promise<void> {
    const refused = this.#o.admission?.admitKeyMessage(deviceId);
    if (refused !== undefined) {
      this.#settle(message, { kind: 'session', deviceId }, reject(refused.reason, refused.detail));
      return Promise.resolve();
    }
    const previous = this.#keyChains.get(deviceId) ?? Promise.resolve();
    const run = previous.then(async () => {
      const { outcome, kid } = await this.#keys.run(deviceId, message);
      await this.#settle(message, { kind: 'session', deviceId, ...(kid === undefined ? {} : { kid }) }, outcome);
      // Stored (or stored before, maybe by another instance): the data waiting for it can go.
      if (kid !== undefined && (outcome.type === 'accept' || outcome.type === 'duplicate'))
        this.#drainPending(deviceId, kid);
    });
    const tail = run.catch(() => {});
    this.#keyChains.set(deviceId, tail);
    void tail.then(() => {
      if (this.#keyChains.get(deviceId) === tail) this.#keyChains.delete(deviceId);
    });
    return run;
  }

  /** Admission, parse, then the data path (`take`), which tells `outcome` or `error`: counted in `inFlight` until then. */
  #dataMessage(deviceId: string, message: InboundMessage): void {
    const refused = this.#o.admission?.admitData(deviceId);
    if (refused !== undefined) {
      this.#settleData(message, { kind: 'data', deviceId }, reject(refused.reason, refused.detail));
      return;
    }
    let parsed: ParsedDataMessage;
    try {
      parsed = parseDataMessage(message.payload, this.#o.maxMessageBytes);
    } catch (e) {
      this.#settleData(message, { kind: 'data', deviceId }, rejectionOf(e));
      return;
    }
    this.#data.take(deviceId, message, parsed, this);
  }

  /** A data message's outcome from the data path (`DataPathDone`): settled, then no longer in flight. */
  outcome(deviceId: string, message: InboundMessage, parsed: ParsedDataMessage, outcome: Outcome): void {
    this.#settleData(message, dataSubject(deviceId, parsed), outcome, deviceId);
  }

  /** The data path threw (`DataPathDone`): as `#track` does for a flow that rejects. */
  error(deviceId: string, message: InboundMessage, _parsed: ParsedDataMessage, error: unknown): void {
    this.#afterFailure(this.#failed(error, message, { kind: 'data', deviceId }));
  }

  /** Settles a data message in flight and counts it done (after its ack, when its handlers are async). */
  #settleData(message: InboundMessage, subject: Subject, outcome: Outcome, deviceId = subject.deviceId): void {
    let settled: Promise<void> | void;
    try {
      settled = this.#settle(message, subject, outcome);
    } catch (e) {
      this.#afterFailure(this.#failed(e, message, { kind: 'data', deviceId }));
      return;
    }
    if (settled === undefined) this.#done();
    else
      settled.then(
        () => this.#done(),
        (e: unknown) => this.#afterFailure(this.#failed(e, message, { kind: 'data', deviceId })),
      );
  }

  #afterFailure(settled: Promise<void> | void): void {
    if (settled === undefined) this.#done();
    else
      settled.then(
        () => this.#done(),
        () => this.#done(),
      );
  }

  #drainPending(deviceId: string, kid: Uint8Array): void {
    const entries = [...this.#o.pending.take(deviceId, kid), ...this.#overflow.take(deviceId, kid)];
    for (const entry of entries.sort((a, b) => a.seq - b.seq)) {
      const { message, parsed } = entry.value;
      this.#track(this.#runData(deviceId, message, parsed), message, dataSubject(deviceId, parsed));
    }
  }

  async #runData(deviceId: string, message: InboundMessage, parsed: ParsedDataMessage): Promise<void> {
    const outcome = await this.#data.run(deviceId, message, parsed);
    await this.#settle(message, dataSubject(deviceId, parsed), outcome);
  }

  // ----------------------------------------------------------------------------------- plumbing

  #settle(message: InboundMessage, subject: Subject, outcome: Outcome): Promise<void> | void {
    return this.#settler.settle(message, subject, outcome);
  }

  #storeError(e: unknown, what: string): void {
    this.#o.metrics.storeErrors.inc();
    this.#o.log.error({ event: 'store-error', operation: what, error: e instanceof Error ? e.message : String(e) });
  }

  #track(flow: Promise<void>, message: InboundMessage, subject: Subject): void {
    this.#inFlight++;
    flow.catch((e: unknown) => this.#failed(e, message, subject)).finally(() => this.#done());
  }

  /** A message's flow threw: left unacknowledged (stopping, a session that does not open) or refused as internal-error. */
  #failed(e: unknown, message: InboundMessage, subject: Subject): Promise<void> | void {
    if (e instanceof Stopping) return; // unacknowledged: the broker redelivers it
    if (e instanceof AtRestError) {
      // A configuration problem, not bad input: dropping the message would lose data that
      // another instance (with the right storage key) or a fixed restart can still store.
      this.#unreadable++;
      this.#o.log.error(
        {
          event: 'session-unreadable',
          kind: subject.kind,
          deviceId: subject.deviceId,
          kid: subject.kid && toHex(subject.kid),
          error: e.message,
        },
        'a stored session does not open: message left unacknowledged (does every instance have the same storage key?)',
      );
      return;
    }
    // A bug, not bad input: log it loudly, and drop the message like any refused one.
    return this.#settle(message, subject, rejectionOf(e instanceof CoseError ? new Error(e.message) : e));
  }

  #done(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
