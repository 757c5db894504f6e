/**
 * The store on SQLite (better-sqlite3 12.x): one file, for a single service instance (several
 * processes on one file are also correct: every write transaction is BEGIN IMMEDIATE, so they
 * take turns, but they do not scale).
 *
 * Durability: WAL journal with synchronous=FULL. The service acknowledges a data message (MQTT
 * PUBACK) only after `commitBatch` returns, and the device then forgets it. With
 * synchronous=NORMAL a WAL commit survives a crash of the process but not of the machine (power
 * loss, kernel panic): the last transactions before it roll back, and those payloads, already
 * acknowledged, would be lost for good. FULL syncs the WAL on every commit, so an acknowledged
 * payload is on disk; batching is what pays for that sync (bench/store.ts). NORMAL can be chosen
 * with `synchronous: 'normal'` where losing the last moments of data on power loss is acceptable.
 */
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { equal } from '../../src/bytes.js';
import { DEFAULT_WINDOW_SIZE, ReplayWindow } from '../session/replay-window.js';
import {
  DEVICE_SELECT,
  type DeviceRow,
  deviceRecord,
  type PayloadRow,
  payloadRecord,
  type SessionRow,
  sessionRecord,
} from './rows.js';
import {
  batchSessions,
  certificateStep,
  checkGrace,
  checkItem,
  checkListQuery,
  checkNewSession,
  decidePutSession,
  type LockedSession,
  planBatch,
  SCHEMA_VERSION,
  sessionBudget,
  sessionKey,
} from './rules.js';
import type {
  CommitResult,
  DataItem,
  DeviceRecord,
  ListPayloadsQuery,
  NewSession,
  PutSessionResult,
  SessionGrace,
  SessionRecord,
  Store,
  StoredPayload,
  StoreOptions,
  StoreStats,
} from './store.js';

export interface SqliteStoreOptions extends StoreOptions {
  /** 'full' (default) or 'normal'; see the module comment. */
  synchronous?: 'full' | 'normal';
  /** How long a write waits for another process's transaction, ms (default 5000). */
  busyTimeoutMs?: number;
}

/** Schema migrations: MIGRATIONS[v − 1] takes the schema from version v − 1 to v. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE devices (
    device_id       TEXT PRIMARY KEY,
    epoch           INTEGER NOT NULL DEFAULT 0,
    kid_floor       BLOB,
    created_at      INTEGER NOT NULL,
    floor_reset_at  INTEGER
  ) STRICT;
  CREATE TABLE sessions (
    device_id           TEXT NOT NULL REFERENCES devices (device_id),
    epoch               INTEGER NOT NULL,
    kid                 BLOB NOT NULL,
    wrapped_key         BLOB NOT NULL,
    key_message_digest  BLOB NOT NULL,
    created_at          INTEGER NOT NULL,
    win_size            INTEGER NOT NULL,
    win_highest         INTEGER,
    win_bitmap          BLOB NOT NULL,
    accepted            INTEGER NOT NULL DEFAULT 0,
    last_received_at    INTEGER,
    PRIMARY KEY (device_id, epoch, kid)
  ) STRICT;
  CREATE TABLE payloads (
    id           INTEGER PRIMARY KEY,
    device_id    TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    kid          BLOB NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq BETWEEN 0 AND 4294967295),
    received_at  INTEGER NOT NULL,
    stored_at    INTEGER NOT NULL,
    payload      BLOB NOT NULL,
    UNIQUE (device_id, epoch, kid, seq),
    FOREIGN KEY (device_id, epoch, kid) REFERENCES sessions (device_id, epoch, kid)
  ) STRICT;
  CREATE INDEX payloads_by_device ON payloads (device_id, id);
  `,
  // 2: session lifetime (issue 12 §1). Sessions of earlier epochs are closed and their keys
  // purged; of the current epoch, those below the floor start their grace now.
  `
  ALTER TABLE devices ADD COLUMN cert_serial TEXT;
  ALTER TABLE sessions ADD COLUMN cert_serial TEXT;
  ALTER TABLE sessions ADD COLUMN superseded_at INTEGER;
  ALTER TABLE sessions ADD COLUMN superseded_accepted INTEGER;
  ALTER TABLE sessions ADD COLUMN closed_at INTEGER;
  CREATE INDEX sessions_by_digest ON sessions (device_id, key_message_digest);
  UPDATE sessions SET closed_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), wrapped_key = x''
    WHERE epoch <> (SELECT d.epoch FROM devices d WHERE d.device_id = sessions.device_id);
  UPDATE sessions SET superseded_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), superseded_accepted = accepted
    WHERE closed_at IS NULL AND kid <> (SELECT d.kid_floor FROM devices d WHERE d.device_id = sessions.device_id);
  `,
];

/**
 * The database holds decrypted readings: it is created 0600, and an existing one readable by others
 * is narrowed to 0600. SQLite gives its -wal and -shm files the database file's mode.
 */
