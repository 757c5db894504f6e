/**
 * `cose-flow cloud run` mistakes get one line naming the thing and what to do, exit 1, and nothing
 * written: no data directory, no cloud key, a database in a missing directory, a broker that refuses
 * or never answers, a damaged storage key, and a second instance with the same MQTT client id.
 * In-process through `main`, except the running first instance (a real process).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../cli/main.js';
import { BIN, capturingIo } from '../fixtures/cli-io.js';
import { mosquittoAvailability, startMosquitto, type TestMosquitto } from '../fixtures/mosquitto.js';

let tmp: string;
let data: string;
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cose-flow-cloud-run-errors-'));
  data = join(tmp, 'data');
  const io = capturingIo();
  assert.equal(await main(['ca', 'init', '--data-dir', data], io), 0, io.err);
  assert.equal(await main(['cloud', 'keygen', '--data-dir', data], io), 0, io.err);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; err: string }> {
  const io = capturingIo();
  const code = await main(['cloud', 'run', ...argv], io);
  return { code, err: io.err };
}

test('a missing data directory, a missing cloud key, a database in a missing directory', async () => {
  const missing = join(tmp, 'nowhere');
  let r = await run(['--broker', 'mqtt://127.0.0.1:1', '--data-dir', missing]);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`the data directory ${missing} does not exist`));
  assert.equal(existsSync(missing), false, 'nothing made');

  const noKey = join(tmp, 'ca-only');
  assert.equal(await main(['ca', 'init', '--data-dir', noKey], capturingIo()), 0);
  r = await run(['--broker', 'mqtt://127.0.0.1:1', '--data-dir', noKey]);
  assert.equal(r.code, 1);
  assert.match(r.err, /no cloud key in .*run `cose-flow cloud keygen/);

  r = await run(['--broker', 'mqtt://127.0.0.1:1', '--data-dir', data, '--store', `sqlite:${join(tmp, 'no', 'x.db')}`]);
  assert.equal(r.code, 1);
  assert.match(r.err, /cannot create the database .*x\.db: the directory .*no does not exist/);
  for (const line of r.err.trim().split('\n')) assert.doesNotMatch(line, /^\s+at /, 'no stack trace');
});

test('a broker that refuses, and one that accepts but never answers: named, nothing written', async () => {
  let r = await run(['--broker', 'mqtt://127.0.0.1:1', '--data-dir', data]);
  assert.equal(r.code, 1);
  assert.match(r.err, /^connecting to mqtt:\/\/127\.0\.0\.1:1…\n/);
  assert.match(r.err, /cannot connect to mqtt:\/\/127\.0\.0\.1:1: connection refused/);

  const silent: Server = createServer(() => {}); // takes the connection, says nothing
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as { port: number }).port;
  try {
    r = await run(['--broker', `mqtt://127.0.0.1:${port}`, '--data-dir', data]);
  } finally {
    silent.close();
  }
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`127\\.0\\.0\\.1:${port} .*did not answer the MQTT CONNECT within 10 s`));
  assert.ok(!readdirSync(data).includes('storage.key'), 'no storage key written before the broker answered');
  assert.ok(!readdirSync(data).includes('cose-flow.db'), 'no database made before the broker answered');
});

const mq = mosquittoAvailability('the cloud run error tests against mosquitto');
let broker: TestMosquitto | undefined;
after(async () => broker?.close());

test('a damaged storage key is an error (exit 1, not a usage error) that says to restore it', {
  skip: mq.run ? false : mq.why,
}, async () => {
  broker ??= await startMosquitto();
  const dir = join(tmp, 'damaged');
  assert.equal(await main(['ca', 'init', '--data-dir', dir], capturingIo()), 0);
  assert.equal(await main(['cloud', 'keygen', '--data-dir', dir], capturingIo()), 0);
  writeFileSync(join(dir, 'storage.key'), 'not a key\n', { mode: 0o600 });
  const r = await run(['--broker', broker.url, '--data-dir', dir]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /storage\.key must hold the storage key as 64 hex digits .*restore it from your backup/);
  assert.doesNotMatch(r.err, /--help/, 'not a usage error');
});

test('a second cloud run with the same client id on the same data directory is refused', {
  skip: mq.run ? false : mq.why,
}, async () => {
  broker ??= await startMosquitto();
  const first: ChildProcess = spawn(
    process.execPath,
    [BIN, 'cloud', 'run', '--broker', broker.url, '--data-dir', data],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  first.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  try {
    const end = Date.now() + 120_000;
    while (!out.includes('"event":"started"')) {
      if (first.exitCode !== null || Date.now() > end) assert.fail(`the first instance did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await run(['--broker', broker.url, '--data-dir', data]);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`another cose-flow cloud run \\(pid ${first.pid}\\) uses the MQTT client id`));
    assert.match(r.err, /give each its own --client-id/);
  } finally {
    first.kill('SIGTERM');
    await new Promise((resolve) => (first.exitCode === null ? first.once('exit', resolve) : resolve(null)));
  }
  assert.deepEqual(
    readdirSync(data).filter((f) => f.startsWith('.cloud-run-')),
    [],
    'the stopped instance let its client id go',
  );
});
