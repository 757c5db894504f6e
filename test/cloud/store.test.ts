/**
 * The cloud store (cloud/store): one contract suite run against SQLite (a temporary file), SQLite
 * in a writer thread (cloud/store/writer-thread.ts) and PostgreSQL (a throwaway server from test/fixtures/postgres.ts, a fresh database per test), then
 * PostgreSQL with several service instances committing the same messages at once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { ReplayWindow } from '../../cloud/session/replay-window.js';
import {
  type CommitResult,
  type DataItem,
  type NewSession,
  type OpenStoreOptions,
  openStore,
  SqliteWriterThread,
  type Store,
} from '../../cloud/store/index.js';
import { MIGRATIONS as PG_MIGRATIONS } from '../../cloud/store/postgres.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../cloud/store/sqlite.js';
import { toHex, utf8Decode, utf8Encode } from '../../src/bytes.js';
import { encodeKid } from '../../src/profile/counter.js';
import { startPostgres, type TestPostgres } from '../fixtures/postgres.js';
import { prng } from '../fixtures/prng.js';

const T0 = 1_750_000_000_000;
const digest = (text: string) => new Uint8Array(createHash('sha256').update(text).digest());
const kid = (n: number | bigint) => encodeKid(n);

function session(deviceId: string, kidN: number | bigint, version = 'a'): NewSession {
  return {
    deviceId,
    kid: kid(kidN),
    wrappedKey: utf8Encode(`wrapped:${deviceId}:${kidN}:${version}`),
    keyMessageDigest: digest(`${deviceId}:${kidN}:${version}`),
    createdAt: T0 + Number(BigInt(kidN) % 1000n),
  };
}

function item(deviceId: string, kidN: number, seq: number): DataItem {
  return {
    deviceId,
    kid: kid(kidN),
    seq,
    receivedAt: T0 + 1000 + seq,
    payload: utf8Encode(`${deviceId}/${kidN}/${seq}`),
  };
}

const items = (deviceId: string, kidN: number, seqs: number[]) => seqs.map((s) => item(deviceId, kidN, s));

/** A controllable clock: storedAt and reset times come from it. */
function clock() {
  let t = T0 + 5_000;
  return { now: () => t, set: (v: number) => (t = v) };
}

interface Backend {
  name: string;
  kind: 'sqlite' | 'postgres';
  /** How the suite opens it (the SQLite writer thread: `writerThread: true`). */
  open?: OpenStoreOptions;
  /** A URL to an empty store. */
  fresh(): Promise<string>;
  /** Runs raw SQL on the store's database (for the schema version test). */
  exec(url: string, sql: string): Promise<void>;
}

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-store-'));
let files = 0;
let pg: TestPostgres | undefined;

before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const backends: Backend[] = [
  {
    name: 'sqlite',
    kind: 'sqlite',
    fresh: async () => `sqlite:${join(tmp, `store-${++files}.db`)}`,
    exec: async (url, sql) => {
      const db = new Database(url.slice('sqlite:'.length));
      db.exec(sql);
      db.close();
    },
  },
  {
    name: 'sqlite in a writer thread',
    kind: 'sqlite',
    open: { writerThread: true },
    fresh: async () => `sqlite:${join(tmp, `store-${++files}.db`)}`,
    exec: async (url, sql) => {
      const db = new Database(url.slice('sqlite:'.length));
      db.exec(sql);
      db.close();
    },
  },
  {
    name: 'postgres',
    kind: 'postgres',
    fresh: () => pg!.createDatabase(),
    exec: async (url, sql) => {
      const c = new Client({ connectionString: url });
      await c.connect();
      await c.query(sql);
      await c.end();
    },
  },
];

