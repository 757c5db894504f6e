/**
 * The proof for `npm start`: `cose-flow demo` run headless for 20 s (as a child process,
 * exactly as a newcomer starts it) must show every simulated device establishing a session and
 * deliver every QoS 1 message exactly once — checked from the demo's own output and, separately,
 * from the SQLite file it leaves, with plain SQL. The attacker runs throughout; none of what it
 * injects may be stored. The other runs here (a second run, real servers, usage errors, failures)
 * go through `main` in this process: they check the command, not the launcher.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { decodeReading } from '../../src/device/reading.js';
import type { DemoSummary } from '../../system/demo.js';
import { mosquittoAvailability, startMosquitto } from '../fixtures/mosquitto.js';
import { startPostgres } from '../fixtures/postgres.js';
import { demoFailure, runDemo, runDemoInProcess } from './run-demo.js';

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-demo-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface PayloadRow {
  device_id: string;
  kid: Buffer;
  seq: number;
  payload: Buffer;
}

/** What the store holds for the sessions (kids) a run started: device → "kid/seq" → rows. */
function storedRows(dbFile: string, summary: DemoSummary): Map<string, Map<string, PayloadRow[]>> {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const out = new Map<string, Map<string, PayloadRow[]>>();
    const rows = db.prepare('SELECT device_id, kid, seq, payload FROM payloads').all() as PayloadRow[];
    for (const d of summary.devices) out.set(d.deviceId, new Map());
    for (const row of rows) {
      const kidHex = row.kid.toString('hex');
      const device = summary.devices.find((d) => d.deviceId === row.device_id);
      if (device === undefined || !device.kids.includes(kidHex)) continue;
      const k = `${kidHex}/${row.seq}`;
      const perDevice = out.get(row.device_id)!;
      perDevice.set(k, [...(perDevice.get(k) ?? []), row]);
    }
    return out;
  } finally {
    db.close();
  }
}

function sessionKids(dbFile: string): Map<string, string[]> {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const out = new Map<string, string[]>();
    for (const r of db.prepare('SELECT device_id, kid FROM sessions').all() as { device_id: string; kid: Buffer }[])
      out.set(r.device_id, [...(out.get(r.device_id) ?? []), r.kid.toString('hex')]);
    return out;
  } finally {
    db.close();
  }
}

