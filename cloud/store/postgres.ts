/**
 * The store on PostgreSQL (pg Pool): any number of service instances share one database.
 *
 * Concurrency (READ COMMITTED, row locks):
 *   commitBatch  locks every session row of the batch with one SELECT … ORDER BY device_id, kid
 *                FOR UPDATE, so transactions take them in the same order and cannot deadlock.
 *                A second instance committing the same messages waits for the lock, then reads
 *                the window the first one committed and gets 'duplicate'. The unique key
 *                (device_id, epoch, kid, seq) with ON CONFLICT DO NOTHING backs that up.
 *   putSession   locks the device row (created first if missing) for the §6.2 decision.
 * A transaction that still fails with a deadlock or serialization error is retried (a few times).
 *
 * A round trip count per batch that does not grow with its size: BEGIN, the locking SELECT, one
 * INSERT … SELECT FROM unnest(arrays), one UPDATE … FROM unnest(arrays), COMMIT.
 *
 * Payload ids come from a sequence: with concurrent writers a smaller id can become visible after
 * a larger one, so a reader that pages with `after` should re-read a margin to see every row.
 */

import { type DatabaseError, Pool, type PoolClient, type PoolConfig, types } from 'pg';
import { redactUrl } from '../../node/redact-url.js';
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

export interface PostgresStoreOptions extends StoreOptions {
  /** Pool size (default 10). */
  maxConnections?: number;
  /** Extra pg Pool settings (connectionString comes from the URL). */
  pool?: Omit<PoolConfig, 'connectionString'>;
}

/** Arbitrary, fixed: serializes schema migrations of concurrently starting instances. */
const MIGRATION_LOCK = 0x636f7365; // 'cose'
const RETRIES = 5;
const INT8_OID = 20;

/** Schema migrations: MIGRATIONS[v − 1] takes the schema from version v − 1 to v. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE devices (
    device_id       TEXT PRIMARY KEY,
    epoch           INTEGER NOT NULL DEFAULT 0,
    kid_floor       BYTEA,
    created_at      BIGINT NOT NULL,
    floor_reset_at  BIGINT
  );
  CREATE TABLE sessions (
    device_id           TEXT NOT NULL REFERENCES devices (device_id),
    epoch               INTEGER NOT NULL,
    kid                 BYTEA NOT NULL,
    wrapped_key         BYTEA NOT NULL,
    key_message_digest  BYTEA NOT NULL,
    created_at          BIGINT NOT NULL,
    win_size            INTEGER NOT NULL,
    win_highest         BIGINT,
    win_bitmap          BYTEA NOT NULL,
    accepted            BIGINT NOT NULL DEFAULT 0,
    last_received_at    BIGINT,
    PRIMARY KEY (device_id, epoch, kid)
  );
  CREATE TABLE payloads (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    kid          BYTEA NOT NULL,
    seq          BIGINT NOT NULL CHECK (seq BETWEEN 0 AND 4294967295),
    received_at  BIGINT NOT NULL,
    stored_at    BIGINT NOT NULL,
    payload      BYTEA NOT NULL,
    UNIQUE (device_id, epoch, kid, seq),
    FOREIGN KEY (device_id, epoch, kid) REFERENCES sessions (device_id, epoch, kid)
  );
  CREATE INDEX payloads_by_device ON payloads (device_id, id);
  `,
  // 2: session lifetime (issue 12 §1). Sessions of earlier epochs are closed and their keys
  // purged; of the current epoch, those below the floor start their grace now.
  `
  ALTER TABLE devices ADD COLUMN cert_serial TEXT;
  ALTER TABLE sessions ADD COLUMN cert_serial TEXT;
  ALTER TABLE sessions ADD COLUMN superseded_at BIGINT;
  ALTER TABLE sessions ADD COLUMN superseded_accepted BIGINT;
  ALTER TABLE sessions ADD COLUMN closed_at BIGINT;
  CREATE INDEX sessions_by_digest ON sessions (device_id, key_message_digest);
  UPDATE sessions s SET closed_at = (extract(epoch from now()) * 1000)::bigint, wrapped_key = '\\x'::bytea
    FROM devices d WHERE d.device_id = s.device_id AND s.epoch <> d.epoch;
  UPDATE sessions s SET superseded_at = (extract(epoch from now()) * 1000)::bigint, superseded_accepted = s.accepted
    FROM devices d WHERE d.device_id = s.device_id AND s.closed_at IS NULL AND s.kid <> d.kid_floor;
  `,
];

/** BIGINT columns and counts as numbers: every one here is far below 2^53. */
const typeParsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : types.getTypeParser(oid, format)) as typeof types.getTypeParser,
};

