/**
 * The cloud service's durable state (docs/PROTOCOL.md §6): devices with their kid floor, the
 * session table with each session's replay window, and the stored payloads. One interface, two
 * implementations: SQLite (cloud/store/sqlite.ts, one service instance) and PostgreSQL
 * (cloud/store/postgres.ts, any number of service instances sharing one database).
 *
 * The store decides the stateful rules, atomically:
 *   putSession   §6.2: duplicate / kid-reused / kid-rollback, else store and raise the kid floor
 *   commitBatch  §6.3 steps 2, 3 and 5: replay window, duplicate, then insert the payload and
 *                mark the window in the same transaction
 * Everything before that (parsing, certificate and signature checks, unwrap, decryption) and the
 * pending buffer for data that arrives before its key message belong to the service.
 *
 * Identities and the reset epoch: a session is (deviceId, epoch, kid), a payload
 * (deviceId, epoch, kid, seq). A device's epoch starts at 0 and grows by one on each
 * `resetKidFloor`, the operator command for a re-flashed device that counts kids from 1 again; its
 * old sessions and payloads stay in the store under the old epoch, and every lookup uses the
 * current one. Kids are the minimal big-endian bytes of the counter (src/profile/counter.ts), and
 * the store refuses any other form (CoseError 'bad-kid').
 *
 * Keys: `wrappedKey` is opaque; the service wraps the session key and Base IV under its
 * configured at-rest key before `putSession`. The store never sees a clear key.
 *
 * Times are milliseconds since the Unix epoch (integers).
 */
import type { WindowState } from '../session/replay-window.js';

export type PutSessionResult = 'stored' | 'duplicate' | 'kid-reused' | 'kid-rollback' | 'kid-too-far';

/**
 * Per item of a batch: accepted (stored now), duplicate (stored before), replay, unknown-session,
 * closed (the session ended: superseded beyond its grace, revoked, or purged).
 */
export type CommitResult = 'accepted' | 'duplicate' | 'replay' | 'unknown-session' | 'closed';

/**
 * Once a newer kid of the device is stored, an older session accepts payloads for at most `ms`
 * more milliseconds and at most `messages` more payloads (PROTOCOL.md §6.1), then it is closed.
 */
export interface SessionGrace {
  ms: number;
  messages: number;
}

export interface DeviceRecord {
  deviceId: string;
  /** Highest kid accepted in the current epoch (minimal bytes), or null before the first (floor 0). */
  kidFloor: Uint8Array | null;
  /** Number of `resetKidFloor`s so far. */
  epoch: number;
  /** Sessions held for the device in the current epoch. */
  sessions: number;
  createdAt: number;
  /** When the floor was last reset (operator or a new certificate), or null. */
  floorResetAt: number | null;
  /** Serial (hex) of the certificate of the device's latest session, or null before one is known. */
  certificateSerial: string | null;
}

export interface NewSession {
  deviceId: string;
  kid: Uint8Array;
  /** The session key and Base IV, wrapped by the service; opaque to the store. */
  wrappedKey: Uint8Array;
  /** SHA-256 of the signed content of the key message (protected bytes and payload, §6.2). */
  keyMessageDigest: Uint8Array;
  createdAt: number;
  /** Serial (lowercase hex, as `VerifiedCertificate.serialHex`) of the certificate that signed it. */
  certificateSerial?: string;
}

export interface SessionRecord extends Omit<NewSession, 'certificateSerial'> {
  epoch: number;
  /**
   * The replay window as committed when read. A service may pre-check data with
   * `ReplayWindow.deserialize(window).check(seq)` to skip decrypting duplicates; `commitBatch`
   * decides again under the row lock.
   */
  window: WindowState;
  /** Payloads accepted under this session. */
  accepted: number;
  /** receivedAt of the last accepted payload, or null. */
  lastReceivedAt: number | null;
  /** The certificate serial it was opened under (null for sessions stored before schema 2). */
  certificateSerial: string | null;
  /** When a newer kid of the device was stored, or null. */
  supersededAt: number | null;
  /**
   * When it closed (its grace ran out, the certificate was revoked, reset-kid), or null while it is
   * open. A closed session's `wrappedKey` may be empty: its key is purged.
   */
  closedAt: number | null;
}

export interface DataItem {
  deviceId: string;
  kid: Uint8Array;
  /** Sequence number (Partial IV), 0 … 2^32 − 1. */
  seq: number;
  receivedAt: number;
  /** The decrypted payload. */
  payload: Uint8Array;
}

