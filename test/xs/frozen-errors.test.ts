/**
 * The project's error classes work where Error.prototype is frozen, as on the device (the SDK
 * freezes the built-ins, and so does the XS test host: test/xs/device-like-host.test.ts): each is
 * constructed and thrown with its own name, not turned into a TypeError by an assignment to the
 * inherited, non-writable `name`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInXs } from './run.js';

test('error classes construct under a frozen Error.prototype in XS', async () => {
  const run = await runInXs('test/xs/entries/frozen-errors.ts');
  assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
  const lines = run.stdout.split('\n').filter((l) => l.startsWith('error '));
  assert.deepEqual(
    lines.map((l) => l.split(' ').slice(1, 3)),
    ['CoseError', 'CborError', 'CryptoError', 'DerError', 'EnrollmentError'].map((c) => [c, c]),
  );
  assert.ok(
    lines.some((l) => l === 'error CoseError CoseError bad-cbor'),
    run.stdout,
  );
});
