/**
 * The SQLite writer thread (cloud/store/writer-thread.ts) beyond the store contract suite, which
 * store.test.ts runs against it: errors keep their class across the thread, calls reach the
 * database in the order they were made, the caller's clock is the store's, a closed store refuses
 * calls, and an idle writer thread does not keep the process alive.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openSqliteWriterThread } from '../../cloud/store/writer-thread.js';
import { utf8Encode } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import { encodeKid } from '../../src/profile/counter.js';

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-writer-thread-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const file = () => join(tmp, `w-${++n}.db`);
const digest = (t: string) => new Uint8Array(createHash('sha256').update(t).digest());
const session = (deviceId: string, kid: number) => ({
  deviceId,
  kid: encodeKid(kid),
  wrappedKey: utf8Encode('wrapped'),
  keyMessageDigest: digest(`${deviceId}:${kid}`),
  createdAt: 1,
});

test('errors keep their class and reason across the thread', async () => {
  const store = await openSqliteWriterThread(file());
  try {
    await assert.rejects(store.putSession({ ...session('d', 1), kid: Uint8Array.of(0, 1) }), (e: unknown) => {
      assert.ok(e instanceof CoseError);
      assert.equal(e.reason, 'bad-kid');
      return true;
    });
    await assert.rejects(store.listPayloads({ limit: 0 }), RangeError);
  } finally {
    await store.close();
  }
});

test('calls made without waiting commit in the order they were made; the clock is the caller’s', async () => {
  let now = 5_000;
  const store = await openSqliteWriterThread(file(), { now: () => now });
  try {
    assert.equal(await store.putSession(session('d', 1)), 'stored');
    const calls = [];
    for (let seq = 0; seq < 50; seq++) {
      now = 10_000 + seq;
      calls.push(
        store.commitBatch([{ deviceId: 'd', kid: encodeKid(1), seq, receivedAt: seq, payload: utf8Encode(`p${seq}`) }]),
      );
    }
    assert.deepEqual(await Promise.all(calls), Array(50).fill(['accepted']));
    const stored = await store.listPayloads({ limit: 100 });
    assert.deepEqual(
      stored.map((p) => [p.seq, p.storedAt, new TextDecoder().decode(p.payload)]),
      stored.map((_, seq) => [seq, 10_000 + seq, `p${seq}`]),
    );
  } finally {
    await store.close();
  }
  await assert.rejects(store.stats(), /closed|exited/);
});

test('an open, idle writer thread does not keep the process alive', () => {
  const module = fileURLToPath(new URL('../../cloud/store/writer-thread.js', import.meta.url));
  const script = `import(${JSON.stringify(module)}).then(async (m) => { const s = await m.openSqliteWriterThread(${JSON.stringify(file())}); await s.stats(); console.log('opened'); });`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /opened/);
});
