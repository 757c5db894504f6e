/**
 * native/crypto/cf_crypto.c over a watched and deliberately failing PSA Crypto:
 * test/native/psa-harness.c, linked with `-Wl,--wrap` around every PSA function cf_crypto.c calls,
 * built here with AddressSanitizer and UndefinedBehaviorSanitizer against the same PSA library
 * as scripts/build-native-test.js (CF_PSA_CFLAGS / CF_PSA_LIBS, default Debian's -lmbedcrypto).
 *
 * - faults: each C API operation with its k-th PSA call failing, for every k: the failure is
 *   reported, every PSA key is destroyed exactly once (never an id twice), outputs are wiped;
 * - ecdsa-ranges: r or s equal to 0, n, n + 1 or 2^256 - 1 is refused before PSA is called
 *   (ESP-IDF 6's ECDSA peripheral driver does not check them);
 * - sizes: NULL outputs with input, NULL inputs with a length, and lengths whose output size
 *   overflows are CF_ERR_BAD_INPUT, before PSA is called.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { projectRoot } from '../vectors.js';

const HARNESS = 'test/native/psa-harness.c';
const program = join(projectRoot, 'native', 'build', 'psa-harness');
const WRAPPED = [
  'psa_import_key',
  'psa_generate_key',
  'psa_destroy_key',
  'psa_hash_compute',
  'psa_mac_compute',
  'psa_aead_encrypt',
  'psa_aead_decrypt',
  'psa_cipher_encrypt',
  'psa_cipher_decrypt',
  'psa_export_key',
  'psa_export_public_key',
  'psa_sign_message',
  'psa_verify_message',
  'psa_raw_key_agreement',
];

/** The shared C flags of scripts/native-c-flags.js (a script, outside the compiled tree). */
interface NativeCFlags {
  STRICT_C_FLAGS: string[];
  SANITIZER_C_FLAGS: string[];
  psaCflags(): string[];
  psaLibs(): string[];
}

before(async () => {
  const flagsModule = pathToFileURL(join(projectRoot, 'scripts', 'native-c-flags.js')).href;
  const { STRICT_C_FLAGS, SANITIZER_C_FLAGS, psaCflags, psaLibs } = (await import(flagsModule)) as NativeCFlags;
  mkdirSync(join(projectRoot, 'native', 'build'), { recursive: true });
  const crypto = join(projectRoot, 'native', 'crypto');
  const args = [
    '-std=c99',
    ...STRICT_C_FLAGS,
    ...SANITIZER_C_FLAGS,
    `-I${crypto}`,
    ...psaCflags(),
    join(crypto, 'cf_crypto.c'),
    join(crypto, 'cf_random.c'),
    join(projectRoot, HARNESS),
    '-o',
    program,
    `-Wl,${WRAPPED.map((name) => `--wrap=${name}`).join(',')}`,
    ...psaLibs(),
  ];
  const build = spawnSync(process.env.CC ?? 'cc', args, { encoding: 'utf8' });
  assert.equal(build.status, 0, `building ${HARNESS} failed:\n${build.stdout}${build.stderr}`);
});

for (const part of ['faults', 'ecdsa-ranges', 'sizes']) {
  test(`the C API over a watched PSA: ${part} (${HARNESS})`, () => {
    const run = spawnSync(program, [part], {
      encoding: 'utf8',
      env: { ...process.env, ASAN_OPTIONS: 'abort_on_error=1:detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
    });
    const output = `${run.stdout}${run.stderr}`;
    assert.doesNotMatch(output, /AddressSanitizer|LeakSanitizer|runtime error:/, `${HARNESS} ${part}:\n${output}`);
    assert.equal(run.status, 0, `${HARNESS} ${part} exited ${run.status ?? run.signal}:\n${output}`);
    const [, passed, failed] = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout) ?? [];
    assert.equal(failed, '0', `${HARNESS} ${part}:\n${output}`);
    assert.ok(Number(passed) >= 20, `${HARNESS} ${part}: only ${passed} checks ran:\n${output}`);
  });
}
