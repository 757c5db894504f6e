/**
 * A failure no command words itself is still one line an operator can act on: the path and the
 * reason in words, never a stack trace (that only with COSE_FLOW_DEBUG=1). Run in-process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeFailure } from '../../cli/command.js';
import { main } from '../../cli/main.js';
import { capturingIo } from '../fixtures/cli-io.js';

test('ca init into a path that cannot be a directory: one line naming it, exit 1, nothing written', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-errors-'));
  try {
    writeFileSync(join(tmp, 'a-file'), 'x');
    const target = join(tmp, 'a-file', 'data');
    const io = capturingIo();
    assert.equal(await main(['ca', 'init', '--data-dir', target], io), 1);
    assert.equal(
      io.err,
      `cose-flow ca init: cannot create the directory ${target}: a part of the path is a file, not a directory (ENOTDIR)\n`,
    );
    assert.deepEqual(readdirSync(tmp), ['a-file'], 'nothing half-written');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('describeFailure: errno errors in words, other errors by their message, the stack only when asked', () => {
  const e = Object.assign(new Error("EACCES: permission denied, open '/x/ca.key'"), {
    code: 'EACCES',
    syscall: 'open',
    path: '/x/ca.key',
  });
  assert.equal(describeFailure(e), 'cannot open /x/ca.key: permission denied (EACCES)');
  assert.equal(describeFailure(new TypeError('something odd')), 'something odd');
  const saved = process.env.COSE_FLOW_DEBUG;
  process.env.COSE_FLOW_DEBUG = '1';
  try {
    assert.match(describeFailure(new Error('with stack')), /with stack\n\s+at /);
  } finally {
    if (saved === undefined) delete process.env.COSE_FLOW_DEBUG;
    else process.env.COSE_FLOW_DEBUG = saved;
  }
});