export interface StoredPayload {
  /** Store-wide insertion order, ascending: the cursor of `listPayloads`. */
  id: number;
  deviceId: string;
  epoch: number;
  kid: Uint8Array;
  seq: number;
  receivedAt: number;
  /** When the store committed it. */
  storedAt: number;
  payload: Uint8Array;
}

export interface ListPayloadsQuery {
  deviceId?: string;
  /** Only payloads with an id greater than this (a cursor: the last id of the previous page). */
  after?: number;
  /** 1 … 10 000. */
  limit: number;
}

export interface StoreStats {
  devices: number;
  sessions: number;
  payloads: number;
}

export interface Store {
  /** 'sqlite' or 'postgres'. */
  readonly kind: 'sqlite' | 'postgres';
  /** W of the replay windows this store keeps for new and updated sessions. */
  readonly windowSize: number;

  /** The device, or undefined if no key message was ever stored for it. */
  getDevice(deviceId: string): Promise<DeviceRecord | undefined>;
  /** The grace of superseded sessions (StoreOptions.sessionGrace). */
  readonly sessionGrace: SessionGrace;

  /**
   * Operator command for a re-flashed device (kid counter back to 1): a new epoch with floor 0.
   * Earlier sessions stop matching (their data becomes 'unknown-session') and are closed, their
   * keys purged; stored payloads stay. Key messages accepted before still count as seen (a replay
   * of one is 'kid-rollback'). False if the device is unknown.
   */
  resetKidFloor(deviceId: string, at?: number): Promise<boolean>;
  /**
   * Closes the device's open sessions (every epoch), or only those opened under the certificate
   * `serial`, and purges their keys: their data is 'closed' from then on. Returns how many closed.
   */
  closeSessions(deviceId: string, options?: { serial?: string; at?: number }): Promise<number>;
  /** All devices, by id. */
  listDevices(): Promise<DeviceRecord[]>;

  /**
   * Applies §6.2 and, if the kid is above the floor, stores the session with an empty window and
   * raises the floor to its kid, in one transaction. Held session with this kid: 'duplicate'
   * (same digest; nothing changes) or 'kid-reused' (another digest). The same digest accepted
   * for another session of the device, in any epoch (a replay): 'kid-rollback'. Otherwise kid ≤
   * floor: 'kid-rollback'; kid > 2^53 − 1 or more than MAX_KID_STEP above the floor: 'kid-too-far'.
   * With `certificateSerial`: a certificate the device used before and then replaced is
   * 'kid-rollback'; a new one starts a new epoch first (older sessions closed). A stored session
   * starts the grace of the device's older sessions of the epoch.
   */
  putSession(session: NewSession): Promise<PutSessionResult>;
  /** The session of the device's current epoch with this kid, or undefined. */
  getSession(deviceId: string, kid: Uint8Array): Promise<SessionRecord | undefined>;

  /**
   * Commits decrypted data in ONE transaction and returns one result per item, in input order.
   * Per session (locked for the transaction, so concurrent commits of the same data by several
   * service instances serialize) its items run through the replay window in ascending seq order:
   * the first of equal numbers is 'accepted' and stored, later ones and numbers already marked
   * are 'duplicate', numbers left of the window 'replay'. The unique key (deviceId, epoch, kid,
   * seq) stays the last line of defence: an insert that hits it reports 'duplicate'.
   * No session for (deviceId, current epoch, kid): 'unknown-session' (the service decides
   * between its pending buffer and `unknown-kid`). A closed session, or one whose grace is used
   * up: 'closed'. A failure rolls back the whole batch.
   */
  commitBatch(items: readonly DataItem[]): Promise<CommitResult[]>;

  /** Payloads in insertion order (id ascending). */
  listPayloads(query: ListPayloadsQuery): Promise<StoredPayload[]>;
  countPayloads(deviceId?: string): Promise<number>;
  stats(): Promise<StoreStats>;

  close(): Promise<void>;
}

export interface StoreOptions {
  /** Replay window size W for sessions (default 64, PROTOCOL.md §6.6). */
  windowSize?: number;
  /** Clock for storedAt, resets and session grace (tests). */
  now?: () => number;
  /** The grace of superseded sessions (default 120 000 ms and 1000 payloads). */
  sessionGrace?: Partial<SessionGrace>;
}
