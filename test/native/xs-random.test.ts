/**
 * `crypto.getRandomValues` in XS (native/moddable/xs_cf_random.c) against hostile views, in the
 * sanitized XS host: own `byteLength`, `byteOffset` and `buffer` properties that lie, a negative
 * length, objects that only inherit a typed array's prototype (a plain object, a DataView, an
 * ArrayBuffer, a Float32Array, a host object), replaced accessors of %TypedArray%.prototype, and
 * views of a resized buffer. Only a genuine
 * integer typed array's own bytes may be filled; anything else is a TypeError (Web Crypto's
 * TypeMismatchError) and writes nothing. The cases are test/xs/entries/random-get-random-values.ts,
 * one host run each, so a case that corrupts memory or crashes cannot hide the others.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInXs } from '../xs/run.js';

const ENTRY = 'test/xs/entries/random-get-random-values.ts';
const CASES = [
  'genuine',
  'byte-length-override',
  'byte-length-override-heap',
  'byte-length-negative',
  'byte-offset-override',
  'byte-offset-huge',
  'buffer-override',
  'fakes',
  'intrinsics-replaced',
  'resized-buffer',
];

/*
 * `intrinsics-replaced` runs with the built-ins unfrozen (the device and the simulator freeze them,
 * and so does the host by default): the C must not trust accessors that JavaScript could replace,
 * even where nothing in the firmware lets it.
 */
const UNFROZEN = { frozenBuiltIns: false };

for (const name of CASES) {
  test(`getRandomValues in XS: ${name} (${ENTRY})`, async () => {
    const run = await runInXs(ENTRY, {
      ...(name === 'intrinsics-replaced' ? UNFROZEN : {}),
      args: [name],
      sanitized: true,
      env: { ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
      timeoutMs: 180_000,
    });
    const output = `${run.stdout}${run.stderr}`;
    assert.doesNotMatch(run.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, `${ENTRY} ${name}:\n${output}`);
    assert.equal(run.code, 0, `${ENTRY} ${name}: the XS run failed (exit ${run.code ?? run.signal}):\n${output}`);
    assert.match(run.stdout, new RegExp(`^done ${name}$`, 'm'), `${ENTRY} ${name} did not finish:\n${output}`);
    const results = run.stdout.split('\n').filter((line) => line.startsWith('case '));
    assert.ok(results.length > 0, `${ENTRY} ${name} checked nothing:\n${output}`);
    if (name === 'intrinsics-replaced') {
      assert.ok(results.includes('case replaced-reflect-get ok'), `${ENTRY} ${name} did not run unfrozen:\n${output}`);
    }
    assert.deepEqual(
      results.filter((line) => !line.endsWith(' ok')),
      [],
      `${ENTRY} ${name}: failed checks`,
    );
  });
}