const SESSION_SELECT = `
  SELECT s.* FROM sessions s JOIN devices d ON d.device_id = s.device_id AND d.epoch = s.epoch`;

/** The server ended the session (class 57: a shutdown, an administrator command), or it went away. */
function sessionEnded(e: unknown): boolean {
  const code = (e as Partial<DatabaseError> | null)?.code;
  return (
    (typeof code === 'string' && code.startsWith('57')) ||
    /Connection terminated|not queryable|ECONNRESET/i.test((e as Error | null)?.message ?? '')
  );
}

/** Deadlock (40P01) or serialization failure (40001): the transaction may simply be run again. */
function retryable(e: unknown): boolean {
  const code = (e as Partial<DatabaseError> | null)?.code;
  return code === '40P01' || code === '40001';
}

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly windowSize: number;
  readonly sessionGrace: SessionGrace;
  readonly #pool: Pool;
  readonly #now: () => number;
  #closed = false;

  private constructor(pool: Pool, options: PostgresStoreOptions) {
    this.#pool = pool;
    this.windowSize = new ReplayWindow(options.windowSize ?? DEFAULT_WINDOW_SIZE).size;
    this.sessionGrace = checkGrace(options.sessionGrace);
    this.#now = options.now ?? Date.now;
  }

  /** Connects, then creates or migrates the schema. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = new Pool({
      ...options.pool,
      connectionString: url,
      max: options.maxConnections ?? options.pool?.max ?? 10,
      types: typeParsers,
    });
    // An idle client losing its connection must not crash the process; the next query reports it.
    pool.on('error', () => {});
    const store = new PostgresStore(pool, options);
    try {
      await store.#migrate();
    } catch (e) {
      await pool.end().catch(() => {});
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(`cannot open the PostgreSQL store at ${redactUrl(url)}: ${why}`, { cause: e });
    }
    return store;
  }

  async #migrate(): Promise<void> {
    await this.#transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)',
      );
      const { rows } = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
      const current = rows[0]?.v ?? 0;
      if (current > SCHEMA_VERSION)
        throw new Error(
          `the database has store schema version ${current}; this code knows only up to ${SCHEMA_VERSION}`,
        );
      for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
        await c.query(MIGRATIONS[v - 1]!);
        await c.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)', [v, this.#now()]);
      }
    });
  }

  /** Runs fn in a transaction, retrying deadlocks and serialization failures. */
  async #transaction<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.#pool.connect();
      let broken: Error | undefined;
      // While a client is checked out the pool does not listen for its errors, and a pg Client
      // emits 'error' when the server ends the session (a restart: "terminating connection due to
      // administrator command"): unheard, that event would end the process. Heard here, the query
      // under way fails, the client is released as broken, and the caller retries on a new one.
      const onError = (e: Error) => {
        broken = e;
      };
      c.on('error', onError);
      try {
        await c.query('BEGIN');
        const result = await fn(c);
        await c.query('COMMIT');
        return result;
      } catch (e) {
        // A session the server ended has nothing to roll back, and a dead client must not be asked.
        if (broken === undefined && !sessionEnded(e)) {
          try {
            await c.query('ROLLBACK');
          } catch (rollback) {
            broken = rollback instanceof Error ? rollback : new Error(String(rollback));
          }
        } else broken ??= e instanceof Error ? e : new Error(String(e));
        if (attempt < RETRIES && retryable(e)) continue;
        throw e;
      } finally {
        c.off('error', onError);
        c.release(broken);
      }
    }
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    const { rows } = await this.#pool.query<DeviceRow>(`${DEVICE_SELECT} WHERE d.device_id = $1`, [deviceId]);
    return rows[0] && deviceRecord(rows[0]);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    const { rows } = await this.#pool.query<DeviceRow>(`${DEVICE_SELECT} ORDER BY d.device_id COLLATE "C"`);
    return rows.map(deviceRecord);
  }

  async resetKidFloor(deviceId: string, at: number = this.#now()): Promise<boolean> {
    return this.#transaction(async (c) => {
      const device = (
        await c.query<{ epoch: number }>('SELECT epoch FROM devices WHERE device_id = $1 FOR UPDATE', [deviceId])
      ).rows[0];
      if (device === undefined) return false;
      await this.#newEpoch(c, deviceId, device.epoch, at);
      return true;
    });
  }

  /** Closes the sessions of `epoch` (keys purged) and starts the next epoch with floor 0. */
  async #newEpoch(c: PoolClient, deviceId: string, epoch: number, at: number): Promise<void> {
    await c.query(
      `UPDATE sessions SET closed_at = $3, wrapped_key = '\\x'::bytea
       WHERE device_id = $1 AND epoch = $2 AND closed_at IS NULL`,
      [deviceId, epoch, at],
    );
    await c.query('UPDATE devices SET epoch = epoch + 1, kid_floor = NULL, floor_reset_at = $2 WHERE device_id = $1', [
      deviceId,
      at,
    ]);
  }

  async closeSessions(deviceId: string, options: { serial?: string; at?: number } = {}): Promise<number> {
    const at = options.at ?? this.#now();
    const r =
      options.serial === undefined
        ? await this.#pool.query(
            `UPDATE sessions SET closed_at = $2, wrapped_key = '\\x'::bytea WHERE device_id = $1 AND closed_at IS NULL`,
            [deviceId, at],
          )
        : await this.#pool.query(
            `UPDATE sessions SET closed_at = $2, wrapped_key = '\\x'::bytea
             WHERE device_id = $1 AND cert_serial = $3 AND closed_at IS NULL`,
            [deviceId, at, options.serial],
          );
    return r.rowCount ?? 0;
  }

  async putSession(s: NewSession): Promise<PutSessionResult> {
    checkNewSession(s);
    return this.#transaction(async (c) => {
      await c.query('INSERT INTO devices (device_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
        s.deviceId,
        s.createdAt,
      ]);
      const device = (
        await c.query<{ epoch: number; kid_floor: Uint8Array | null; cert_serial: string | null }>(
          'SELECT epoch, kid_floor, cert_serial FROM devices WHERE device_id = $1 FOR UPDATE',
          [s.deviceId],
        )
      ).rows[0]!;
      const held = (
        await c.query<{ key_message_digest: Uint8Array }>(
          'SELECT key_message_digest FROM sessions WHERE device_id = $1 AND epoch = $2 AND kid = $3',
          [s.deviceId, device.epoch, s.kid],
        )
      ).rows[0];
      const seen = (
        await c.query<{ epoch: number; kid: Uint8Array }>(
          'SELECT epoch, kid FROM sessions WHERE device_id = $1 AND key_message_digest = $2 LIMIT 1',
          [s.deviceId, s.keyMessageDigest],
        )
      ).rows[0];
      const elsewhere = seen !== undefined && (seen.epoch !== device.epoch || !equal(seen.kid, s.kid));
      const usedBefore =
        s.certificateSerial !== undefined &&
        (
          await c.query('SELECT 1 FROM sessions WHERE device_id = $1 AND cert_serial = $2 LIMIT 1', [
            s.deviceId,
            s.certificateSerial,
          ])
        ).rows.length > 0;
      const step = certificateStep(device.cert_serial, s.certificateSerial, device.kid_floor, usedBefore);
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
      let epoch = device.epoch;
      if (step === 'new-epoch') {
        await this.#newEpoch(c, s.deviceId, epoch, now);
        epoch++;
      }
      if (step === 'new-epoch' || step === 'adopt')
        await c.query('UPDATE devices SET cert_serial = $2 WHERE device_id = $1', [s.deviceId, s.certificateSerial]);
      const window = new ReplayWindow(this.windowSize).serialize();
      await c.query(
        `INSERT INTO sessions (device_id, epoch, kid, wrapped_key, key_message_digest, created_at, win_size, win_highest, win_bitmap, cert_serial)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)`,
        [
          s.deviceId,
          epoch,
          s.kid,
          s.wrappedKey,
          s.keyMessageDigest,
          s.createdAt,
          window.size,
          window.bitmap,
          s.certificateSerial ?? null,
        ],
      );
      await c.query('UPDATE devices SET kid_floor = $2 WHERE device_id = $1', [s.deviceId, s.kid]);
      await c.query(
        `UPDATE sessions SET superseded_at = $4, superseded_accepted = accepted
         WHERE device_id = $1 AND epoch = $2 AND kid <> $3 AND superseded_at IS NULL AND closed_at IS NULL`,
        [s.deviceId, epoch, s.kid, now],
      );
      await c.query(
        `UPDATE sessions SET closed_at = superseded_at + $3::int8, wrapped_key = '\\x'::bytea
         WHERE device_id = $1 AND closed_at IS NULL AND superseded_at IS NOT NULL AND superseded_at <= $2::int8 - $3::int8`,
        [s.deviceId, now, this.sessionGrace.ms],
      );
      return 'stored';
    });
  }

  async getSession(deviceId: string, kid: Uint8Array): Promise<SessionRecord | undefined> {
    const { rows } = await this.#pool.query<SessionRow>(`${SESSION_SELECT} WHERE s.device_id = $1 AND s.kid = $2`, [
      deviceId,
      kid,
    ]);
    return rows[0] && sessionRecord(rows[0], this.sessionGrace, this.#now());
  }

  async commitBatch(items: readonly DataItem[]): Promise<CommitResult[]> {
    items.forEach(checkItem);
    if (items.length === 0) return [];
    const sessions = batchSessions(items);
    return this.#transaction(async (c) => {
      const { rows } = await c.query<SessionRow>(
        `${SESSION_SELECT}
         WHERE (s.device_id, s.kid) IN (SELECT * FROM unnest($1::text[], $2::bytea[]))
         ORDER BY s.device_id COLLATE "C", s.kid
         FOR UPDATE OF s`,
        [sessions.map((s) => s.deviceId), sessions.map((s) => s.kid)],
      );
      const locked = new Map<string, LockedSession>();
      const now = this.#now();
      for (const r of rows)
        locked.set(sessionKey(r.device_id, r.kid), {
          epoch: r.epoch,
          window: { size: r.win_size, highest: r.win_highest, bitmap: r.win_bitmap },
          budget: sessionBudget(r, this.sessionGrace, now),
        });
      const plan = planBatch(items, locked, this.windowSize);
      if (plan.inserts.length > 0) {
        const ins = plan.inserts.map((i) => items[i]!);
        const inserted = await c.query<{ device_id: string; kid: Uint8Array; seq: number }>(
          `INSERT INTO payloads (device_id, epoch, kid, seq, received_at, stored_at, payload)
           SELECT d, e, k, s, r, $6::int8, p FROM unnest($1::text[], $2::int[], $3::bytea[], $4::int8[], $5::int8[], $7::bytea[])
             AS v(d, e, k, s, r, p)
           ON CONFLICT DO NOTHING
           RETURNING device_id, kid, seq`,
          [
            ins.map((it) => it.deviceId),
            plan.inserts.map((i) => plan.epochs.get(i)!),
            ins.map((it) => it.kid),
            ins.map((it) => it.seq),
            ins.map((it) => it.receivedAt),
            this.#now(),
            ins.map((it) => it.payload),
          ],
        );
        if (inserted.rows.length !== plan.inserts.length) {
          const stored = new Set(inserted.rows.map((r) => `${sessionKey(r.device_id, r.kid)}\u0000${r.seq}`));
          for (const i of plan.inserts) {
            const it = items[i]!;
            if (!stored.has(`${sessionKey(it.deviceId, it.kid)}\u0000${it.seq}`)) plan.results[i] = 'duplicate';
          }
        }
      }
      if (plan.updates.length > 0) {
        const u = plan.updates;
        await c.query(
          `UPDATE sessions s SET win_size = v.size, win_highest = v.highest, win_bitmap = v.bitmap,
             accepted = s.accepted + v.accepted, last_received_at = greatest(s.last_received_at, v.last)
           FROM unnest($1::text[], $2::int[], $3::bytea[], $4::int[], $5::int8[], $6::bytea[], $7::int8[], $8::int8[])
             AS v(device_id, epoch, kid, size, highest, bitmap, accepted, last)
           WHERE s.device_id = v.device_id AND s.epoch = v.epoch AND s.kid = v.kid`,
          [
            u.map((x) => x.deviceId),
            u.map((x) => x.epoch),
            u.map((x) => x.kid),
            u.map((x) => x.window.size),
            u.map((x) => x.window.highest),
            u.map((x) => x.window.bitmap),
            u.map((x) => x.accepted),
            u.map((x) => x.lastReceivedAt),
          ],
        );
      }
      return plan.results;
    });
  }

  async listPayloads(q: ListPayloadsQuery): Promise<StoredPayload[]> {
    checkListQuery(q);
    const params: unknown[] = [q.after ?? 0, q.limit];
    let where = 'id > $1';
    if (q.deviceId !== undefined) {
      params.push(q.deviceId);
      where += ' AND device_id = $3';
    }
    const { rows } = await this.#pool.query<PayloadRow>(
      `SELECT * FROM payloads WHERE ${where} ORDER BY id LIMIT $2`,
      params,
    );
    return rows.map(payloadRecord);
  }

  async countPayloads(deviceId?: string): Promise<number> {
    const { rows } =
      deviceId === undefined
        ? await this.#pool.query<{ n: number }>('SELECT count(*) AS n FROM payloads')
        : await this.#pool.query<{ n: number }>('SELECT count(*) AS n FROM payloads WHERE device_id = $1', [deviceId]);
    return rows[0]!.n;
  }

  async stats(): Promise<StoreStats> {
    const { rows } = await this.#pool.query<StoreStats>(
      `SELECT (SELECT count(*) FROM devices) AS devices, (SELECT count(*) FROM sessions) AS sessions,
              (SELECT count(*) FROM payloads) AS payloads`,
    );
    return { ...rows[0]! };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/** Opens (creating or migrating) the store at a postgres:// or postgresql:// URL. */
export function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  return PostgresStore.open(url, options);
}
