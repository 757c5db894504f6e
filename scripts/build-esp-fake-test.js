#!/usr/bin/env node
// Builds the host test programs of the ESP32 paths of native/crypto/cf_device_key.c:
// cf_device_key.c and cf_random.c compiled with -DESP_PLATFORM against the fake ESP-IDF of
// native/test/esp-fakes/ (in-memory NVS and eFuse, a recording RNG, HMAC peripheral and log),
// cf_crypto.c as on the host (Debian's Mbed TLS), and native/test/esp-fakes/device_key_esp_test.c.
// Two chips: native/build/device-key-esp-nohmac (the original ESP32, the NVS secret) and
// native/build/device-key-esp-hmac (a chip with the HMAC peripheral, the eFuse key).
// Strict warnings, ASan and UBSan. A no-op when the programs are up to date.
//
//   node scripts/build-esp-fake-test.js [--quiet]
//   node scripts/build-esp-fake-test.js --check (hmac|nohmac) [--define NAME=VALUE ...]
//        compiles cf_device_key.c alone (-fsyntax-only) for that chip with the defines; exit
//        status and messages are the compiler's (to prove a compile-time refusal)
//
// Environment: CF_DEVICE_KEY_SOURCE  another cf_device_key.c to build (to run the tests against
//              an older version); CF_PSA_CFLAGS, CF_PSA_LIBS as for scripts/build-native-test.js.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { psaCflags, psaLibs as psaLibFlags, SANITIZER_C_FLAGS, STRICT_C_FLAGS } from './native-c-flags.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cryptoDir = join(root, 'native', 'crypto');
const fakesDir = join(root, 'native', 'test', 'esp-fakes');
const buildDir = join(root, 'native', 'build');
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const psaLibs = psaLibFlags();
const deviceKeySource = process.env.CF_DEVICE_KEY_SOURCE || join(cryptoDir, 'cf_device_key.c');

const common = ['-std=c11', ...STRICT_C_FLAGS, `-I${cryptoDir}`, ...psaCflags()];
const sanitize = SANITIZER_C_FLAGS;
const chip = { nohmac: [], hmac: ['-DCF_FAKE_HMAC=1'] };
/** The ESP32 side: the fakes come before anything else on the include path. */
const esp = (variant) => ['-DESP_PLATFORM', `-I${fakesDir}`, ...chip[variant]];

function cc(flags) {
  const result = spawnSync('cc', flags, { encoding: 'utf8' });
  return { ok: result.status === 0, text: `${result.stderr}${result.stdout}${result.error?.message ?? ''}` };
}

const checkAt = args.indexOf('--check');
if (checkAt >= 0) {
  const variant = args[checkAt + 1];
  if (!(variant in chip)) {
    console.error('build-esp-fake-test: --check hmac|nohmac');
    process.exit(2);
  }
  const defines = args.flatMap((a, i) => (args[i - 1] === '--define' ? [`-D${a}`] : []));
  const result = cc([...common, ...esp(variant), ...defines, '-fsyntax-only', deviceKeySource]);
  process.stderr.write(result.text);
  process.exit(result.ok ? 0 : 1);
}

const inputs = [
  ...readdirSync(cryptoDir).map((name) => join(cryptoDir, name)),
  ...readdirSync(fakesDir, { recursive: true }).map((name) => join(fakesDir, String(name))),
  deviceKeySource,
  fileURLToPath(import.meta.url),
].filter((f) => statSync(f).isFile());
const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
mkdirSync(buildDir, { recursive: true });

for (const variant of Object.keys(chip)) {
  const output = join(buildDir, `device-key-esp-${variant}`);
  const stamp = `${output}.flags`;
  const settings = JSON.stringify([common, sanitize, esp(variant), psaLibs, deviceKeySource]);
  if (
    existsSync(output) &&
    statSync(output).mtimeMs >= newest &&
    existsSync(stamp) &&
    readFileSync(stamp, 'utf8') === settings
  ) {
    if (!quiet) console.log(`build-esp-fake-test: ${relative(root, output)} is up to date`);
    continue;
  }
  const objects = join(buildDir, `device-key-esp-${variant}.${process.pid}.o`);
  mkdirSync(objects, { recursive: true });
  // cf_crypto.c is the host's: under ESP_PLATFORM it would take ESP-IDF's Mbed TLS configuration.
  const units = [
    [join(cryptoDir, 'cf_crypto.c'), []],
    [join(cryptoDir, 'cf_random.c'), esp(variant)],
    [deviceKeySource, esp(variant)],
    [join(fakesDir, 'esp_fakes.c'), esp(variant)],
    [join(fakesDir, 'device_key_esp_test.c'), esp(variant)],
  ];
  const built = [];
  for (const [source, flags] of units) {
    const object = join(objects, `${built.length}.o`);
    const result = cc([...common, ...sanitize, ...flags, '-c', source, '-o', object]);
    if (!result.ok) {
      rmSync(objects, { recursive: true, force: true });
      console.error(`build-esp-fake-test: cc failed on ${relative(root, source)} (${variant}):\n${result.text}`);
      process.exit(1);
    }
    built.push(object);
  }
  const temporary = `${output}.${process.pid}.tmp`;
  const linked = cc([...sanitize, ...built, ...psaLibs, '-o', temporary]);
  rmSync(objects, { recursive: true, force: true });
  if (!linked.ok) {
    rmSync(temporary, { force: true });
    console.error(`build-esp-fake-test: link failed (${variant}):\n${linked.text}`);
    process.exit(1);
  }
  renameSync(temporary, output);
  writeFileSync(stamp, settings);
  if (!quiet) console.log(`build-esp-fake-test: built ${relative(root, output)}`);
}
