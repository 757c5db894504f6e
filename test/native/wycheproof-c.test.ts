/**
 * The C API of native/crypto, in C, against Debian's Mbed TLS (PSA Crypto): the C test program
 * native/test/cf_test.c, built with AddressSanitizer and UndefinedBehaviorSanitizer by
 * scripts/build-native-test.js, runs every Wycheproof case of cose-flow's parameters (ECDSA P1363,
 * ECDH ecpoint, AES-128-GCM with 96-bit IV and 128-bit tag, AES key wrap with a 128-bit KEK,
 * HKDF-SHA-256) and known answers computed on Node, and prints "N passed, N failed".
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromHex } from '../../src/bytes.js';
import { projectRoot } from '../vectors.js';
import { cTestCases, WYCHEPROOF_SELECTION } from './cases.js';
import { deviceIdentityFromSecret, deviceSecret } from './reference.js';

const buildDir = join(projectRoot, 'native', 'build');
const program = join(buildDir, 'cf-test');

test('the C API passes the Wycheproof and known-answer cases under ASan and UBSan', (t) => {
  const build = spawnSync(process.execPath, [join(projectRoot, 'scripts', 'build-native-test.js'), '--quiet'], {
    encoding: 'utf8',
  });
  assert.equal(build.status, 0, `scripts/build-native-test.js failed:\n${build.stdout}${build.stderr}`);

  const cases = cTestCases();
  mkdirSync(buildDir, { recursive: true });
  const casesFile = join(buildDir, 'cf-test-cases.txt'); // kept, to rerun by hand: native/build/cf-test FILE
  writeFileSync(casesFile, cases.text);
  const home = mkdtempSync(join(tmpdir(), 'cf-test-'));
  const hukFile = join(home, 'huk.bin');
  try {
    const run = spawnSync(program, [casesFile], {
      encoding: 'utf8',
      env: {
        ...process.env,
        COSE_FLOW_HUK_FILE: hukFile,
        ASAN_OPTIONS: 'abort_on_error=1:detect_leaks=1',
        UBSAN_OPTIONS: 'print_stacktrace=1',
      },
    });
    const output = `${run.stdout}${run.stderr}`;
    assert.doesNotMatch(output, /AddressSanitizer|LeakSanitizer|runtime error:/, output);
    assert.equal(run.status, 0, `cf-test exited ${run.status ?? run.signal}:\n${output}`);

    const counts = new Map(
      [...run.stdout.matchAll(/^(\w+): (\d+) passed, (\d+) failed$/gm)].map((m) => [
        m[1]!,
        [Number(m[2]), Number(m[3])],
      ]),
    );
    for (const suite of WYCHEPROOF_SELECTION) {
      assert.deepEqual(
        counts.get(suite.kind),
        [suite.expectedSelected, 0],
        `${suite.file}: ${suite.kind} line of:\n${output}`,
      );
    }
    for (const [kind, n] of Object.entries(cases.known)) {
      assert.deepEqual(counts.get(kind), [n, 0], `${kind} known answers:\n${output}`);
    }
    const selftest = counts.get('selftest');
    assert.ok(selftest && selftest[0] >= 20 && selftest[1] === 0, `selftest:\n${output}`);
    const total = [...counts.values()].reduce((sum, [passed]) => sum + passed, 0);
    assert.match(run.stdout, new RegExp(`^${total} passed, 0 failed$`, 'm'));

    // The device identity came from the HUK file the C program made (32 bytes, mode 0600),
    // and it is the one the derivation in cf_device_key.h gives.
    const huk = readFileSync(hukFile);
    assert.equal(huk.length, 32);
    const expected = deviceIdentityFromSecret(deviceSecret(huk));
    const [, source, id, publicKey] = /^device (\w+) ([0-9a-f]{32}) ([0-9a-f]{130})$/m.exec(run.stdout) ?? [];
    assert.equal(source, 'file');
    assert.deepEqual(fromHex(id!), expected.id);
    assert.deepEqual(fromHex(publicKey!), expected.publicKey);

    t.diagnostic(
      `${total} passed, 0 failed: ` +
        WYCHEPROOF_SELECTION.map((s) => `${s.kind} ${s.expectedSelected}`).join(', ') +
        `, known answers ${Object.values(cases.known).reduce((a, b) => a + b, 0)}, self-test ${selftest[0]}`,
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
