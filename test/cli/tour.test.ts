/**
 * `cose-flow tour` run in this process through `main`, and its files checked with `cose-flow
 * inspect` and openssl; one smoke test runs the launcher as a child process (in a fresh working
 * directory, for the default ./data).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliRun, runCli, spawnCli } from '../fixtures/cli-io.js';

/** The kid counter the tour printed in step 2. */
function printedKidCounter(stdout: string): number {
  const m = /^\[2\/6\] .*kid counter ([0-9]+) → session kid ([0-9a-f]+)/m.exec(stdout);
  assert.ok(m, `step 2 names the kid counter:\n${stdout}`);
  return Number(m[1]);
}

function dataFiles(demoDir: string): string[] {
  return readdirSync(demoDir)
    .filter((name) => /^data-[0-9]+\.cbor$/.test(name))
    .sort()
    .map((name) => join(demoDir, name));
}

let dir: string;
let demoDir: string;
let first: CliRun;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-tour-'));
  demoDir = join(dir, 'out', 'tour');
  first = await runCli(['tour', '--data-dir', join(dir, 'out')]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('cose-flow tour', () => {
  test('runs every step and exits 0', () => {
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stderr, '');
    const out = first.stdout;
    for (let n = 1; n <= 6; n++) assert.match(out, new RegExp(`^\\[${n}/6\\] `, 'm'), `step ${n}`);
    assert.match(out, /^\[1\/6\] PKI: made a throwaway CA/m);
    assert.match(out, /^\[2\/6\] device demo-device-1 \(noble crypto\): kid counter 1 → session kid 01/m);
    assert.match(
      out,
      /^\[4\/6\] cloud \(node crypto\): .*accepted: device demo-device-1 .*session kid 01 \(counter 1\)/m,
    );
    for (let seq = 0; seq < 5; seq++) {
      const m = new RegExp(`cloud: data seq ${seq} → (\\{.*\\})$`, 'm').exec(out);
      assert.ok(m, `reading ${seq} is printed`);
      // the device's reading format (src/device/reading.ts): t epoch ms, temp °C, up seconds
      const reading = JSON.parse(m[1]!) as { t: number; temp: number; up: number };
      assert.deepEqual(Object.keys(reading).sort(), ['t', 'temp', 'up']);
      assert.ok(Number.isInteger(reading.t) && reading.t > 1.6e12, `t is epoch ms: ${reading.t}`);
      assert.ok(reading.temp > 15 && reading.temp < 30, `temp is °C: ${reading.temp}`);
      assert.equal(reading.up, 60 + 30 * seq);
    }
    assert.match(out, /refused: .*data-000\.cbor with one ciphertext byte flipped → decrypt-failed/);
    assert.match(out, /refused: .*session\.cbor replayed on cose-flow\/v1\/demo-device-2\/session → device-mismatch/);
    assert.match(out, /refused: .*data-004\.cbor with its sequence number changed to 1004 → decrypt-failed/);
    assert.ok(
      out.includes(
        `npx cose-flow inspect --ca ${join(demoDir, 'ca.pem')} --cloud-key ${join(demoDir, 'cloud.key')} ` +
          `${join(demoDir, 'session.cbor')} ${demoDir}/data-*.cbor`,
      ),
      'step 6 prints the inspect command',
    );
  });

  test('writes the CA, keys (PKCS#8, mode 0600), certificates, counter and messages', () => {
    assert.equal(first.status, 0, first.stderr);
    for (const name of ['ca.pem', 'cloud.pem', 'device.pem', 'session.cbor', 'kid-counter']) {
      assert.ok(existsSync(join(demoDir, name)), name);
    }
    for (const name of ['cloud.key', 'device.key']) {
      const path = join(demoDir, name);
      assert.equal(statSync(path).mode & 0o777, 0o600, `${name} is private`);
      assert.match(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    }
    assert.deepEqual(
      dataFiles(demoDir).map((f) => f.slice(demoDir.length + 1)),
      ['data-000.cbor', 'data-001.cbor', 'data-002.cbor', 'data-003.cbor', 'data-004.cbor'],
    );
    assert.equal(readFileSync(join(demoDir, 'kid-counter'), 'utf8'), '1\n');
    const strict = spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', 'ca.pem', 'device.pem', 'cloud.pem'], {
      cwd: demoDir,
      encoding: 'utf8',
    });
    assert.equal(strict.status, 0, `${strict.stdout}${strict.stderr}`);
  });

  test('cose-flow inspect verifies and opens every file it wrote', async () => {
    assert.equal(first.status, 0, first.stderr);
    const r = await runCli([
      'inspect',
      '--json',
      '--ca',
      join(demoDir, 'ca.pem'),
      '--cloud-key',
      join(demoDir, 'cloud.key'),
      join(demoDir, 'session.cbor'),
      ...dataFiles(demoDir),
    ]);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 6);
    const results = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const result of results) {
      assert.equal(result.valid, true, JSON.stringify(result));
      assert.equal(result.verified, true);
      assert.equal(result.kidCounter, 1);
    }
    assert.equal(results[0]!.type, 'session');
    assert.equal(results[0]!.deviceId, 'demo-device-1');
    assert.deepEqual(
      results.slice(1).map((x) => x.seq),
      [0, 1, 2, 3, 4],
    );
  });

  test('a second run reuses the keys and takes a larger kid; fewer messages leave no stale files', async () => {
    assert.equal(first.status, 0, first.stderr);
    const deviceKey = readFileSync(join(demoDir, 'device.key'), 'utf8');
    const second = await runCli(['tour', '--data-dir', join(dir, 'out'), '--messages', '2']);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /^\[1\/6\] PKI: reusing /m);
    assert.ok(printedKidCounter(second.stdout) > printedKidCounter(first.stdout));
    assert.equal(printedKidCounter(second.stdout), 2);
    assert.equal(readFileSync(join(demoDir, 'device.key'), 'utf8'), deviceKey);
    assert.equal(dataFiles(demoDir).length, 2);
    assert.match(second.stdout, /data-001\.cbor with its sequence number changed to 1001 → decrypt-failed/);
    const r = await runCli([
      'inspect',
      '--json',
      '--ca',
      join(demoDir, 'ca.pem'),
      '--cloud-key',
      join(demoDir, 'cloud.key'),
      join(demoDir, 'session.cbor'),
      ...dataFiles(demoDir),
    ]);
    assert.equal(r.status, 0, r.stdout);
    for (const line of r.stdout.trim().split('\n')) {
      const result = JSON.parse(line) as Record<string, unknown>;
      assert.equal(result.valid, true);
      assert.equal(result.kidCounter, 2);
    }
  });

  test('unusable key files are replaced; the kid counter still grows', async () => {
    const out = join(dir, 'broken');
    assert.equal((await runCli(['tour', '--data-dir', out, '--messages', '1'])).status, 0);
    writeFileSync(join(out, 'tour', 'device.key'), 'not a key');
    const again = await runCli(['tour', '--data-dir', out, '--messages', '1']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /^\[1\/6\] PKI: made a throwaway CA .*unusable/m);
    assert.equal(printedKidCounter(again.stdout), 2);
    assert.equal(statSync(join(out, 'tour', 'device.key')).mode & 0o777, 0o600);
  });

  test('the default data directory is ./data (the launcher as a child process)', () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const r = spawnCli(['tour', '--messages', '1'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(cwd, 'data', 'tour', 'session.cbor')));
    assert.ok(existsSync(join(cwd, 'data', 'tour', 'data-000.cbor')));
  });

  test('a corrupt kid counter is an error (exit 1), never a reset', async () => {
    const out = join(dir, 'corrupt');
    assert.equal((await runCli(['tour', '--data-dir', out, '--messages', '1'])).status, 0);
    writeFileSync(join(out, 'tour', 'kid-counter'), 'seven\n');
    const r = await runCli(['tour', '--data-dir', out, '--messages', '1']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^cose-flow tour: FAILED at step 2 .*kid-counter does not hold a kid counter/m);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(readFileSync(join(out, 'tour', 'kid-counter'), 'utf8'), 'seven\n');
  });

  test('usage errors exit 2; --help exits 0', async () => {
    for (const args of [['--messages', '0'], ['--messages', 'x'], ['--messages', '1001'], ['--bogus'], ['extra']]) {
      const r = await runCli(['tour', '--data-dir', join(dir, 'usage'), ...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, /cose-flow tour: /);
    }
    assert.ok(!existsSync(join(dir, 'usage')), 'nothing written on a usage error');
    const help = await runCli(['tour', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--data-dir DIR/);
    assert.match(help.stdout, /--messages N/);
    assert.match((await runCli(['--help'])).stdout, /^ {2}demo {2}/m);
  });
});