function ownerOnly(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly windowSize: number;
  readonly sessionGrace: SessionGrace;
  readonly file: string;
  readonly #db: Database.Database;
  readonly #now: () => number;
  readonly #sql;

  constructor(file: string, options: SqliteStoreOptions = {}) {
    this.file = file;
    this.windowSize = new ReplayWindow(options.windowSize ?? DEFAULT_WINDOW_SIZE).size;
    this.sessionGrace = checkGrace(options.sessionGrace);
    this.#now = options.now ?? Date.now;
    if (file !== ':memory:' && file !== '') ownerOnly(file);
    const db = new Database(file);
    this.#db = db;
    try {
      db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal' && file !== ':memory:') throw new Error(`SQLite could not switch ${file} to WAL (${mode})`);
      db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      db.pragma('foreign_keys = ON');
      this.#migrate();
    } catch (e) {
      db.close();
      throw e;
    }
    this.#sql = {
      device: db.prepare<[string], DeviceRow>(`${DEVICE_SELECT} WHERE d.device_id = ?`),
      devices: db.prepare<[], DeviceRow>(`${DEVICE_SELECT} ORDER BY d.device_id`),
      insertDevice: db.prepare<[string, number]>(
        'INSERT INTO devices (device_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING',
      ),
      deviceFloor: db.prepare<[string], { epoch: number; kid_floor: Uint8Array | null; cert_serial: string | null }>(
        'SELECT epoch, kid_floor, cert_serial FROM devices WHERE device_id = ?',
      ),
      raiseFloor: db.prepare<[Uint8Array, string]>('UPDATE devices SET kid_floor = ? WHERE device_id = ?'),
      setSerial: db.prepare<[string, string]>('UPDATE devices SET cert_serial = ? WHERE device_id = ?'),
      resetFloor: db.prepare<[number, string]>(
        'UPDATE devices SET epoch = epoch + 1, kid_floor = NULL, floor_reset_at = ? WHERE device_id = ?',
      ),
      digestSeen: db.prepare<[string, Uint8Array], { epoch: number; kid: Uint8Array }>(
        'SELECT epoch, kid FROM sessions WHERE device_id = ? AND key_message_digest = ? LIMIT 1',
      ),
      serialUsed: db.prepare<[string, string], { n: number }>(
        'SELECT 1 AS n FROM sessions WHERE device_id = ? AND cert_serial = ? LIMIT 1',
      ),
      supersede: db.prepare(
        `UPDATE sessions SET superseded_at = @at, superseded_accepted = accepted
         WHERE device_id = @deviceId AND epoch = @epoch AND kid <> @kid AND superseded_at IS NULL AND closed_at IS NULL`,
      ),
      purgeExpired: db.prepare(
        `UPDATE sessions SET closed_at = superseded_at + @graceMs, wrapped_key = x''
         WHERE device_id = @deviceId AND closed_at IS NULL AND superseded_at IS NOT NULL AND superseded_at <= @at - @graceMs`,
      ),
      closeEpoch: db.prepare<[number, string, number]>(
        `UPDATE sessions SET closed_at = ?, wrapped_key = x'' WHERE device_id = ? AND epoch = ? AND closed_at IS NULL`,
      ),
      closeAll: db.prepare<[number, string]>(
        `UPDATE sessions SET closed_at = ?, wrapped_key = x'' WHERE device_id = ? AND closed_at IS NULL`,
      ),
      closeSerial: db.prepare<[number, string, string]>(
        `UPDATE sessions SET closed_at = ?, wrapped_key = x''
         WHERE device_id = ? AND cert_serial = ? AND closed_at IS NULL`,
      ),
      session: db.prepare<[string, Uint8Array], SessionRow>(
        `SELECT s.* FROM sessions s JOIN devices d ON d.device_id = s.device_id AND d.epoch = s.epoch
         WHERE s.device_id = ? AND s.kid = ?`,
      ),
      insertSession: db.prepare(
        `INSERT INTO sessions (device_id, epoch, kid, wrapped_key, key_message_digest, created_at, win_size, win_highest, win_bitmap, cert_serial)
         VALUES (@deviceId, @epoch, @kid, @wrappedKey, @digest, @createdAt, @size, NULL, @bitmap, @serial)`,
      ),
      updateWindow: db.prepare(
        `UPDATE sessions SET win_size = @size, win_highest = @highest, win_bitmap = @bitmap,
           accepted = accepted + @accepted, last_received_at = max(coalesce(last_received_at, 0), @lastReceivedAt)
         WHERE device_id = @deviceId AND epoch = @epoch AND kid = @kid`,
      ),
      insertPayload: db.prepare(
        `INSERT INTO payloads (device_id, epoch, kid, seq, received_at, stored_at, payload)
         VALUES (@deviceId, @epoch, @kid, @seq, @receivedAt, @storedAt, @payload) ON CONFLICT DO NOTHING`,
      ),
      countAll: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM payloads'),
      countDevice: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM payloads WHERE device_id = ?'),
      stats: db.prepare<[], StoreStats>(
        `SELECT (SELECT count(*) FROM devices) AS devices, (SELECT count(*) FROM sessions) AS sessions,
                (SELECT count(*) FROM payloads) AS payloads`,
      ),
    };
  }

  #migrate(): void {
    const db = this.#db;
    db.transaction(() => {
      db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
      const row = db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null };
      const current = row.v ?? 0;
      if (current > SCHEMA_VERSION)
        throw new Error(
          `${this.file} has store schema version ${current}; this code knows only up to ${SCHEMA_VERSION}`,
        );
      for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
        db.exec(MIGRATIONS[v - 1]!);
        db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(v, this.#now());
      }
    }).immediate();
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    const row = this.#sql.device.get(deviceId);
    return row ? deviceRecord(row) : undefined;
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return this.#sql.devices.all().map(deviceRecord);
  }

  async resetKidFloor(deviceId: string, at: number = this.#now()): Promise<boolean> {
    const sql = this.#sql;
    return this.#db
      .transaction(() => {
        const device = sql.deviceFloor.get(deviceId);
        if (device === undefined) return false;
        sql.closeEpoch.run(at, deviceId, device.epoch);
        return sql.resetFloor.run(at, deviceId).changes > 0;
      })
      .immediate();
  }

  async closeSessions(deviceId: string, options: { serial?: string; at?: number } = {}): Promise<number> {
    const at = options.at ?? this.#now();
    const sql = this.#sql;
    return this.#db
      .transaction(() =>
        options.serial === undefined
          ? sql.closeAll.run(at, deviceId).changes
          : sql.closeSerial.run(at, deviceId, options.serial).changes,
      )
      .immediate();
  }

  async putSession(s: NewSession): Promise<PutSessionResult> {
    checkNewSession(s);
    const sql = this.#sql;
    return this.#db
      .transaction((): PutSessionResult => {
        sql.insertDevice.run(s.deviceId, s.createdAt);
        let device = sql.deviceFloor.get(s.deviceId)!;
        const held = sql.session.get(s.deviceId, s.kid);
        const seen = sql.digestSeen.get(s.deviceId, s.keyMessageDigest);
        const elsewhere = seen !== undefined && (seen.epoch !== device.epoch || !equal(seen.kid, s.kid));
        const step = certificateStep(
          device.cert_serial,
          s.certificateSerial,
          device.kid_floor,
          s.certificateSerial !== undefined && sql.serialUsed.get(s.deviceId, s.certificateSerial) !== undefined,
        );
        if (step === 'old-certificate' && !(held && equal(held.key_message_digest, s.keyMessageDigest)))
          return 'kid-rollback';
        const result = decidePutSession(
          s.kid,
          s.keyMessageDigest,
          step === 'new-epoch' ? null : device.kid_floor,
          step === 'new-epoch' ? undefined : held && { digest: held.key_message_digest },
          elsewhere,
        );
        if (result !== 'stored') return result;
        const now = this.#now();
        if (step === 'new-epoch') {
          sql.closeEpoch.run(now, s.deviceId, device.epoch);
          sql.resetFloor.run(now, s.deviceId);
          device = sql.deviceFloor.get(s.deviceId)!;
        }
        if (step === 'new-epoch' || step === 'adopt') sql.setSerial.run(s.certificateSerial!, s.deviceId);
        const window = new ReplayWindow(this.windowSize).serialize();
        sql.insertSession.run({
          deviceId: s.deviceId,
          epoch: device.epoch,
          kid: s.kid,
          wrappedKey: s.wrappedKey,
          digest: s.keyMessageDigest,
          createdAt: s.createdAt,
          size: window.size,
          bitmap: window.bitmap,
          serial: s.certificateSerial ?? null,
        });
        sql.raiseFloor.run(s.kid, s.deviceId);
        sql.supersede.run({ at: now, deviceId: s.deviceId, epoch: device.epoch, kid: s.kid });
        sql.purgeExpired.run({ at: now, deviceId: s.deviceId, graceMs: this.sessionGrace.ms });
        return 'stored';
      })
      .immediate();
  }

  async getSession(deviceId: string, kid: Uint8Array): Promise<SessionRecord | undefined> {
    const row = this.#sql.session.get(deviceId, kid);
    return row ? sessionRecord(row, this.sessionGrace, this.#now()) : undefined;
  }

  async commitBatch(items: readonly DataItem[]): Promise<CommitResult[]> {
    items.forEach(checkItem);
    if (items.length === 0) return [];
    const sql = this.#sql;
    return this.#db
      .transaction((): CommitResult[] => {
        const locked = new Map<string, LockedSession>();
        const now = this.#now();
        for (const { deviceId, kid } of batchSessions(items)) {
          const row = sql.session.get(deviceId, kid);
          if (row)
            locked.set(sessionKey(deviceId, kid), {
              epoch: row.epoch,
              window: { size: row.win_size, highest: row.win_highest, bitmap: row.win_bitmap },
              budget: sessionBudget(row, this.sessionGrace, now),
            });
        }
        const plan = planBatch(items, locked, this.windowSize);
        const storedAt = this.#now();
        for (const i of plan.inserts) {
          const item = items[i]!;
          const info = sql.insertPayload.run({
            deviceId: item.deviceId,
            epoch: plan.epochs.get(i)!,
            kid: item.kid,
            seq: item.seq,
            receivedAt: item.receivedAt,
            storedAt,
            payload: item.payload,
          });
          if (info.changes === 0) plan.results[i] = 'duplicate';
        }
        for (const u of plan.updates)
          sql.updateWindow.run({
            deviceId: u.deviceId,
            epoch: u.epoch,
            kid: u.kid,
            size: u.window.size,
            highest: u.window.highest,
            bitmap: u.window.bitmap,
            accepted: u.accepted,
            lastReceivedAt: u.lastReceivedAt,
          });
        return plan.results;
      })
      .immediate();
  }

  async listPayloads(q: ListPayloadsQuery): Promise<StoredPayload[]> {
    checkListQuery(q);
    const where: string[] = ['id > @after'];
    if (q.deviceId !== undefined) where.push('device_id = @deviceId');
    const rows = this.#db
      .prepare(`SELECT * FROM payloads WHERE ${where.join(' AND ')} ORDER BY id LIMIT @limit`)
      .all({ after: q.after ?? 0, deviceId: q.deviceId, limit: q.limit }) as PayloadRow[];
    return rows.map(payloadRecord);
  }

  async countPayloads(deviceId?: string): Promise<number> {
    return (deviceId === undefined ? this.#sql.countAll.get() : this.#sql.countDevice.get(deviceId))!.n;
  }

  async stats(): Promise<StoreStats> {
    return { ...this.#sql.stats.get()! };
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

/** Opens (creating or migrating) the store in FILE. */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(file, options);
}
