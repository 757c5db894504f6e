/**
 * The P-256 key bindings (native/moddable/xs_cf_crypto.c) read and check their input before they
 * allocate the C key, so an input that throws while being read leaks nothing: the sanitized XS
 * host's LeakSanitizer checks it at exit. The input is test/xs/entries/native-make-key.ts's host
 * object whose `byteLength` throws on its second read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInXs } from '../xs/run.js';

const ENTRY = 'test/xs/entries/native-make-key.ts';

test(`a P-256 key import whose input throws while read leaks nothing (${ENTRY}, LeakSanitizer)`, async () => {
  const run = await runInXs(ENTRY, {
    sanitized: true,
    env: { ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
    timeoutMs: 180_000,
  });
  const output = `${run.stdout}${run.stderr}`;
  assert.doesNotMatch(run.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, `${ENTRY}:\n${output}`);
  assert.equal(run.code, 0, `${ENTRY}: the XS run failed (exit ${run.code ?? run.signal}):\n${output}`);
  assert.match(run.stdout, /^done$/m, `${ENTRY} did not finish:\n${output}`);
  const cases = new Map(
    run.stdout
      .split('\n')
      .filter((line) => line.startsWith('case '))
      .map((line) => {
        const [, name, ...rest] = line.split(' ');
        return [name!, rest] as const;
      }),
  );
  for (const round of [0, 1, 2]) {
    const refused = cases.get(`import-throwing-input-${round}`);
    assert.equal(refused?.[0], 'threw', `${ENTRY}: round ${round}: the throwing input was accepted:\n${output}`);
    assert.deepEqual(cases.get(`import-after-${round}`), ['returned', '65'], `${ENTRY}: round ${round}:\n${output}`);
    assert.equal(cases.get(`import-again-${round}`)?.[1], 'TypeError', `${ENTRY}: round ${round}:\n${output}`);
  }
});
