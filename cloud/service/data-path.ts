/**
 * A data message's way through the receiver (docs/PROTOCOL.md §6.3), one step at a time, each
 * returning either what the next step needs or the message's `Outcome`:
 *
 *   resolve session  memory, else store → none: hold in the pending buffer (kid above the floor) or
 *                    unknown-kid + re-key request → closed or revoked: session-closed
 *   window pre-check duplicate / replay without decrypting
 *   decrypt          openData; a cached session that does not open is looked up once more (stale
 *                    after the operator reset the kid floor) and the steps run again
 *   commit           the commit queue (store.commitBatch: window + grace + insert, atomically) →
 *                    accept / duplicate / replay / session-closed; a session gone from the store
 *                    runs the steps once more, then unknown-kid
 *
 * `take` is how the receiver runs them: a message of a cached session (no key message of its
 * device in progress, the revocation check answered) goes through the steps up to the commit
 * synchronously, and its one object (`DataCommit`) is both the commit queue's item and its waiter:
 * no promise or async frame per message, which were most of the service thread's garbage while
 * draining a backlog (issue 13 §3). Anything else — a session to look up, a failed decryption of
 * a cached session, a session gone from the store at commit — continues on `run`, the same steps
 * as async code. Same checks, same order, same outcomes on either way.
 */
import { equal } from '../../src/bytes.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { compareKids, decodeKid } from '../../src/profile/counter.js';
import { openData, type ParsedDataMessage } from '../../src/profile/data-message.js';
import type { InboundMessage } from '../mqtt/consumer.js';
import { kidTooFar } from '../store/rules.js';
import type { CommitResult, DataItem, Store } from '../store/store.js';
import type { Admission } from './admission.js';
import type { CommitQueue, CommitWaiter } from './commit-queue.js';
import { type Outcome, reasonOf, reject, rejectionOf, type Subject } from './outcome.js';
import type { PendingBuffer, PendingEntry } from './pending-buffer.js';
import type { RekeyRequester } from './rekey.js';
import type { ClosedSession, LiveSession, SessionTable } from './session-table.js';
import { Stopping, type StoreCall } from './store-retry.js';

/** Pending data for a known device within this many kids above its floor is plausible (evicted last). */
export const PLAUSIBLE_KIDS_AHEAD = 16n;

/** A data message waiting in the pending buffer. */
export interface PendingData {
  message: InboundMessage;
  parsed: ParsedDataMessage;
}

export interface DataPathOptions {
  crypto: CryptoProvider;
  store: Store;
  sessions: SessionTable;
  commits: CommitQueue;
  rekey: RekeyRequester;
  pending: PendingBuffer<PendingData>;
  /** Data that found the pending buffer full (no per-device quota). */
  overflow: PendingBuffer<PendingData>;
  withStore: StoreCall;
  /** Settles pending data evicted to make room (refused as unknown-kid). */
  evicted: (entry: PendingEntry<PendingData>, outcome: Outcome) => void;
  /** The key message of the device being stored now, if any: data waits for it. */
  keyMessageInProgress: (deviceId: string) => Promise<void> | undefined;
  admission?: Admission;
  isRevoked?: (serialHex: string) => boolean;
  now: () => number;
}

interface Resolved {
  live: LiveSession;
  fromCache: boolean;
}

/** Run the steps again (a stale cached session, a session gone from the store). */
const AGAIN = Symbol('again');

/** Where `take` hands a message's end: exactly one call per message. */
export interface DataPathDone {
  /** The message's outcome, to settle. */
  outcome(deviceId: string, message: InboundMessage, parsed: ParsedDataMessage, outcome: Outcome): void;
  /** The steps threw: `Stopping` (leave it unacknowledged), `AtRestError`, or a bug. */
  error(deviceId: string, message: InboundMessage, parsed: ParsedDataMessage, error: unknown): void;
}

/** A decrypted message on its way through the commit queue: the queue's item and its waiter. */
class DataCommit implements DataItem, CommitWaiter {
  readonly kid: Uint8Array;
  readonly seq: number;
  readonly receivedAt: number;
  constructor(
    readonly path: DataPath,
    readonly deviceId: string,
    readonly message: InboundMessage,
    readonly parsed: ParsedDataMessage,
    readonly live: LiveSession,
    readonly payload: Uint8Array,
    readonly done: DataPathDone,
  ) {
    this.kid = parsed.kid;
    this.seq = parsed.seq;
    this.receivedAt = message.receivedAt;
  }

