/**
 * commitBatch throughput of the cloud stores on this machine: payloads per second for batch sizes
 * 1, 10 and 100, on SQLite (a temporary file, WAL, synchronous FULL and NORMAL) and PostgreSQL (a
 * throwaway server from Debian's binaries with its durable defaults: fsync on,
 * synchronous_commit on). Each batch is one transaction; one writer at a time, except the last
 * PostgreSQL lines (several instances on separate sessions).
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/store.js [seconds-per-case]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DataItem, type OpenStoreOptions, openStore, type Store } from '../cloud/store/index.js';
import { encodeKid } from '../src/profile/counter.js';
import { startPostgres } from '../test/fixtures/postgres.js';

const seconds = Number(process.argv[2] ?? 1);
const PAYLOAD = new Uint8Array(64).fill(0x5a);
const SESSIONS = 4;

async function prepare(store: Store, device: string): Promise<void> {
  for (let k = 1; k <= SESSIONS; k++) {
    await store.putSession({
      deviceId: device,
      kid: encodeKid(k),
      wrappedKey: new Uint8Array(60).fill(k),
      keyMessageDigest: new Uint8Array(32).fill(k),
      createdAt: Date.now(),
    });
  }
}

/** Commits batches of `size` new payloads (sessions round-robin) for `seconds`; payloads per second. */
async function run(store: Store, device: string, size: number, warmup = 5): Promise<number> {
  const next = new Array<number>(SESSIONS + 1).fill(0);
  const batch = (): DataItem[] => {
    const items: DataItem[] = [];
    for (let i = 0; i < size; i++) {
      const k = 1 + (i % SESSIONS);
      items.push({ deviceId: device, kid: encodeKid(k), seq: next[k]!++, receivedAt: Date.now(), payload: PAYLOAD });
    }
    return items;
  };
  for (let i = 0; i < warmup; i++) await store.commitBatch(batch());
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const results = await store.commitBatch(batch());
    if (results.some((r) => r !== 'accepted')) throw new Error(`unexpected results: ${results.join(',')}`);
    n += size;
  }
  return n / ((performance.now() - start) / 1000);
}

function line(name: string, size: number, rate: number): void {
  console.log(
    `${name.padEnd(44)} batch ${String(size).padStart(3)}  ${Math.round(rate).toString().padStart(8)} payloads/s  ${Math.round(
      rate / size,
    )
      .toString()
      .padStart(6)} commits/s`,
  );
}

async function bench(name: string, url: string, options: OpenStoreOptions = {}): Promise<void> {
  for (const size of [1, 10, 100]) {
    const store = await openStore(url, options);
    try {
      const device = `bench-${size}`;
      await prepare(store, device);
      line(name, size, await run(store, device, size));
    } finally {
      await store.close();
    }
  }
}

console.log(`node ${process.version}, ${PAYLOAD.length}-byte payloads, ${seconds} s per case`);
const dir = mkdtempSync(join(tmpdir(), 'cose-flow-bench-'));
try {
  await bench('sqlite, WAL, synchronous=FULL (default)', `sqlite:${join(dir, 'full.db')}`);
  await bench('sqlite, WAL, synchronous=NORMAL', `sqlite:${join(dir, 'normal.db')}`, { synchronous: 'normal' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const pg = await startPostgres({ durable: true });
try {
  console.log(`postgresql ${pg.version} on 127.0.0.1, fsync on, synchronous_commit on`);
  const url = await pg.createDatabase();
  await bench('postgres, 1 writer', url);
  for (const writers of [4]) {
    const stores = await Promise.all(Array.from({ length: writers }, () => openStore(url, { maxConnections: 1 })));
    try {
      for (const size of [10, 100]) {
        await Promise.all(stores.map((s, i) => prepare(s, `conc-${size}-${i}`)));
        const rates = await Promise.all(stores.map((s, i) => run(s, `conc-${size}-${i}`, size)));
        line(
          `postgres, ${writers} instances (own sessions), total`,
          size,
          rates.reduce((a, b) => a + b, 0),
        );
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  }
} finally {
  await pg.stop();
}
