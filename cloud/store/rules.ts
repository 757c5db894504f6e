/**
 * The decisions both stores make, as plain functions over rows they have locked: input checks,
 * the §6.2 key message rules, and the §6.3 window pass over one batch. The SQL around them
 * (locking, inserting, updating) lives in sqlite.ts and postgres.ts.
 */
import { equal, toHex } from '../../src/bytes.js';
import { compareKids, decodeKid } from '../../src/profile/counter.js';
import { checkDeviceId } from '../../src/profile/topics.js';
import { MAX_SEQUENCE_NUMBER, ReplayWindow, type WindowState } from '../session/replay-window.js';
import type { CommitResult, DataItem, ListPayloadsQuery, NewSession, PutSessionResult, SessionGrace } from './store.js';

export const SCHEMA_VERSION = 2;
export const MAX_LIST_LIMIT = 10_000;
export const DIGEST_BYTES = 32;

function checkTime(name: string, t: number): number {
  if (!Number.isSafeInteger(t) || t < 0) throw new RangeError(`${name} must be an integer ≥ 0 (ms), got ${t}`);
  return t;
}

function checkBytes(name: string, b: unknown): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  return b;
}

/** Devices never count kids beyond 2^53 − 1 (PROTOCOL.md §6.6): a larger kid is `kid-too-far`. */
export const MAX_KID = 2n ** 53n - 1n;
/**
 * "Far above the floor": a key message's kid may be at most this much above the device's kid floor
 * (0 before the first session of an epoch). A device skips kids only for key messages that never
 * reached the cloud; 65 536 of them in a row does not happen, while a compromised key that
 * announces a huge kid would otherwise lock the real device out (`kid-rollback`) for good.
 */
export const MAX_KID_STEP = 65_536n;
/** How long, and for how many more payloads, a session stays open once a newer kid is stored. */
export const DEFAULT_SESSION_GRACE: SessionGrace = { ms: 120_000, messages: 1000 };

export function checkGrace(grace: Partial<SessionGrace> = {}): SessionGrace {
  const out = { ...DEFAULT_SESSION_GRACE, ...grace };
  for (const [name, v] of Object.entries(out))
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`session grace ${name} must be an integer ≥ 0, got ${v}`);
  return out;
}

/** True when a key message may not announce `kid` over `floor` (above 2^53 − 1, or far above the floor). */
export function kidTooFar(kid: Uint8Array, floor: Uint8Array | null): boolean {
  const k = decodeKid(kid);
  return k > MAX_KID || k > (floor === null ? 0n : decodeKid(floor)) + MAX_KID_STEP;
}

export function checkNewSession(s: NewSession): void {
  checkDeviceId(s.deviceId);
  decodeKid(checkBytes('kid', s.kid));
  if (s.certificateSerial !== undefined && !/^[0-9a-f]{1,40}$/.test(s.certificateSerial))
    throw new RangeError('certificateSerial must be 1–40 lowercase hex digits');
  if (checkBytes('wrappedKey', s.wrappedKey).length === 0) throw new RangeError('wrappedKey is empty');
  if (checkBytes('keyMessageDigest', s.keyMessageDigest).length !== DIGEST_BYTES)
    throw new RangeError(`keyMessageDigest must be ${DIGEST_BYTES} bytes (SHA-256)`);
  checkTime('createdAt', s.createdAt);
}

export function checkItem(item: DataItem): void {
  checkDeviceId(item.deviceId);
  decodeKid(checkBytes('kid', item.kid));
  if (!Number.isInteger(item.seq) || item.seq < 0 || item.seq > MAX_SEQUENCE_NUMBER)
    throw new RangeError(`seq must be an integer in 0 … ${MAX_SEQUENCE_NUMBER}, got ${item.seq}`);
  checkTime('receivedAt', item.receivedAt);
  checkBytes('payload', item.payload);
}

export function checkListQuery(q: ListPayloadsQuery): void {
  if (q.deviceId !== undefined) checkDeviceId(q.deviceId);
  if (q.after !== undefined && !Number.isSafeInteger(q.after)) throw new RangeError('after must be an integer');
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_LIST_LIMIT)
    throw new RangeError(`limit must be an integer in 1 … ${MAX_LIST_LIMIT}, got ${q.limit}`);
}

/**
 * §6.2 on the locked device row: the held session with this kid in the current epoch (if any),
 * and whether this signed content was accepted before in another session of the device (any
 * epoch: a replay, e.g. after `reset-kid`).
 */
export function decidePutSession(
  kid: Uint8Array,
  digest: Uint8Array,
  floor: Uint8Array | null,
  held: { digest: Uint8Array } | undefined,
  seenElsewhere = false,
): PutSessionResult {
  if (held && equal(held.digest, digest)) return 'duplicate';
  if (seenElsewhere) return 'kid-rollback';
  if (held) return 'kid-reused';
  if (floor !== null && compareKids(kid, floor) <= 0) return 'kid-rollback';
  if (kidTooFar(kid, floor)) return 'kid-too-far';
  return 'stored';
}

/**
 * What a key message's certificate does to the device's epoch (PROTOCOL.md §6.1): the same
 * certificate, or the first one known, changes nothing; a certificate the device used before and
 * has since replaced is refused (`kid-rollback`); a new one starts a new epoch (floor 0), unless
 * the epoch has no session yet.
 */