  committed(result: CommitResult): void {
    this.path.committed(this, result);
  }

  failed(error: Error): void {
    this.done.error(this.deviceId, this.message, this.parsed, new Stopping(error.message));
  }
}

export class DataPath {
  readonly #o: DataPathOptions;

  constructor(options: DataPathOptions) {
    this.#o = options;
  }

  /**
   * Takes a parsed data message through the steps and tells `done` its outcome (or error): at once
   * up to the commit when its session is cached, else on `run`. See the module comment.
   */
  take(deviceId: string, message: InboundMessage, parsed: ParsedDataMessage, done: DataPathDone): void {
    let live: LiveSession | undefined;
    let payload: Uint8Array | undefined;
    let early: Outcome | undefined;
    try {
      live = this.#cachedLive(deviceId, parsed);
      if (live !== undefined) {
        early = precheckWindow(live, parsed.seq, message.dup);
        if (early === undefined) {
          try {
            payload = openData(this.#o.crypto, parsed, live.key);
          } catch (e) {
            // 3. decrypt: a cached session that does not open may be stale (looked up again, async).
            if (reasonOf(e) === 'decrypt-failed') {
              this.#continue(
                this.#afterFailedDecrypt(deviceId, message, parsed, live, e),
                deviceId,
                message,
                parsed,
                done,
              );
              return;
            }
            early = rejectionOf(e);
          }
        }
      }
    } catch (e) {
      done.error(deviceId, message, parsed, e);
      return;
    }
    if (live === undefined) this.#continue(this.run(deviceId, message, parsed), deviceId, message, parsed, done);
    else if (early !== undefined) done.outcome(deviceId, message, parsed, early);
    else {
      const commit = new DataCommit(this, deviceId, message, parsed, live, payload!, done);
      this.#o.commits.enqueue(commit, commit);
    }
  }

  /** `take`'s commit result (from the commit queue; never throws). */
  committed(c: DataCommit, result: CommitResult): void {
    let outcome: Outcome | typeof AGAIN;
    try {
      outcome = this.#commitOutcome(c.deviceId, c.message, c.parsed, c.live, c.payload, result);
    } catch (e) {
      c.done.error(c.deviceId, c.message, c.parsed, e);
      return;
    }
    // A session gone from the store: the steps once more (as `run` does after its commit).
    if (outcome === AGAIN)
      this.#continue(this.run(c.deviceId, c.message, c.parsed, true), c.deviceId, c.message, c.parsed, c.done);
    else c.done.outcome(c.deviceId, c.message, c.parsed, outcome);
  }

  /**
   * Steps 1's fast answer: the cached session, when no key message of the device is being stored
   * (data waits for it), and its certificate is not revoked (the check answered without throwing);
   * otherwise undefined, and `run` takes the message from step 1 (the same checks again).
   */
  #cachedLive(deviceId: string, parsed: ParsedDataMessage): LiveSession | undefined {
    if (this.#o.keyMessageInProgress(deviceId) !== undefined) return undefined;
    const live = this.#o.sessions.cached(deviceId, parsed.kid);
    if (live === undefined || live.serial === null || this.#o.isRevoked === undefined) return live;
    try {
      return this.#o.isRevoked(live.serial) ? undefined : live;
    } catch {
      return undefined; // unreadable: `run` holds the message
    }
  }

  async #afterFailedDecrypt(
    deviceId: string,
    message: InboundMessage,
    parsed: ParsedDataMessage,
    live: LiveSession,
    e: unknown,
  ): Promise<Outcome> {
    if (await this.#reloaded(deviceId, parsed.kid, live)) return this.run(deviceId, message, parsed);
    return rejectionOf(e);
  }

  #continue(
    flow: Promise<Outcome>,
    deviceId: string,
    message: InboundMessage,
    parsed: ParsedDataMessage,
    done: DataPathDone,
  ): void {
    flow.then(
      (outcome) => done.outcome(deviceId, message, parsed, outcome),
      (e: unknown) => done.error(deviceId, message, parsed, e),
    );
  }

