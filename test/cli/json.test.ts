/**
 * Every command that reports something has --json: one JSON object per line on standard output and
 * nothing else there, so `cose-flow … --json | jq` works. In-process through `main`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../cli/main.js';
import { nodeCrypto } from '../../node/crypto.js';
import { makeCsr } from '../../src/pki/csr.js';
import { toBase64 } from '../../src/pki/pem.js';
import { capturingIo } from '../fixtures/cli-io.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-json-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function json(argv: string[]): Promise<Record<string, unknown>[]> {
  const io = capturingIo();
  const code = await main(argv, io);
  assert.equal(code, 0, `${argv.join(' ')}: ${io.err}`);
  const lines = io.out.trim().split('\n');
  return lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new assert.AssertionError({ message: `${argv.join(' ')}: not a JSON line: ${line}` });
    }
  });
}

test('ca init, cloud keygen, ca issue, ca list, ca revoke and tour print JSON with --json', async () => {
  const data = join(dir, 'data');
  const [init] = await json(['ca', 'init', '--data-dir', data, '--json']);
  assert.match(String(init!.fingerprintSha256), /^[0-9a-f]{64}$/);
  const [keygen] = await json(['cloud', 'keygen', '--data-dir', data, '--json']);
  assert.match(String(keygen!.cloudKeyId), /^[0-9a-f]{16}$/);

  const crypto = nodeCrypto();
  const key = crypto.p256Generate();
  const csr = makeCsr(crypto, key, 'json-dev-1');
  const csrPath = join(dir, 'dev.csr');
  writeFileSync(csrPath, `-----BEGIN CERTIFICATE REQUEST-----\n${toBase64(csr)}\n-----END CERTIFICATE REQUEST-----\n`);
  const [issued] = await json(['ca', 'issue', '--data-dir', data, '--csr', csrPath, '--json']);
  assert.equal(issued!.deviceId, 'json-dev-1');
  assert.equal(issued!.outcome, 'issued');
  assert.match(String(issued!.certificatePem), /BEGIN CERTIFICATE/);

  const io = capturingIo();
  assert.equal(await main(['ca', 'list', '--data-dir', data, '--json'], io), 0, io.err);
  const listed = JSON.parse(io.out) as { deviceId: string }[]; // one JSON array
  assert.deepEqual(
    listed.map((d) => d.deviceId),
    ['json-dev-1'],
  );

  const [revoked] = await json(['ca', 'revoke', '--data-dir', data, '--device', 'json-dev-1', '--json']);
  assert.equal(revoked!.serial, issued!.serial);
  assert.equal(revoked!.already, false);

  const [tour] = await json(['tour', '--data-dir', data, '--messages', '2', '--json']);
  assert.equal(tour!.messages, 2);
  assert.ok(Array.isArray(tour!.steps) && (tour!.steps as string[]).length >= 6);
});