/** Opens a store, runs fn, closes it even when fn fails. */
async function withStoreOf<T>(url: string, options: OpenStoreOptions, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(url, options);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

for (const backend of backends) {
  describe(`store contract: ${backend.name}`, () => {
    const withStore = <T>(url: string, options: OpenStoreOptions, fn: (s: Store) => Promise<T>) =>
      withStoreOf(url, { ...backend.open, ...options }, fn);
    test('a new store is empty', async () => {
      await withStore(await backend.fresh(), {}, async (store) => {
        assert.equal(store.kind, backend.kind);
        assert.equal(store.windowSize, 64);
        assert.deepEqual(await store.stats(), { devices: 0, sessions: 0, payloads: 0 });
        assert.equal(await store.getDevice('dev-1'), undefined);
        assert.equal(await store.getSession('dev-1', kid(1)), undefined);
        assert.deepEqual(await store.listDevices(), []);
        assert.deepEqual(await store.listPayloads({ limit: 10 }), []);
        assert.equal(await store.countPayloads(), 0);
        assert.deepEqual(await store.commitBatch([]), []);
      });
    });

    test('putSession: stored, duplicate, kid-reused, kid-rollback; the floor only rises', async () => {
      await withStore(await backend.fresh(), {}, async (store) => {
        assert.equal(await store.putSession(session('dev-1', 1)), 'stored');
        const device = await store.getDevice('dev-1');
        assert.deepEqual(device, {
          deviceId: 'dev-1',
          kidFloor: kid(1),
          epoch: 0,
          sessions: 1,
          createdAt: T0 + 1,
          floorResetAt: null,
          certificateSerial: null,
        });
        assert.deepEqual(await store.getSession('dev-1', kid(1)), {
          ...session('dev-1', 1),
          epoch: 0,
          window: { size: 64, highest: null, bitmap: new Uint8Array(8) },
          accepted: 0,
          lastReceivedAt: null,
          certificateSerial: null,
          supersededAt: null,
          closedAt: null,
        });

        // the same key message again (same signed content): duplicate; another one under kid 1: kid-reused
        assert.equal(await store.putSession(session('dev-1', 1)), 'duplicate');
        assert.equal(await store.putSession(session('dev-1', 1, 'b')), 'kid-reused');
        assert.deepEqual((await store.getSession('dev-1', kid(1)))!.wrappedKey, session('dev-1', 1).wrappedKey);

        assert.equal(await store.putSession(session('dev-1', 3)), 'stored');
        assert.deepEqual((await store.getDevice('dev-1'))!.kidFloor, kid(3));
        assert.equal(await store.putSession(session('dev-1', 2)), 'kid-rollback', 'below the floor, not held');
        assert.equal(await store.putSession(session('dev-1', 1)), 'duplicate', 'below the floor but held');
        assert.equal(await store.putSession(session('dev-1', 1, 'c')), 'kid-reused');
        assert.equal(await store.getSession('dev-1', kid(2)), undefined);

        // kids compare by counter value: h'ff' (255) is below h'0100' (256)
        assert.equal(await store.putSession(session('dev-1', 256)), 'stored');
        assert.equal(await store.putSession(session('dev-1', 255)), 'kid-rollback');
        // kids are bounded: at most 2^53 − 1, and at most 65 536 above the floor (kid-too-far)
        assert.equal(await store.putSession(session('dev-1', 2n ** 64n - 1n)), 'kid-too-far');
        assert.equal(await store.putSession(session('dev-1', 256 + 65_537)), 'kid-too-far');
        assert.equal(await store.putSession(session('dev-1', 256 + 65_536)), 'stored');
        assert.deepEqual((await store.getDevice('dev-1'))!.kidFloor, kid(256 + 65_536));
        assert.equal(await store.putSession(session('dev-1', 65_536)), 'kid-rollback');

        // devices are independent
        assert.equal(await store.putSession(session('dev-2', 1)), 'stored');
        assert.equal((await store.getDevice('dev-1'))!.sessions, 4);
        assert.deepEqual(
          (await store.listDevices()).map((d) => [d.deviceId, toHex(d.kidFloor!)]),
          [
            ['dev-1', '010100'],
            ['dev-2', '01'],
          ],
        );
        assert.deepEqual(await store.stats(), { devices: 2, sessions: 5, payloads: 0 });
      });
    });

    test('putSession and commitBatch refuse malformed input and change nothing', async () => {
      await withStore(await backend.fresh(), {}, async (store) => {
        const good = session('dev-1', 1);
        await assert.rejects(store.putSession({ ...good, kid: Uint8Array.of(0, 1) }), /bad-kid|minimal/);
        await assert.rejects(store.putSession({ ...good, kid: new Uint8Array(0) }), /minimal/);
        await assert.rejects(store.putSession({ ...good, kid: Uint8Array.of(0) }), /minimal/);
        await assert.rejects(store.putSession({ ...good, kid: new Uint8Array(9).fill(1) }), /minimal/);
        await assert.rejects(store.putSession({ ...good, deviceId: 'a/b' }), /invalid device id/);
        await assert.rejects(store.putSession({ ...good, keyMessageDigest: new Uint8Array(31) }), /SHA-256/);
        await assert.rejects(store.putSession({ ...good, wrappedKey: new Uint8Array(0) }), /wrappedKey/);
        assert.deepEqual(await store.stats(), { devices: 0, sessions: 0, payloads: 0 });

        assert.equal(await store.putSession(good), 'stored');
        const batch = items('dev-1', 1, [0, 1]);
        for (const bad of [{ seq: -1 }, { seq: 2 ** 32 }, { seq: 1.5 }, { kid: Uint8Array.of(0, 1) }, { deviceId: '' }])
          await assert.rejects(store.commitBatch([...batch, { ...item('dev-1', 1, 2), ...bad }]), /seq|kid|device id/);
        assert.equal(await store.countPayloads(), 0, 'a batch with a bad item is refused whole');
        assert.equal((await store.getSession('dev-1', kid(1)))!.window.highest, null);
      });
    });

    test('commitBatch: accepted, duplicates within and across batches, unknown sessions', async () => {
      const t = clock();
      await withStore(await backend.fresh(), { now: t.now }, async (store) => {
        await store.putSession(session('dev-1', 1));
        await store.putSession(session('dev-2', 7));
        const first = [
          item('dev-1', 1, 0),
          item('dev-1', 1, 1),
          item('dev-1', 1, 1), // again in the same batch (QoS 1 redelivery arriving fast)
          item('dev-2', 7, 5),
          item('dev-1', 2, 0), // kid above the floor, no session yet: the service's pending buffer
          item('dev-2', 6, 0), // kid below the floor, no session
          item('dev-9', 1, 0), // unknown device
          item('dev-1', 1, 2),
        ];
        assert.deepEqual(await store.commitBatch(first), [
          'accepted',
          'accepted',
          'duplicate',
          'accepted',
          'unknown-session',
          'unknown-session',
          'unknown-session',
          'accepted',
        ]);
        t.set(T0 + 6_000);
        assert.deepEqual(await store.commitBatch([item('dev-1', 1, 1), item('dev-1', 1, 3), item('dev-2', 7, 5)]), [
          'duplicate',
          'accepted',
          'duplicate',
        ]);

        const listed = await store.listPayloads({ limit: 100 });
        assert.deepEqual(
          listed.map((p) => [
            p.deviceId,
            toHex(p.kid),
            p.seq,
            utf8Decode(p.payload),
            p.receivedAt,
            p.storedAt,
            p.epoch,
          ]),
          [
            ['dev-1', '01', 0, 'dev-1/1/0', T0 + 1000, T0 + 5000, 0],
            ['dev-1', '01', 1, 'dev-1/1/1', T0 + 1001, T0 + 5000, 0],
            ['dev-2', '07', 5, 'dev-2/7/5', T0 + 1005, T0 + 5000, 0],
            ['dev-1', '01', 2, 'dev-1/1/2', T0 + 1002, T0 + 5000, 0],
            ['dev-1', '01', 3, 'dev-1/1/3', T0 + 1003, T0 + 6000, 0],
          ],
        );
        assert.ok(
          listed.every((p, i) => i === 0 || p.id > listed[i - 1]!.id),
          'ids ascend',
        );
        const s = (await store.getSession('dev-1', kid(1)))!;
        assert.equal(s.window.highest, 3);
        assert.equal(s.accepted, 4);
        assert.equal(s.lastReceivedAt, T0 + 1003);
        assert.deepEqual([...s.window.bitmap], [0b1111, 0, 0, 0, 0, 0, 0, 0]);
        assert.equal(await store.countPayloads(), 5);
        assert.equal(await store.countPayloads('dev-2'), 1);
        assert.deepEqual(await store.stats(), { devices: 2, sessions: 2, payloads: 5 });
      });
    });

    test('commitBatch: replay left of the window, out of order inside it', async () => {
      await withStore(await backend.fresh(), {}, async (store) => {
        await store.putSession(session('dev-1', 1));
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [100])), ['accepted']);
        // sorted per session inside a batch: 36 is left of the window (100 − 64), 37 … 101 go in
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [40, 37, 36, 99, 101])), [
          'accepted',
          'accepted',
          'replay',
          'accepted',
          'accepted',
        ]);
        // 101 moved the window: 37 is now left of it, 38 inside and never seen
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [37, 38, 100, 0])), [
          'replay',
          'accepted',
          'duplicate',
          'replay',
        ]);
        // a batch that carries a jump and older numbers accepts the older ones first
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [500, 102, 103])), [
          'accepted',
          'accepted',
          'accepted',
        ]);
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [436, 437, 499, 500])), [
          'replay',
          'accepted',
          'accepted',
          'duplicate',
        ]);
        const s = (await store.getSession('dev-1', kid(1)))!;
        const w = ReplayWindow.deserialize(s.window);
        assert.equal(w.highest, 500);
        assert.deepEqual(
          [436, 437, 438, 499, 500, 501].map((n) => w.check(n)),
          ['too-old', 'duplicate', 'new', 'duplicate', 'duplicate', 'new'],
        );
        assert.equal(s.accepted, 11);
        assert.equal(await store.countPayloads(), 11);
        // seq 0 and 2^32 − 1 in a new session
        await store.putSession(session('dev-1', 2));
        assert.deepEqual(await store.commitBatch(items('dev-1', 2, [0, 2 ** 32 - 1, 2 ** 32 - 1])), [
          'accepted',
          'accepted',
          'duplicate',
        ]);
        assert.deepEqual(
          (await store.listPayloads({ limit: 2, after: (await store.listPayloads({ limit: 11 })).at(-1)!.id })).map(
            (p) => p.seq,
          ),
          [0, 2 ** 32 - 1],
        );
      });
    });

    test('a wider window (W = 1024) is stored and used', async () => {
      const url = await backend.fresh();
      await withStore(url, { windowSize: 1024 }, async (store) => {
        assert.equal(store.windowSize, 1024);
        await store.putSession(session('dev-1', 1));
        assert.deepEqual((await store.getSession('dev-1', kid(1)))!.window.bitmap.length, 128);
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [2000])), ['accepted']);
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [977, 976, 1500])), [
          'accepted',
          'replay',
          'accepted',
        ]);
      });
      // reopened with the default W = 64: the stored window is cut to the newest 64 numbers
      await withStore(url, {}, async (store) => {
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [1999, 1500, 2000])), [
          'accepted',
          'replay',
          'duplicate',
        ]);
        assert.equal((await store.getSession('dev-1', kid(1)))!.window.size, 64);
      });
    });

    test('resetKidFloor: a re-flashed device starts again at kid 1 in a new epoch', async () => {
      const t = clock();
      await withStore(await backend.fresh(), { now: t.now }, async (store) => {
        await store.putSession(session('dev-1', 1));
        await store.putSession(session('dev-1', 2));
        await store.commitBatch(items('dev-1', 1, [0, 1, 2]));
        assert.equal(await store.resetKidFloor('dev-9'), false, 'unknown device');
        t.set(T0 + 9_000);
        assert.equal(await store.resetKidFloor('dev-1'), true);
        assert.deepEqual(await store.getDevice('dev-1'), {
          deviceId: 'dev-1',
          kidFloor: null,
          epoch: 1,
          sessions: 0,
          createdAt: T0 + 1,
          floorResetAt: T0 + 9_000,
          certificateSerial: null,
        });
        assert.equal(await store.getSession('dev-1', kid(1)), undefined);
        assert.deepEqual(await store.commitBatch(items('dev-1', 2, [5])), ['unknown-session'], 'old sessions end');
        // the re-flashed device's new kid 1 is a new session, not kid-reused; its seq 0 is new data
        assert.equal(await store.putSession(session('dev-1', 1, 'reflashed')), 'stored');
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [0, 3])), ['accepted', 'accepted']);
        assert.equal(
          await store.putSession(session('dev-1', 1)),
          'kid-rollback',
          'the old key message was accepted before the reset: a replay, refused in every later epoch',
        );
        assert.equal(await store.putSession(session('dev-1', 2)), 'kid-rollback', 'a replay of kid 2 as well');
        assert.equal((await store.getDevice('dev-1'))!.kidFloor!.length, 1);
        const listed = await store.listPayloads({ deviceId: 'dev-1', limit: 10 });
        assert.deepEqual(
          listed.map((p) => [p.epoch, p.seq]),
          [
            [0, 0],
            [0, 1],
            [0, 2],
            [1, 0],
            [1, 3],
          ],
        );
        assert.deepEqual(await store.stats(), { devices: 1, sessions: 3, payloads: 5 });
        assert.equal((await store.getDevice('dev-1'))!.sessions, 1);
      });
    });

    test('everything persists across close and reopen', async () => {
      const url = await backend.fresh();
      await withStore(url, {}, async (store) => {
        await store.putSession(session('dev-1', 4));
        await store.putSession(session('dev-2', 1));
        await store.commitBatch([...items('dev-1', 4, [0, 1, 2, 70]), ...items('dev-2', 1, [9])]);
      });
      await withStore(url, {}, async (store) => {
        assert.deepEqual(await store.stats(), { devices: 2, sessions: 2, payloads: 5 });
        assert.deepEqual((await store.getDevice('dev-1'))!.kidFloor, kid(4));
        assert.equal(await store.putSession(session('dev-1', 4)), 'duplicate');
        assert.equal(await store.putSession(session('dev-1', 3)), 'kid-rollback');
        assert.equal((await store.getSession('dev-1', kid(4)))!.window.highest, 70);
        assert.deepEqual(await store.commitBatch([...items('dev-1', 4, [70, 6, 7, 2]), ...items('dev-2', 1, [9])]), [
          'duplicate',
          'replay',
          'accepted',
          'replay',
          'duplicate',
        ]);
        assert.equal(await store.countPayloads(), 6);
      });
    });

    test('listPayloads pages by id and filters by device', async () => {
      await withStore(await backend.fresh(), {}, async (store) => {
        await store.putSession(session('dev-a', 1));
        await store.putSession(session('dev-b', 1));
        const all: DataItem[] = [];
        for (let s = 0; s < 25; s++) all.push(item(s % 2 ? 'dev-a' : 'dev-b', 1, s));
        await store.commitBatch(all);
        const pages: number[][] = [];
        let after: number | undefined;
        for (;;) {
          const page = await store.listPayloads({ limit: 10, ...(after === undefined ? {} : { after }) });
          if (page.length === 0) break;
          pages.push(page.map((p) => p.seq));
          after = page.at(-1)!.id;
        }
        assert.deepEqual(
          pages.map((p) => p.length),
          [10, 10, 5],
        );
        assert.deepEqual(pages.flat(), [...Array(25).keys()]);
        const a = await store.listPayloads({ deviceId: 'dev-a', limit: 100 });
        assert.deepEqual(
          a.map((p) => p.seq),
          [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23],
        );
        assert.deepEqual(
          (await store.listPayloads({ deviceId: 'dev-a', after: a[9]!.id, limit: 100 })).map((p) => p.seq),
          [21, 23],
        );
        assert.equal(await store.countPayloads('dev-b'), 13);
        assert.equal(await store.countPayloads('dev-c'), 0);
        await assert.rejects(store.listPayloads({ limit: 0 }), RangeError);
        await assert.rejects(store.listPayloads({ limit: 10_001 }), RangeError);
      });
    });

    test('session lifetime: grace after a newer kid (time and payloads), closeSessions, keys purged', async () => {
      const t = clock();
      const grace = { ms: 1000, messages: 3 };
      await withStore(await backend.fresh(), { now: t.now, sessionGrace: grace }, async (store) => {
        assert.deepEqual(store.sessionGrace, grace);
        const put = (k: number, serial = 'aa') =>
          store.putSession({ ...session('dev-1', k), certificateSerial: serial });
        assert.equal(await put(1), 'stored');
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [0])), ['accepted']);
        assert.equal(await put(2), 'stored');
        const old = (await store.getSession('dev-1', kid(1)))!;
        assert.deepEqual([old.certificateSerial, old.supersededAt, old.closedAt], ['aa', t.now(), null]);
        assert.equal((await store.getSession('dev-1', kid(2)))!.supersededAt, null, 'the newest is not superseded');
        // At most 3 more payloads under the superseded session; duplicates are still duplicates.
        assert.deepEqual(await store.commitBatch(items('dev-1', 1, [1, 2, 3, 4, 0])), [
          'accepted',
          'accepted',
          'accepted',
          'closed',
          'duplicate',
        ]);
        assert.notEqual((await store.getSession('dev-1', kid(1)))!.closedAt, null);
        // The time grace: kid 2 is superseded by kid 3 now, and closes 1000 ms later.
        assert.equal(await put(3), 'stored');
        const superseded = t.now();
        t.set(superseded + 999);
        assert.deepEqual(await store.commitBatch(items('dev-1', 2, [0])), ['accepted']);
        t.set(superseded + 1000);
        assert.deepEqual(await store.commitBatch(items('dev-1', 2, [1])), ['closed']);
        assert.equal((await store.getSession('dev-1', kid(2)))!.closedAt, superseded + 1000);
        assert.deepEqual(await store.commitBatch(items('dev-1', 3, [0])), ['accepted'], 'the newest session is open');
        // The next stored kid purges the keys of the sessions whose grace is over.
        assert.equal(await put(4), 'stored');
        for (const k of [1, 2]) {
          const closed = (await store.getSession('dev-1', kid(k)))!;
          assert.equal(closed.wrappedKey.length, 0, `kid ${k}: key purged`);
          assert.notEqual(closed.closedAt, null);
        }
        assert.equal((await store.getSession('dev-1', kid(3)))!.closedAt, null, 'kid 3 is in its grace');
        // Closing by certificate (revocation): only that certificate's open sessions.
        assert.equal(await store.closeSessions('dev-1', { serial: 'bb' }), 0);
        assert.equal(await store.closeSessions('dev-1', { serial: 'aa', at: t.now() }), 2);
        assert.deepEqual(await store.commitBatch(items('dev-1', 4, [1])), ['closed']);
        assert.equal((await store.getSession('dev-1', kid(4)))!.wrappedKey.length, 0);
        assert.equal((await store.getSession('dev-1', kid(4)))!.closedAt, t.now());
        assert.equal(await store.closeSessions('dev-9'), 0);
        assert.equal(await store.countPayloads('dev-1'), 6);
      });
    });

    test('key messages replayed across epochs, and certificates: a new one starts an epoch, an old one is refused', async () => {
      const t = clock();
      await withStore(await backend.fresh(), { now: t.now }, async (store) => {
        assert.equal(await store.putSession(session('dev-1', 65_536)), 'stored', 'up to 65 536 above floor 0');
        assert.equal(await store.putSession(session('dev-1', 2n ** 53n)), 'kid-too-far');
        assert.equal(await store.resetKidFloor('dev-1'), true);
        assert.equal(await store.putSession(session('dev-1', 65_536)), 'kid-rollback', 'accepted before the reset');
        assert.equal((await store.getDevice('dev-1'))!.kidFloor, null, 'the floor stays reset');

        const put = (k: number, serial: string, version = 'a') =>
          store.putSession({ ...session('dev-2', k, version), certificateSerial: serial });
        assert.equal(await put(5, '01'), 'stored');
        assert.equal((await store.getDevice('dev-2'))!.certificateSerial, '01');
        assert.deepEqual(await store.commitBatch(items('dev-2', 5, [0])), ['accepted']);
        t.set(T0 + 7_000);
        // Re-enrolled: a new certificate. Its kid counter may start again: a new epoch, floor 0.
        assert.equal(await put(1, '02'), 'stored');
        const device = (await store.getDevice('dev-2'))!;
        assert.deepEqual(
          [device.epoch, device.kidFloor, device.certificateSerial, device.floorResetAt],
          [1, kid(1), '02', T0 + 7_000],
        );
        assert.deepEqual(await store.commitBatch(items('dev-2', 5, [1])), ['unknown-session']);
        assert.equal(await put(9, '01', 'b'), 'kid-rollback', 'the replaced certificate no longer counts');
        assert.equal(await put(1, '02'), 'duplicate');
        assert.equal(await put(2, '02'), 'stored');
        assert.equal((await store.getDevice('dev-2'))!.epoch, 1);
        assert.equal(await store.countPayloads('dev-2'), 1);
      });
    });

    test('a schema 1 database is migrated: older sessions get their grace, earlier epochs are closed', async () => {
      const url = await backend.fresh();
      const sqlite = backend.kind === 'sqlite';
      const bin = (b: Uint8Array) => (sqlite ? `x'${toHex(b)}'` : `'\\x${toHex(b)}'::bytea`);
      const row = (epoch: number, k: number) =>
        `('dev-1', ${epoch}, ${bin(kid(k))}, ${bin(utf8Encode('sealed'))}, ${bin(digest(`old:${epoch}:${k}`))}, 1, 64, NULL, ${bin(new Uint8Array(8))})`;
      await backend.exec(
        url,
        `${(sqlite ? SQLITE_MIGRATIONS : PG_MIGRATIONS)[0]}
         CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);
         INSERT INTO schema_version VALUES (1, 0);
         INSERT INTO devices (device_id, epoch, kid_floor, created_at) VALUES ('dev-1', 1, ${bin(kid(3))}, 1);
         INSERT INTO sessions (device_id, epoch, kid, wrapped_key, key_message_digest, created_at, win_size, win_highest, win_bitmap)
           VALUES ${row(0, 7)}, ${row(1, 2)}, ${row(1, 3)};`,
      );
      await withStore(url, {}, async (store) => {
        const [two, three] = [(await store.getSession('dev-1', kid(2)))!, (await store.getSession('dev-1', kid(3)))!];
        assert.notEqual(two.supersededAt, null, 'below the floor: its grace starts at the migration');
        assert.equal(two.closedAt, null);
        assert.deepEqual([three.supersededAt, three.closedAt, three.certificateSerial], [null, null, null]);
        assert.deepEqual(await store.commitBatch(items('dev-1', 2, [0])), ['accepted']);
        assert.equal((await store.getDevice('dev-1'))!.certificateSerial, null);
        // The old epoch's key message is a replay now; a new session (with its certificate) is stored.
        assert.equal(
          await store.putSession({ ...session('dev-1', 7), keyMessageDigest: digest('old:0:7') }),
          'kid-rollback',
        );
        assert.equal(await store.putSession({ ...session('dev-1', 4), certificateSerial: '0a' }), 'stored');
        assert.equal((await store.getDevice('dev-1'))!.certificateSerial, '0a');
      });
    });

    test('refuses a database whose schema is newer than the code', async () => {
      const url = await backend.fresh();
      await withStore(url, {}, async () => {});
      await backend.exec(url, 'INSERT INTO schema_version (version, applied_at) VALUES (99, 0)');
      await assert.rejects(openStore(url, backend.open), /schema version 99/);
    });
  });
}