  /** Takes a parsed data message through the steps; throws only `Stopping`, `AtRestError` or a bug. */
  async run(
    deviceId: string,
    message: InboundMessage,
    parsed: ParsedDataMessage,
    storeRetried = false,
  ): Promise<Outcome> {
    for (;;) {
      const resolved = await this.#resolve(deviceId, message, parsed);
      if ('type' in resolved) return resolved;
      const early = precheckWindow(resolved.live, parsed.seq, message.dup);
      if (early !== undefined) return early;
      const payload = await this.#decrypt(deviceId, parsed, resolved);
      if (payload === AGAIN) continue;
      if (!(payload instanceof Uint8Array)) return payload;
      const outcome = await this.#commit(deviceId, message, parsed, resolved.live, payload);
      if (outcome !== AGAIN) return outcome;
      if (storeRetried) return reject('unknown-kid', 'the session is gone from the store');
      storeRetried = true;
    }
  }

  // ------------------------------------------------------------------------ 1. resolve session

  async #resolve(deviceId: string, message: InboundMessage, parsed: ParsedDataMessage): Promise<Resolved | Outcome> {
    const { sessions } = this.#o;
    const keyMessage = this.#o.keyMessageInProgress(deviceId);
    if (keyMessage !== undefined) await keyMessage;
    let found: LiveSession | ClosedSession | undefined = sessions.cached(deviceId, parsed.kid);
    const fromCache = found !== undefined;
    // An AtRestError (the session does not open) goes up: the message is left unacknowledged.
    found ??= await this.#o.withStore('getSession', () => sessions.load(deviceId, parsed.kid));
    if (found === undefined) {
      const late = await this.#noSession(deviceId, message, parsed);
      if ('type' in late) return late;
      found = late;
    }
    if (found.closed)
      return reject('session-closed', 'the session has ended (superseded beyond its grace, revoked or reset)');
    const revoked = await this.#revoked(deviceId, found);
    return revoked ?? { live: found, fromCache };
  }

  /** Refuses (and closes) a session whose certificate is revoked. */
  async #revoked(deviceId: string, live: LiveSession): Promise<Outcome | undefined> {
    const serial = live.serial;
    if (serial === null || this.#o.isRevoked === undefined) return undefined;
    try {
      if (!this.#o.isRevoked(serial)) return undefined;
    } catch (e) {
      return { type: 'hold', why: 'revocation-unreadable', detail: (e as Error).message };
    }
    await this.#o.withStore('closeSessions', () =>
      this.#o.store.closeSessions(deviceId, { serial, at: this.#o.now() }),
    );
    this.#o.sessions.forgetDevice(deviceId);
    return reject('session-closed', `the certificate (serial ${serial}) of this session is revoked`);
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
  ): Promise<LiveSession | ClosedSession | Outcome> {
    const { withStore, sessions } = this.#o;
    const device = await withStore('getDevice', () => this.#o.store.getDevice(deviceId));
    const floor = device?.kidFloor ?? null;
    if (floor !== null && compareKids(parsed.kid, floor) <= 0) {
      // The floor reached this kid: its session may have been stored since the first lookup.
      const live = await withStore('getSession', () => sessions.load(deviceId, parsed.kid));
      if (live !== undefined) return live;
      void this.#o.rekey.request(deviceId, parsed.kid);
      return reject('unknown-kid', 'no session for this kid, which is not above the kid floor');
    }
    if (kidTooFar(parsed.kid, floor))
      return reject('unknown-kid', 'the kid is far above the kid floor: no key message can open it');
    const plausible = floor !== null && decodeKid(parsed.kid) <= decodeKid(floor) + PLAUSIBLE_KIDS_AHEAD;
    const entry = {
      deviceId,
      kid: parsed.kid,
      seq: parsed.seq,
      addedAt: this.#o.now(),
      value: { message, parsed },
      plausible,
    };
    const evict = (evicted: PendingEntry<PendingData>) =>
      this.#o.evicted(
        evicted,
        reject(
          'unknown-kid',
          'evicted from the full pending buffer to make room for data that could be real (this: an unknown device, or a kid far above the floor)',
        ),
      );
    let held = this.#o.pending.add(entry, evict);
    if (held !== 'held') {
      // Another instance may have stored the session meanwhile: look before refusing.
      const again = await withStore('getSession', () => sessions.load(deviceId, parsed.kid));
      if (again !== undefined) return again;
      // The overflow: no per-device quota (a new device of a shared subscription whose key
      // message another instance is storing), bounded overall.
      if (this.#o.overflow.add(entry, evict) === 'held') held = 'held';
    }
    if (held === 'held') return { type: 'hold', why: 'pending', detail: 'data before its key message' };
    // Cannot be real (an unknown device, or a kid far above the floor): dropped, so that a flood
    // of it cannot fill the broker's in-flight window with unacknowledged messages.
    if (!plausible)
      return reject(
        'unknown-kid',
        `no session yet and the pending buffer is full (${held}): an unknown device or a kid far above the floor`,
      );
    return { type: 'hold', why: 'no-room', detail: `the pending buffer is full (${held})` };
  }

  // ------------------------------------------------------------------------------- 3. decrypt

  async #decrypt(
    deviceId: string,
    parsed: ParsedDataMessage,
    { live, fromCache }: Resolved,
  ): Promise<Uint8Array | Outcome | typeof AGAIN> {
    try {
      return openData(this.#o.crypto, parsed, live.key);
    } catch (e) {
      if (fromCache && reasonOf(e) === 'decrypt-failed' && (await this.#reloaded(deviceId, parsed.kid, live)))
        return AGAIN;
      return rejectionOf(e);
    }
  }

  /**
   * Whether the store holds another session under the kid than the cached one, which may be stale
   * (the operator reset the kid floor and the device started over).
   */
  async #reloaded(deviceId: string, kid: Uint8Array, stale: LiveSession): Promise<boolean> {
    try {
      const again = await this.#o.withStore('getSession', () => this.#o.sessions.load(deviceId, kid));
      return again?.closed === false && !equal(again.sealed, stale.sealed);
    } catch (e) {
      if (e instanceof Stopping) return false;
      throw e;
    }
  }

  // -------------------------------------------------------------------------------- 4. commit

  async #commit(
    deviceId: string,
    message: InboundMessage,
    parsed: ParsedDataMessage,
    live: LiveSession,
    payload: Uint8Array,
  ): Promise<Outcome | typeof AGAIN> {
    const result = await this.#o.commits
      .add({ deviceId, kid: parsed.kid, seq: parsed.seq, receivedAt: message.receivedAt, payload })
      .catch((e: Error) => {
        throw new Stopping(e.message);
      });
    return this.#commitOutcome(deviceId, message, parsed, live, payload, result);
  }

  #commitOutcome(
    deviceId: string,
    message: InboundMessage,
    parsed: ParsedDataMessage,
    live: LiveSession,
    payload: Uint8Array,
    result: CommitResult,
  ): Outcome | typeof AGAIN {
    const { kid, seq } = parsed;
    switch (result) {
      case 'accepted':
        if (live.window.check(seq) === 'new') live.window.accept(seq);
        this.#o.admission?.payloadStored(deviceId, payload.length);
        return {
          type: 'accept',
          stored: {
            kind: 'data',
            payload: { deviceId, kid, kidHex: live.kidHex, seq, receivedAt: new Date(message.receivedAt), payload },
          },
        };
      case 'duplicate':
        return { type: 'duplicate' };
      case 'replay':
        return { type: 'replay', detail: 'sequence number is older than the replay window', redelivered: message.dup };
      case 'closed':
        this.#o.sessions.forget(deviceId, kid);
        return reject('session-closed', 'the session has ended (a newer kid was stored and its grace is over)');
      case 'unknown-session':
        // The store holds no such session in the device's current epoch (its kid floor was reset).
        this.#o.sessions.forget(deviceId, kid);
        return AGAIN;
    }
  }
}

// ----------------------------------------------------------------------------- 2. window pre-check

/** Duplicate or replay by the session's window, before any decryption; undefined when new. */
export function precheckWindow(live: LiveSession, seq: number, redelivered: boolean): Outcome | undefined {
  const pre = live.window.check(seq);
  if (pre === 'duplicate') return { type: 'duplicate' };
  if (pre !== 'too-old') return undefined;
  // A broker redelivery (DUP) after a restart of the service is, most likely, a message stored
  // before the restart: still `replay` (the window cannot tell), but not worth a warning.
  return {
    type: 'replay',
    redelivered,
    detail: redelivered
      ? `redelivered by the broker and older than the replay window (W = ${live.window.size}): most likely stored before`
      : `sequence number is older than the replay window (W = ${live.window.size})`,
  };
}

/** The subject of a data message (for settling its outcome). */
export function dataSubject(deviceId: string, parsed: ParsedDataMessage): Subject {
  return { kind: 'data', deviceId, kid: parsed.kid, seq: parsed.seq };
}
