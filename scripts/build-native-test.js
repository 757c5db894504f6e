#!/usr/bin/env node
// Builds the C test program of the native crypto, native/build/cf-test, from native/crypto/*.c and
// native/test/cf_test.c: strict warnings, AddressSanitizer and UndefinedBehaviorSanitizer (any
// finding aborts), linked with the PSA Crypto library. A no-op when the program is up to date.
//
//   node scripts/build-native-test.js [--quiet]
//
// Environment (for building against another PSA implementation, e.g. TF-PSA-Crypto):
//   CF_PSA_CFLAGS   extra compiler flags, e.g. -I/opt/tf-psa-crypto/include   (default: none)
//   CF_PSA_LIBS     link flags                                                (default: -lmbedcrypto)
//   CF_TEST_OUTPUT  the program to build                                      (default: native/build/cf-test)
// Exit status 0 when the program is built and up to date. Needs `cc` (gcc or clang).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { psaCflags, psaLibs as psaLibFlags, SANITIZER_C_FLAGS, STRICT_C_FLAGS } from './native-c-flags.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cryptoDir = join(root, 'native', 'crypto');
const testSource = join(root, 'native', 'test', 'cf_test.c');
const output = process.env.CF_TEST_OUTPUT || join(root, 'native', 'build', 'cf-test');
const quiet = process.argv.includes('--quiet');
const psaLibs = psaLibFlags();

const sources = [
  ...readdirSync(cryptoDir)
    .filter((name) => name.endsWith('.c'))
    .sort()
    .map((name) => join(cryptoDir, name)),
  testSource,
];
const inputs = [
  ...sources,
  ...readdirSync(cryptoDir).map((name) => join(cryptoDir, name)),
  fileURLToPath(import.meta.url),
];
const flags = ['-std=c99', ...STRICT_C_FLAGS, ...SANITIZER_C_FLAGS, `-I${cryptoDir}`, ...psaCflags()];

const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
const stamp = `${output}.flags`;
const upToDate = existsSync(output) && statSync(output).mtimeMs >= newest && sameFlags();

/** The flags the program was last built with, beside it: other flags (CF_PSA_*) mean a rebuild. */
function sameFlags() {
  return existsSync(stamp) && readFileSync(stamp, 'utf8') === JSON.stringify([flags, psaLibs]);
}

if (upToDate) {
  if (!quiet) console.log(`build-native-test: ${relative(root, output)} is up to date`);
  process.exit(0);
}
mkdirSync(dirname(output), { recursive: true });
const temporary = `${output}.${process.pid}.tmp`;
const started = Date.now();
const result = spawnSync('cc', [...flags, ...sources, ...psaLibs, '-o', temporary], { encoding: 'utf8' });
if (result.status !== 0) {
  rmSync(temporary, { force: true });
  console.error(`build-native-test: cc failed (${result.status ?? result.signal}):\n${result.stderr}${result.stdout}`);
  if (result.error) console.error(result.error.message);
  process.exit(1);
}
renameSync(temporary, output);
writeFileSync(stamp, JSON.stringify([flags, psaLibs]));
if (!quiet)
  console.log(`build-native-test: built ${relative(root, output)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