describe('openStore', () => {
  test('chooses the store by URL and explains anything else', async () => {
    const file = join(tmp, 'open.db');
    await withStoreOf(`sqlite:${file}`, {}, async (s) => assert.equal(s.kind, 'sqlite'));
    await withStoreOf(`sqlite:${file}`, { writerThread: true }, async (s) => {
      assert.equal(s.kind, 'sqlite');
      assert.ok(s instanceof SqliteWriterThread);
    });
    const url = await pg!.createDatabase();
    await withStoreOf(url, {}, async (s) => assert.equal(s.kind, 'postgres'));
    await withStoreOf(url.replace('postgres://', 'postgresql://'), {}, async (s) => assert.equal(s.kind, 'postgres'));
    await assert.rejects(openStore('sqlite:'), /needs a file name/);
    await assert.rejects(openStore('store.db'), /unsupported store URL "store.db": use sqlite:FILE/);
    await assert.rejects(openStore('mysql://user:secret@db/x'), (e: Error) => {
      assert.match(e.message, /unsupported store URL mysql:\/\/user:\*\*\*@db\/x/);
      assert.doesNotMatch(e.message, /secret/);
      return true;
    });
    await assert.rejects(openStore(`postgres://nobody:secret@127.0.0.1:${pg!.port}/no_such_db`), (e: Error) =>
      /cannot open the PostgreSQL store at postgres:\/\/nobody:\*\*\*@/.test(e.message),
    );
  });
});

