/**
 * The demo's exactly-once check counts only what this run stored. A PostgreSQL store outlives a
 * deleted data directory, so it can hold an earlier run's rows with the same device ids, kids and
 * seqs as this run's (new devices count their kids from 1 again): those rows must never stand in
 * for this run's messages.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../cli/main.js';
import type { StoredPayload } from '../../cloud/store/store.js';
import { countStored, type DemoSummary, type Ledger, ledgerKey } from '../../system/demo.js';
import { capturingIo } from '../fixtures/cli-io.js';
import { startPostgres } from '../fixtures/postgres.js';

const row = (deviceId: string, kid: number, seq: number, storedAt: number, id: number): StoredPayload => ({
  id,
  deviceId,
  epoch: 1,
  kid: Uint8Array.of(kid),
  seq,
  receivedAt: storedAt,
  storedAt,
  payload: new Uint8Array(0),
});

test('countStored: rows committed before the run started are not this run’s, whatever their kid and seq', () => {
  const began = 1_000_000;
  const ledger: Ledger = {
    kids: new Set(['01']),
    sealed: new Set([ledgerKey('01', 1), ledgerKey('01', 2)]),
    acknowledged: new Set([ledgerKey('01', 1), ledgerKey('01', 2)]),
  };
  const ledgers = new Map([['dev-1', ledger]]);
  // an earlier run stored kid 01 seq 1, 2 and 3; this run's seq 1 and 2 were refused (not stored)
  const old = [
    row('dev-1', 1, 1, began - 5000, 1),
    row('dev-1', 1, 2, began - 4000, 2),
    row('dev-1', 1, 3, began - 3000, 3),
  ];
  const before = countStored(ledgers, old, began);
  assert.equal(before.per.get('dev-1')!.size, 0, 'no row of this run');
  assert.equal(before.unexpected, 0, "the earlier run's seq 3 is not an unexpected row of this run");

  const now = [
    ...old,
    row('dev-1', 1, 1, began + 10, 4),
    row('dev-1', 1, 1, began + 20, 5),
    row('dev-1', 1, 9, began + 30, 6),
  ];
  const after = countStored(ledgers, now, began);
  assert.equal(after.per.get('dev-1')!.get(ledgerKey('01', 1)), 2, 'stored twice in this run');
  assert.equal(after.per.get('dev-1')!.get(ledgerKey('01', 2)), undefined, 'seq 2 missing in this run');
  assert.equal(after.unexpected, 1, 'seq 9 was never sealed');
  assert.equal(countStored(new Map(), now, began).per.size, 0, 'rows of devices outside the run are ignored');
});

test('the demo on a kept PostgreSQL store after the data directory was deleted: only this run’s rows count', async () => {
  const pg = await startPostgres();
  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-demo-fresh-'));
  try {
    const store = await pg.createDatabase();
    const dataDir = join(tmp, 'data');
    const args = [
      '--data-dir',
      dataDir,
      '--store',
      store,
      '--duration',
      '4',
      '--json',
      '--no-dashboard',
      '--devices',
      '2',
    ];
    const first = capturingIo();
    const firstCode = await main(['demo', ...args], first);
    assert.equal(firstCode, 0, `exit ${firstCode}\n${first.err}\n${first.out}`);
    const one = JSON.parse(first.out) as DemoSummary;

    rmSync(dataDir, { recursive: true, force: true }); // the storage key, the CA and the devices go
    const second = capturingIo();
    const code = await main(['demo', ...args], second);
    assert.notEqual(second.out, '', `no summary (exit ${code}):\n${second.err}`);
    const two = JSON.parse(second.out) as DemoSummary;
    for (const d of two.devices) {
      const earlier = one.devices.find((x) => x.deviceId === d.deviceId);
      assert.ok(
        earlier?.kids.some((k) => d.kids.includes(k)),
        `${d.deviceId} reuses a kid`,
      );
      assert.equal(d.stored + d.missing, d.acknowledged, `${d.deviceId}: each acknowledged message counted once`);
    }
    const stored = two.devices.reduce((n, d) => n + d.stored, 0);
    const acknowledged = two.devices.reduce((n, d) => n + d.acknowledged, 0);
    // Either the new devices' messages were stored (exit 0) or they were refused, and then the
    // check says so (exit 1) with the reasons: it never counts the first run's rows for them.
    if (two.exactlyOnce) {
      assert.equal(stored, acknowledged);
      assert.equal(code, 0, `${second.err}\n${second.out}`);
    } else {
      assert.ok(Object.keys(two.rejected).length > 0, 'refusals are reported by reason');
      assert.equal(code, 1, `${second.err}\n${second.out}`);
    }
  } finally {
    await pg.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});
