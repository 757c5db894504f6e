/**
 * `sim` and `demo` check before they write: against a broker that is not there they say so in one
 * line naming it and make no CA, cloud key or batch; `sim` on a data directory that cannot take
 * files says so before starting devices. In-process through `main`.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../cli/main.js';
import { startEmbeddedBroker } from '../../system/broker.js';
import { capturingIo } from '../fixtures/cli-io.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cose-flow-broker-first-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test('sim and demo against a broker that refuses: one line naming it, exit 1, nothing written', async () => {
  for (const command of ['sim', 'demo']) {
    const dir = join(tmp, command);
    const io = capturingIo();
    const args =
      command === 'sim'
        ? ['sim', '--broker', 'mqtt://127.0.0.1:1', '--data-dir', dir, '--duration', '3']
        : ['demo', '--broker', 'mqtt://127.0.0.1:1', '--data-dir', dir, '--duration', '3', '--no-dashboard'];
    assert.equal(await main(args, io), 1, `${command}: ${io.err}`);
    assert.match(io.err, /connecting to mqtt:\/\/127\.0\.0\.1:1…\n/);
    assert.match(
      io.err,
      new RegExp(`cose-flow ${command}: cannot connect to mqtt://127\\.0\\.0\\.1:1: connection refused`),
    );
    assert.equal(existsSync(join(dir, 'ca.pem')), false, `${command} made no CA`);
    assert.equal(existsSync(join(dir, 'cloud.key')), false, `${command} made no cloud key`);
  }
});

test('sim on a data directory that cannot take files: one line, exit 1, before any device starts', async () => {
  const broker = await startEmbeddedBroker();
  try {
    writeFileSync(join(tmp, 'a-file'), 'x');
    const dir = join(tmp, 'a-file', 'data');
    const io = capturingIo();
    assert.equal(await main(['sim', '--broker', broker.url, '--data-dir', dir, '--duration', '3'], io), 1);
    assert.match(io.err, /cose-flow sim: cannot write the devices' files in .*a-file\/data\/sim: .*\(ENOTDIR\)/);
    assert.doesNotMatch(io.err, /\n\s+at /);
  } finally {
    await broker.close();
  }
});