function shuffle<T>(list: T[], random: () => number): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

const CONCURRENT_SESSIONS: [string, number][] = [
  ['dev-1', 1],
  ['dev-1', 2],
  ['dev-2', 1],
  ['dev-2', 9],
];
const PER_SESSION = 500;

/**
 * 2,000 items (4 sessions × seq 0 … 499) committed by 3 instances at once, each walking the
 * stream in order (as messages arrive) in its own batch sizes, each batch repeating the tail of
 * the previous one and shuffled (sessions in any order). `run` commits each instance's batches
 * sequentially, the instances concurrently, and returns the results per instance and batch.
 * Every item must be accepted by exactly one instance and stored once, and every window must end
 * full at seq 499.
 */
async function exactlyOnce(url: string, run: (batches: DataItem[][][]) => Promise<CommitResult[][][]>) {
  const stream: DataItem[] = [];
  for (let seq = 0; seq < PER_SESSION; seq++) for (const [d, k] of CONCURRENT_SESSIONS) stream.push(item(d, k, seq));
  await withStoreOf(url, {}, async (store) => {
    for (const [d, k] of CONCURRENT_SESSIONS) await store.putSession(session(d, k));
  });
  const plans = [
    { size: 40, overlap: 8, seed: 1 },
    { size: 57, overlap: 13, seed: 2 },
    { size: 40, overlap: 8, seed: 3 },
  ];
  const batches = plans.map(({ size, overlap, seed }) => {
    const random = prng(seed);
    const list: DataItem[][] = [];
    for (let start = 0; start < stream.length; start += size)
      list.push(shuffle(stream.slice(Math.max(0, start - overlap), start + size), random));
    return list;
  });
  const started = performance.now();
  const results = await run(batches);
  const elapsed = performance.now() - started;

  const key = (it: DataItem) => `${it.deviceId}/${toHex(it.kid)}/${it.seq}`;
  const acceptedBy = new Map<string, number>();
  const totals: Record<CommitResult, number> = {
    accepted: 0,
    duplicate: 0,
    replay: 0,
    'unknown-session': 0,
    closed: 0,
  };
  let committed = 0;
  for (const [n, list] of batches.entries()) {
    for (const [b, batch] of list.entries()) {
      const r = results[n]![b]!;
      assert.equal(r.length, batch.length);
      committed += batch.length;
      r.forEach((verdict, i) => {
        totals[verdict]++;
        if (verdict === 'accepted') acceptedBy.set(key(batch[i]!), (acceptedBy.get(key(batch[i]!)) ?? 0) + 1);
      });
    }
  }
  assert.equal(totals.accepted, stream.length, `accepted overall: ${JSON.stringify(totals)}`);
  assert.equal(acceptedBy.size, stream.length);
  assert.ok(
    [...acceptedBy.values()].every((n) => n === 1),
    'no item accepted twice',
  );
  assert.equal(totals['unknown-session'], 0);
  // an instance that lags more than W behind another gets 'replay' for what the other stored
  assert.equal(totals.accepted + totals.duplicate + totals.replay, committed);
  await withStoreOf(url, {}, async (store) => {
    assert.equal(await store.countPayloads(), stream.length);
    const rows = await store.listPayloads({ limit: 10_000 });
    assert.equal(new Set(rows.map((p) => `${p.deviceId}/${toHex(p.kid)}/${p.seq}`)).size, stream.length);
    assert.ok(rows.every((p) => utf8Decode(p.payload) === `${p.deviceId}/${p.kid[0]}/${p.seq}`));
    for (const [d, k] of CONCURRENT_SESSIONS) {
      const s = (await store.getSession(d, kid(k)))!;
      assert.equal(s.window.highest, PER_SESSION - 1, `${d}/${k}`);
      assert.deepEqual([...s.window.bitmap], new Array(8).fill(0xff), `${d}/${k}: the last 64 all accepted`);
      assert.equal(s.accepted, PER_SESSION, `${d}/${k}`);
    }
  });
  console.log(
    `3 instances, ${batches.flat().length} batches of ${committed} items: ${JSON.stringify(totals)} in ${Math.round(elapsed)} ms`,
  );
}

