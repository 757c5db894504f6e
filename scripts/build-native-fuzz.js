#!/usr/bin/env node
// Builds the libFuzzer harness of the native crypto, native/build/cf-fuzz, from native/crypto's
// cf_crypto.c and cf_random.c and native/fuzz/cf_fuzz.c with clang's
// -fsanitize=fuzzer,address,undefined (any sanitizer finding aborts), the strict warnings of
// scripts/native-c-flags.js, linked with the PSA Crypto library. A no-op when up to date.
//
//   node scripts/build-native-fuzz.js [--quiet]
//   CF_FUZZ_TARGET=gcm-decrypt native/build/cf-fuzz -max_total_time=60      (one entry point)
//   CF_FUZZ_TARGET=list native/build/cf-fuzz                                 (their names)
//
// Environment: CF_PSA_CFLAGS / CF_PSA_LIBS as for build-native-test.js; CLANG (default: the first
// of clang, clang-14 on PATH); CF_FUZZ_OUTPUT (default native/build/cf-fuzz).
// Exit status 0 when built and up to date; 3 when no clang is installed (the test skips or, in
// CI, fails on that); 1 on a failed build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { psaCflags, psaLibs as psaLibFlags, STRICT_C_FLAGS } from './native-c-flags.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cryptoDir = join(root, 'native', 'crypto');
const output = process.env.CF_FUZZ_OUTPUT || join(root, 'native', 'build', 'cf-fuzz');
const quiet = process.argv.includes('--quiet');

function findClang() {
  const candidates = process.env.CLANG ? [process.env.CLANG] : ['clang', 'clang-14'];
  for (const c of candidates) {
    if (spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0) return c;
  }
  return undefined;
}

const clang = findClang();
if (clang === undefined) {
  console.error('build-native-fuzz: no clang found (apt-get install clang libclang-rt-14-dev)');
  process.exit(3);
}

const sources = [
  join(cryptoDir, 'cf_crypto.c'),
  join(cryptoDir, 'cf_random.c'),
  join(root, 'native', 'fuzz', 'cf_fuzz.c'),
];
const inputs = [...sources, join(cryptoDir, 'cf_crypto.h'), fileURLToPath(import.meta.url)];
// libFuzzer's main, ASan and UBSan (every finding fatal); -O1 as the other sanitized builds.
const flags = [
  '-std=c99',
  ...STRICT_C_FLAGS,
  '-O1',
  '-fno-omit-frame-pointer',
  '-fsanitize=fuzzer,address,undefined',
  '-fno-sanitize-recover=all',
  `-I${cryptoDir}`,
  ...psaCflags(),
];
const psaLibs = psaLibFlags();

const stamp = `${output}.flags`;
const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
const upToDate =
  existsSync(output) &&
  statSync(output).mtimeMs >= newest &&
  existsSync(stamp) &&
  readFileSync(stamp, 'utf8') === JSON.stringify([clang, flags, psaLibs]);
if (upToDate) {
  if (!quiet) console.log(`build-native-fuzz: ${relative(root, output)} is up to date`);
  process.exit(0);
}
mkdirSync(dirname(output), { recursive: true });
const temporary = `${output}.${process.pid}.tmp`;
const started = Date.now();
const result = spawnSync(clang, [...flags, ...sources, ...psaLibs, '-o', temporary], { encoding: 'utf8' });
if (result.status !== 0) {
  rmSync(temporary, { force: true });
  console.error(
    `build-native-fuzz: ${clang} failed (${result.status ?? result.signal}):\n${result.stderr}${result.stdout}`,
  );
  process.exit(1);
}
renameSync(temporary, output);
writeFileSync(stamp, JSON.stringify([clang, flags, psaLibs]));
if (!quiet)
  console.log(`build-native-fuzz: built ${relative(root, output)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