export function certificateStep(
  current: string | null,
  incoming: string | undefined,
  floor: Uint8Array | null,
  usedBefore: boolean,
): 'same' | 'adopt' | 'old-certificate' | 'new-epoch' {
  if (incoming === undefined || current === incoming) return 'same';
  if (current === null) return 'adopt';
  if (usedBefore) return 'old-certificate';
  return floor === null ? 'adopt' : 'new-epoch';
}

/** A session row's closing columns. */
export interface SessionClosing {
  closed_at: number | null;
  superseded_at: number | null;
  superseded_accepted: number | null;
  accepted: number;
}

/**
 * How many more payloads the session may accept at `now`: unlimited while it is the newest,
 * `grace.messages` minus what it accepted since a newer kid was stored until `grace.ms` has
 * passed, 0 once closed.
 */
export function sessionBudget(row: SessionClosing, grace: SessionGrace, now: number): number {
  if (row.closed_at !== null) return 0;
  if (row.superseded_at === null) return Number.POSITIVE_INFINITY;
  if (now - row.superseded_at >= grace.ms) return 0;
  return Math.max(0, grace.messages - (row.accepted - (row.superseded_accepted ?? row.accepted)));
}

/** When the session closed (explicitly, or its grace ran out), or null while it is open. */
export function sessionClosedAt(row: SessionClosing, grace: SessionGrace, now: number): number | null {
  if (row.closed_at !== null) return row.closed_at;
  if (sessionBudget(row, grace, now) > 0) return null;
  return Math.min(now, row.superseded_at! + grace.ms);
}

/** The key of a session within one device epoch (device ids hold no NUL). */
export function sessionKey(deviceId: string, kid: Uint8Array): string {
  return `${deviceId}\u0000${toHex(kid)}`;
}

export interface BatchSession {
  deviceId: string;
  kid: Uint8Array;
}

/** The distinct sessions of a batch, in the one order every store locks them in. */
export function batchSessions(items: readonly DataItem[]): BatchSession[] {
  const seen = new Map<string, BatchSession>();
  for (const item of items) {
    const key = sessionKey(item.deviceId, item.kid);
    if (!seen.has(key)) seen.set(key, { deviceId: item.deviceId, kid: item.kid });
  }
  return [...seen.values()].sort(compareSessions);
}

/** deviceId by UTF-16 code units (= bytes: ids are ASCII), then kid by counter value. */
export function compareSessions(a: BatchSession, b: BatchSession): number {
  if (a.deviceId !== b.deviceId) return a.deviceId < b.deviceId ? -1 : 1;
  return compareKids(a.kid, b.kid);
}

export interface LockedSession {
  epoch: number;
  window: WindowState;
  /** Payloads it may still accept (`sessionBudget`). */
  budget: number;
}

export interface SessionUpdate {
  deviceId: string;
  kid: Uint8Array;
  epoch: number;
  window: WindowState;
  /** Items accepted in this batch. */
  accepted: number;
  /** Largest receivedAt among them. */
  lastReceivedAt: number;
}

export interface BatchPlan {
  /** Per item, in input order; 'accepted' items are provisional until their insert succeeds. */
  results: CommitResult[];
  /** Indexes of the items to insert. */
  inserts: number[];
  /** Epoch of each inserted item's session, by item index. */
  epochs: Map<number, number>;
  /** New windows of the sessions that accepted something. */
  updates: SessionUpdate[];
}

/**
 * Runs each session's items through its window in ascending seq order (input order among equal
 * numbers), so a batch that carries a session's messages out of order does not lose the older
 * ones to its own newer ones.
 */
export function planBatch(
  items: readonly DataItem[],
  locked: ReadonlyMap<string, LockedSession>,
  windowSize: number,
): BatchPlan {
  const results: CommitResult[] = new Array(items.length);
  const bySession = new Map<string, number[]>();
  items.forEach((item, i) => {
    const key = sessionKey(item.deviceId, item.kid);
    if (!locked.has(key)) {
      results[i] = 'unknown-session';
      return;
    }
    const list = bySession.get(key);
    if (list) list.push(i);
    else bySession.set(key, [i]);
  });
  const inserts: number[] = [];
  const epochs = new Map<number, number>();
  const updates: SessionUpdate[] = [];
  for (const [key, indexes] of bySession) {
    const session = locked.get(key)!;
    const window = ReplayWindow.deserialize(session.window, windowSize);
    indexes.sort((a, b) => items[a]!.seq - items[b]!.seq || a - b);
    let accepted = 0;
    let lastReceivedAt = 0;
    for (const i of indexes) {
      const item = items[i]!;
      const verdict = window.check(item.seq);
      if (verdict === 'new' && accepted >= session.budget) {
        results[i] = 'closed';
      } else if (verdict === 'new') {
        window.accept(item.seq);
        results[i] = 'accepted';
        inserts.push(i);
        epochs.set(i, session.epoch);
        accepted++;
        lastReceivedAt = Math.max(lastReceivedAt, item.receivedAt);
      } else {
        results[i] = verdict === 'duplicate' ? 'duplicate' : 'replay';
      }
    }
    if (accepted > 0) {
      const first = items[indexes[0]!]!;
      updates.push({
        deviceId: first.deviceId,
        kid: first.kid,
        epoch: session.epoch,
        window: window.serialize(),
        accepted,
        lastReceivedAt,
      });
    }
  }
  inserts.sort((a, b) => a - b); // payload ids follow the input order
  return { results, inserts, epochs, updates };
}