describe('SQLite: several processes on one file', () => {
  test('3 instances (threads) commit overlapping batches of the same 2,000 items: each stored once', async () => {
    const url = `sqlite:${join(tmp, 'shared.db')}`;
    const worker = new URL('./store-worker.js', import.meta.url);
    await exactlyOnce(url, (batches) =>
      Promise.all(
        batches.map(
          (list) =>
            new Promise<CommitResult[][]>((resolve, reject) => {
              const w = new Worker(worker, { workerData: { url, batches: list } });
              w.once('message', resolve);
              w.once('error', reject);
              w.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
            }),
        ),
      ),
    );
  });
});

describe('PostgreSQL: several service instances', () => {
  test('3 instances open a new database at once: one schema', async () => {
    const url = await pg!.createDatabase();
    const stores = await Promise.all([0, 1, 2].map(() => openStore(url, { maxConnections: 2 })));
    try {
      assert.deepEqual(
        await Promise.all(stores.map((s) => s.stats())),
        [0, 1, 2].map(() => ({ devices: 0, sessions: 0, payloads: 0 })),
      );
      // the same key message reaching all three at once (shared subscription, redelivery)
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all(stores.map((s) => s.putSession(session('dev-1', round + 1))));
        assert.deepEqual(results.sort(), ['duplicate', 'duplicate', 'stored']);
      }
      assert.deepEqual((await stores[0]!.getDevice('dev-1'))!.kidFloor, kid(5));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test('3 instances commit overlapping batches of the same 2,000 items: each stored exactly once', async () => {
    const url = await pg!.createDatabase();
    await exactlyOnce(url, async (batches) => {
      const stores = await Promise.all(batches.map(() => openStore(url, { maxConnections: 3 })));
      try {
        return await Promise.all(
          batches.map(async (list, n) => {
            const out: CommitResult[][] = [];
            for (const batch of list) out.push(await stores[n]!.commitBatch(batch));
            return out;
          }),
        );
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });
  });
});
