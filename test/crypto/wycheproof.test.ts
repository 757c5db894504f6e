/**
 * Project Wycheproof vectors against every CryptoProvider available under Node (noble, node).
 * Every valid case must be accepted with the expected output, every invalid case rejected with a
 * CryptoError (verify: `false`), and an 'acceptable' case may go either way but must not crash.
 * Counts are checked against each file's `numberOfTests` so a silently skipped group fails.
 * The suites themselves are in wycheproof-suites.ts (the native provider runs them inside XS).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeCrypto } from '../../node/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { readVectorJson } from '../vectors.js';
import { describeRun, type Result, runSuite, suites, type VectorFile } from './wycheproof-suites.js';

const providers: CryptoProvider[] = [nobleCrypto(), nodeCrypto()];

for (const provider of providers) {
  describe(`wycheproof [${provider.name}]`, () => {
    for (const suite of suites) {
      test(suite.file, () => {
        const vectors = readVectorJson<VectorFile>('wycheproof', suite.file);
        const all = vectors.testGroups.reduce((n, g) => n + g.tests.length, 0);
        assert.equal(all, vectors.numberOfTests, `${suite.file}: groups hold ${all} tests, numberOfTests says so many`);
        const selected = vectors.testGroups.filter(suite.select);
        const selectedCount = selected.reduce((n, g) => n + g.tests.length, 0);
        assert.equal(
          selectedCount,
          suite.expectedSelected,
          `${suite.file}: selected groups hold ${selectedCount} tests`,
        );

        const run = runSuite(suite, selected, provider);
        const { tally, failures } = run;
        console.log(describeRun(suite, provider.name, run));
        assert.deepEqual(failures, [], `${suite.file} [${provider.name}]: ${failures.length} vector(s) failed`);
        assert.equal(tally.run, suite.expectedSelected, `${suite.file}: ran ${tally.run} tests`);
        assert.equal(tally.valid + tally.invalid + tally.acceptable, tally.run, `${suite.file}: every test classified`);
        const byResult = (r: Result) => selected.reduce((n, g) => n + g.tests.filter((t) => t.result === r).length, 0);
        assert.equal(tally.valid, byResult('valid'), `${suite.file}: valid count`);
        assert.equal(tally.invalid, byResult('invalid'), `${suite.file}: invalid count`);
      });
    }
  });
}
