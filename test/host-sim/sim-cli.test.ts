/**
 * `cose-flow sim` end to end: a fresh data directory, enrollment by the command itself, a summary.
 * Run in this process through `main`, except one smoke test of the launcher: a child process
 * stopped with Ctrl-C (SIGINT), which only a real process can receive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../cli/main.js';
import { BIN, capturingIo } from '../fixtures/cli-io.js';
import { startAedes } from './brokers.js';

test('cose-flow sim: three devices enroll, send at QoS 1 and report a summary', async () => {
  const broker = await startAedes();
  const dir = mkdtempSync(join(tmpdir(), 'cf-sim-'));
  const io = capturingIo();
  try {
    const args = ['sim', '--broker', broker.url, '--data-dir', dir, '--devices', '3', '--rate', '20'];
    // Until every device has 10 messages acknowledged; the duration is only the limit.
    const code = await main([...args, '--messages', '10', '--duration', '120', '--json'], io);
    assert.equal(code, 0, io.err);
    const summary = JSON.parse(io.out) as Record<string, number>;
    assert.equal(summary.devices, 3);
    assert.equal(summary.errors, 0, io.err);
    assert.ok(summary.acknowledged! >= 30, io.out);
    assert.equal(summary.sessions, 3);
    assert.match(io.err, /made a CA/);
    assert.match(io.err, /3\/3 sending/);
    assert.equal(await main(['sim', '--devices', '2'], io), 2, 'no broker: a usage error');
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cose-flow sim --messages: a count the run cannot reach before --duration exits 1 and says who fell short', async () => {
  const broker = await startAedes();
  const dir = mkdtempSync(join(tmpdir(), 'cf-sim-'));
  const io = capturingIo();
  try {
    const args = ['sim', '--broker', broker.url, '--data-dir', dir, '--rate', '1', '--messages', '1000000'];
    assert.equal(await main([...args, '--duration', '1'], io), 1, io.err);
    assert.match(io.err, /1 device\(s\) had fewer than 1000000 messages acknowledged when the run stopped: sim-0001/);
    for (const bad of ['0', '-1', '1.5', 'x']) {
      io.clear();
      assert.equal(await main(['sim', '--broker', broker.url, '--messages', bad], io), 2, bad);
      assert.match(io.err, /--messages/);
    }
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cose-flow sim through the launcher: Ctrl-C (SIGINT) stops the run with a summary, exit 0', async () => {
  const broker = await startAedes();
  const dir = mkdtempSync(join(tmpdir(), 'cf-sim-'));
  const args = ['sim', '--broker', broker.url, '--data-dir', dir, '--devices', '1', '--rate', '20', '--json'];
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    // Until the device has sent a data message (a cold start under load takes seconds: a generous bound).
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no data message within 60 s\n${stderr}`)), 60_000);
      broker.onPublish((topic) => {
        if (!topic.endsWith('/data')) return;
        clearTimeout(timer);
        resolve();
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`cose-flow sim exited (${code}) before sending\n${stderr}`));
      });
    });
    child.kill('SIGINT');
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await exited.finally(() => clearTimeout(killer));
    assert.equal(code, 0, stderr);
    assert.match(stderr, /until Ctrl-C/);
    const summary = JSON.parse(stdout) as Record<string, number>;
    assert.equal(summary.devices, 1);
    assert.equal(summary.sessions, 1);
    assert.ok(summary.sent! >= 1, stdout);
    assert.equal(summary.errors, 0, stderr);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
