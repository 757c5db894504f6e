/**
 * CSRs made by the device code inside the XS engine are real PKCS#10 requests: openssl verifies
 * their self-signature and reads their subject, and the host CA check accepts them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkCsr } from '../../cloud/pki/csr.js';
import { fromHex } from '../../src/bytes.js';
import { runInXs } from './run.js';

const DEVICES = ['xs-dev-1', 'xs.dev_2-A'];

test('CSRs made in XS pass openssl req -verify and the CA check', async () => {
  const run = await runInXs('test/xs/entries/csr.ts', { args: DEVICES });
  assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
  const csrs = run.stdout
    .split('\n')
    .filter((line) => line.startsWith('csr '))
    .map((line) => line.split(' ').slice(1) as [string, string]);
  assert.deepEqual(
    csrs.map(([id]) => id),
    DEVICES,
  );
  const dir = mkdtempSync(join(tmpdir(), 'cose-flow-xs-csr-'));
  try {
    for (const [deviceId, hex] of csrs) {
      const der = fromHex(hex);
      const path = join(dir, `${deviceId}.der`);
      writeFileSync(path, der);
      const openssl = spawnSync('openssl', ['req', '-inform', 'DER', '-in', path, '-noout', '-verify', '-subject'], {
        encoding: 'utf8',
      });
      assert.ok(!openssl.error, `openssl is required for this test (apt-get install openssl): ${openssl.error}`);
      // openssl 3.0 exits 0 even when the self-signature fails: read what it says.
      const said = `${openssl.stdout}${openssl.stderr}`;
      assert.match(said, /verify OK/i, `${deviceId}: openssl did not verify the XS-made CSR:\n${said}`);
      assert.doesNotMatch(said, /verify fail/i, said);
      assert.match(said, new RegExp(`CN\\s*=\\s*${deviceId.replace(/\./g, '\\.')}`), said);
      const checked = await checkCsr(der);
      assert.equal(checked.deviceId, deviceId);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
