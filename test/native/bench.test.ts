/**
 * The crypto benchmark runs in XS: the device's own benchmark bundle (native/bench/main.ts, as
 * `node dist/bench/run-crypto.js --device-bundle` builds it for mcconfig) runs in the XS test host
 * with the native modules, a few milliseconds per case, and reports every case for both
 * providers; and bench/xs-crypto.ts, which docs/PERFORMANCE.md's host numbers come from, too.
 * Speed is not asserted here: these runs are far too short to measure anything.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { benchCases, parseResult } from '../../bench/crypto.js';
import { nodeCrypto } from '../../node/crypto.js';
import { bundleForXs, runInXs, runSourceInXs } from '../xs/run.js';

const CASES = benchCases(nodeCrypto()).map(([name]) => name);

function results(stdout: string) {
  return stdout
    .split('\n')
    .map(parseResult)
    .filter((r) => r !== undefined);
}

test('the device benchmark bundle runs in XS with the native modules and reports every case', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cf-bench-'));
  try {
    const bundle = await bundleForXs('native/bench/main.ts', {}, 'esm', join(dir, 'main.mjs'));
    const run = await runSourceInXs(readFileSync(bundle, 'utf8'), { format: 'esm', args: ['5'], timeoutMs: 120_000 });
    assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
    assert.match(run.stdout, /^cose-flow crypto benchmark: 5 ms per case/);
    assert.match(run.stdout, /cose-flow crypto benchmark: done\n$/);
    const got = results(run.stdout);
    for (const provider of ['native', 'noble']) {
      assert.deepEqual(
        got.filter((r) => r.provider === provider).map((r) => r.name),
        CASES,
        `${provider}: every case, in order`,
      );
    }
    assert.ok(got.every((r) => r.opsPerSecond > 0 && r.ops >= 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench/xs-crypto.ts (the host numbers) runs a selection of cases with either provider', async () => {
  for (const provider of ['native', 'noble']) {
    const run = await runInXs('bench/xs-crypto.ts', { args: [provider, '5', 'sha256', 'sealData'] });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      results(run.stdout).map((r) => [r.provider, r.name]),
      CASES.filter((c) => c.includes('sha256') || c.includes('sealData')).map((c) => [provider, c]),
    );
  }
});
