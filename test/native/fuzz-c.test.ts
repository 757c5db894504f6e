/**
 * The libFuzzer harness of the native crypto (native/fuzz/cf_fuzz.c, built by
 * scripts/build-native-fuzz.js with clang -fsanitize=fuzzer,address,undefined): every entry point
 * of native/crypto/cf_crypto.h that takes bytes runs for a few seconds (CF_FUZZ_SECONDS, default 3)
 * and must end with no sanitizer finding, no failed check (statuses, wiped outputs, round trips,
 * no mutated ciphertext / wrapped key / signature accepted) and no timeout; executions are printed.
 * Without clang the test is skipped loudly — except in CI (CI=true), where that is a failure
 * (.ci/run installs clang and libclang-rt-14-dev).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../vectors.js';

const SECONDS = Number(process.env.CF_FUZZ_SECONDS ?? 3);
const program = join(projectRoot, 'native', 'build', 'cf-fuzz');

const build = spawnSync(process.execPath, [join(projectRoot, 'scripts', 'build-native-fuzz.js'), '--quiet'], {
  encoding: 'utf8',
});
const noClang = build.status === 3;
if (noClang && process.env.CI !== 'true') {
  process.stderr.write(
    '\n!!! test/native/fuzz-c.test.ts SKIPPED: no clang on this machine (apt-get install clang libclang-rt-14-dev) !!!\n\n',
  );
}

test('the libFuzzer harness builds (clang, ASan, UBSan)', { skip: noClang && process.env.CI !== 'true' }, () => {
  assert.equal(build.status, 0, `build-native-fuzz failed:\n${build.stderr}${build.stdout}`);
});

const targets = build.status === 0 ? listTargets() : [];

function listTargets(): string[] {
  const r = spawnSync(program, [], { encoding: 'utf8', env: { ...process.env, CF_FUZZ_TARGET: 'list' } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

test('the harness covers the byte-taking entry points of cf_crypto.h', { skip: build.status !== 0 }, () => {
  for (const name of ['gcm-decrypt', 'key-unwrap', 'ecdsa-verify', 'ecdh', 'p256-import', 'hkdf-sha256'])
    assert.ok(targets.includes(name), `${name} in ${targets.join(', ')}`);
});

for (const name of targets) {
  test(`libFuzzer: ${name} for ${SECONDS} s — no sanitizer finding, no failed check`, () => {
    const artifacts = mkdtempSync(join(tmpdir(), `cf-fuzz-${name}-`));
    try {
      const r = spawnSync(
        program,
        [`-max_total_time=${SECONDS}`, '-timeout=20', '-rss_limit_mb=2048', `-artifact_prefix=${artifacts}/`],
        {
          encoding: 'utf8',
          env: { ...process.env, CF_FUZZ_TARGET: name, ASAN_OPTIONS: 'quarantine_size_mb=32:detect_leaks=1' },
          timeout: (SECONDS + 60) * 1000,
          maxBuffer: 64 * 1024 * 1024,
        },
      );
      const done = /Done (\d+) runs in (\d+) second/.exec(r.stderr);
      process.stdout.write(`# ${name}: ${done ? `${done[1]} executions in ${done[2]} s` : 'no summary'}\n`);
      assert.equal(r.status, 0, `cf-fuzz ${name} exited ${r.status ?? r.signal}:\n${r.stderr.slice(-6000)}`);
      assert.ok(done !== null && Number(done[1]) > 0, `no executions:\n${r.stderr.slice(-2000)}`);
    } finally {
      rmSync(artifacts, { recursive: true, force: true });
    }
  });
}