describe('cose-flow demo (npm start), headless', () => {
  const dataDir = join(tmp, 'data');
  let first: DemoSummary;

  test('20 s: every device establishes a session; every QoS 1 message is stored exactly once; attacks are refused', async () => {
    const run = runDemo(['--data-dir', dataDir, '--duration', '20', '--json', '--http', '0', '--attack-every', '3']);
    const code = await run.exit();
    assert.equal(code, 0, demoFailure(run, code));
    first = JSON.parse(run.stdout()) as DemoSummary;

    // The output: the progress lines and the summary.
    assert.match(run.stderr(), /made a CA in /);
    assert.match(run.stderr(), /^dashboard: http:\/\/127\.0\.0\.1:\d+\/$/m);
    assert.match(run.stderr(), /3\/3 devices with a session/);
    assert.equal(first.devices.length, 3);
    assert.equal(first.allSessions, true);
    assert.equal(first.exactlyOnce, true);
    assert.equal(first.qos, 1);
    assert.equal(first.undrained, 0);
    assert.equal(first.totals.errors, 0, run.stderr());
    for (const d of first.devices) {
      assert.ok(d.kids.length >= 1, `${d.deviceId} started a session`);
      assert.ok(d.acknowledged >= 10, `${d.deviceId} sent readings for ~18 s: ${d.acknowledged}`);
      assert.equal(d.sealed, d.acknowledged, `${d.deviceId}: every sealed message was delivered before the stop`);
      assert.equal(d.stored, d.acknowledged);
      assert.equal(d.missing, 0);
    }
    assert.equal(first.deliveredTwice, 0);
    assert.equal(first.unexpected, 0);
    assert.equal(
      first.delivered,
      first.devices.reduce((n, d) => n + d.acknowledged, 0),
      'the service delivered exactly what the devices had acknowledged',
    );

    // The attacks: injected, refused with their reasons, never stored.
    assert.ok(first.attack !== null && first.attack.rounds >= 4, JSON.stringify(first.attack));
    for (const kind of ['replay', 'tampered', 'key-replay', 'forged-certificate', 'garbage'] as const)
      assert.ok(first.attack!.injected[kind] >= 1, `${kind} injected`);
    assert.ok((first.rejected['decrypt-failed'] ?? 0) >= first.attack!.injected.tampered, 'tampered → decrypt-failed');
    assert.ok(
      (first.rejected['device-mismatch'] ?? 0) >= first.attack!.injected['key-replay'],
      'key-replay → device-mismatch',
    );
    assert.ok((first.rejected['bad-certificate'] ?? 0) >= first.attack!.injected['forged-certificate']);
    assert.ok(first.duplicates >= 1, 'replays inside the window are acknowledged as duplicates');

    // The store, read with plain SQL: one row per acknowledged message, each a reading.
    const dbFile = join(dataDir, 'cose-flow.db');
    const stored = storedRows(dbFile, first);
    const sessions = sessionKids(dbFile);
    for (const d of first.devices) {
      const rows = stored.get(d.deviceId)!;
      assert.equal(rows.size, d.acknowledged, `${d.deviceId}: stored messages`);
      for (const [k, copies] of rows) {
        assert.equal(copies.length, 1, `${d.deviceId} ${k} stored once`);
        const reading = decodeReading(new Uint8Array(copies[0]!.payload));
        assert.equal(typeof reading.temperature, 'number');
      }
      for (const kid of d.kids)
        assert.ok(sessions.get(d.deviceId)?.includes(kid), `${d.deviceId} session ${kid} stored`);
    }
    assert.ok(existsSync(join(dataDir, 'logs', 'cloud.log')));
  });

  test('a second run reuses the CA and the devices, with new session kids', async () => {
    assert.ok(first !== undefined, 'needs the first run');
    const run = runDemoInProcess([
      '--data-dir',
      dataDir,
      '--duration',
      '4',
      '--json',
      '--no-dashboard',
      '--devices',
      '2',
    ]);
    const code = await run.exit();
    assert.equal(code, 0, demoFailure(run, code));
    assert.doesNotMatch(run.stderr(), /made a CA|enrolled/);
    const second = JSON.parse(run.stdout()) as DemoSummary;
    assert.equal(second.exactlyOnce, true);
    for (const d of second.devices) {
      const before = first.devices.find((x) => x.deviceId === d.deviceId)!;
      const newest = (kids: string[]) => Math.max(...kids.map((k) => Number.parseInt(k, 16)));
      assert.ok(newest(d.kids) > newest(before.kids), `${d.deviceId}: kid ${d.kids} after ${before.kids}`);
    }
  });

  const mq = mosquittoAvailability('the demo against mosquitto and PostgreSQL');
  test('--broker mosquitto and --store postgres: the same flow on real servers', {
    skip: mq.run ? false : mq.why,
  }, async () => {
    const [broker, pg] = await Promise.all([startMosquitto(), startPostgres()]);
    try {
      const store = await pg.createDatabase();
      const run = runDemoInProcess([
        '--data-dir',
        join(tmp, 'real'),
        '--broker',
        broker.url,
        '--store',
        store,
        '--duration',
        '6',
        '--rate',
        '5',
        '--json',
        '--no-dashboard',
      ]);
      const code = await run.exit();
      assert.equal(code, 0, demoFailure(run, code));
      const summary = JSON.parse(run.stdout()) as DemoSummary;
      assert.match(summary.store, /^postgres:\/\//);
      assert.equal(summary.allSessions, true);
      assert.equal(summary.exactlyOnce, true);
      assert.ok(summary.devices.every((d) => d.acknowledged >= 10 && d.stored === d.acknowledged));
      assert.ok(!existsSync(join(tmp, 'real', 'cose-flow.db')), 'no SQLite file when the store is PostgreSQL');
    } finally {
      await Promise.all([broker.close(), pg.stop()]);
    }
  });

  test('usage errors exit 2 and start nothing', async () => {
    for (const args of [
      ['--devices', '0'],
      ['--rate', 'x'],
      ['--qos', '2'],
      ['--broker', 'http://x'],
      ['--store', 'mysql://x'],
      ['--http', 'nope'],
      ['--http', '0', '--no-dashboard'],
      ['--broker', 'mqtt://127.0.0.1:1', '--mqtt-port', '1883'],
      ['extra'],
    ]) {
      const run = runDemoInProcess(['--data-dir', join(tmp, 'usage'), ...args]);
      assert.equal(await run.exit(), 2, `${args.join(' ')}: ${run.stderr()}`);
      assert.match(run.stderr(), /cose-flow demo: /);
    }
    assert.ok(!existsSync(join(tmp, 'usage')), 'nothing written on a usage error');
  });

  test('an unreachable broker is a clear failure, not a hang', async () => {
    const run = runDemoInProcess([
      '--data-dir',
      join(tmp, 'nobroker'),
      '--broker',
      'mqtt://127.0.0.1:1',
      '--no-dashboard',
    ]);
    const code = await run.exit(60_000);
    assert.equal(code, 1, demoFailure(run, code));
    assert.match(run.stderr(), /cannot connect to mqtt:\/\/127\.0\.0\.1:1: connection refused/);
  });
});

describe('cose-flow demo: devices that cannot enroll', () => {
  test('are reported on the terminal, and the demo still stops with a summary that says so', async () => {
    const dataDir = join(tmp, 'conflict');
    const setup = runDemoInProcess([
      '--data-dir',
      dataDir,
      '--devices',
      '1',
      '--duration',
      '2',
      '--json',
      '--no-dashboard',
    ]);
    const setupCode = await setup.exit();
    assert.equal(setupCode, 0, demoFailure(setup, setupCode));
    // The device loses its key (a re-flashed board): the CA refuses its new key for the same id.
    rmSync(join(dataDir, 'sim', 'sim-0001'), { recursive: true, force: true });
    const started = Date.now();
    const run = runDemoInProcess(['--data-dir', dataDir, '--devices', '1', '--duration', '3', '--no-dashboard']);
    const code = await run.exit(60_000);
    assert.equal(code, 1, demoFailure(run, code));
    assert.ok(Date.now() - started < 20_000, 'no hang while the device waits to retry its enrollment');
    assert.match(run.stderr(), /device sim-0001: enroll-refused: key-conflict: .*an operator must allow a re-key/);
    assert.match(run.stdout(), /sim-0001: session kid none/);
    assert.match(run.stdout(), /sessions: NOT every device established one/);
  });
});
