/**
 * The firmware's C compiles for the chips it is for: every C file of the ESP32 build, read from the
 * project's own manifests (so a manifest mistake fails here), is compiled for esp32, esp32s3 and
 * esp32c3 by the ESP32 compile-check kit (ESP-IDF v6.0 and Moddable SDK 8.2.3 headers, the SDK's
 * compile line per target, `-Wall -Wextra -Werror`; esp32c3 compiled to RISC-V objects by Debian's
 * `riscv64-unknown-elf-gcc`).
 *
 * The kit is an SDK stand-in kept beside the project (`../shared/esp32/`, or COSE_FLOW_ESP32_KIT):
 * where it is absent (a user's fresh clone) these tests say so loudly and are skipped; in CI
 * (CI=true) its absence, or a missing RISC-V compiler, is a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { projectRoot } from '../vectors.js';
import { deviceBuildCFiles, idfIncludeFolders, manifestPathOf, projectPath } from './device-build.js';

const TARGETS = ['esp32', 'esp32s3', 'esp32c3'] as const;
const kitDir = resolve(process.env.COSE_FLOW_ESP32_KIT ?? join(projectRoot, '..', 'shared', 'esp32'));
const kit = join(kitDir, 'compile-check');
const inCi = process.env.CI === 'true';

function kitAvailability(): string | false {
  if (existsSync(kit)) return false;
  const why =
    `the ESP32 compile-check kit is not at ${kit} (set COSE_FLOW_ESP32_KIT to its folder): ` +
    'the firmware C is NOT compiled for esp32, esp32s3 or esp32c3 in this run';
  if (inCi) throw new Error(`CI must compile the firmware: ${why}`);
  console.error(`\n!!!!!!!!!!\n!!! SKIPPED: ${why}\n!!!!!!!!!!\n`);
  return why;
}

interface KitRun {
  status: number | null;
  output: string;
  passed: number;
  failed: number;
}

function runKit(cwd: string, manifest: string, files: string[], targets = 'all'): KitRun {
  const run = spawnSync(kit, ['--target', targets, '--manifest', manifest, ...files], {
    cwd,
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}${run.error ? String(run.error) : ''}`;
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout ?? '');
  return {
    status: run.status,
    output,
    passed: summary ? Number(summary[1]) : -1,
    failed: summary ? Number(summary[2]) : -1,
  };
}

const skip = kitAvailability();
const manifest = manifestPathOf(projectRoot);
const cFiles = deviceBuildCFiles(manifest);

// Each test carries the skip, so a run without the kit counts them as skipped, not as nothing.
describe('firmware C on ESP32 targets (compile-check kit)', () => {
  test('the ESP32 build names the firmware C files', { skip }, () => {
    const names = cFiles.map((f) => projectPath(projectRoot, f));
    for (const expected of [
      'native/crypto/cf_crypto.c',
      'native/crypto/cf_device_key.c',
      'native/moddable/xs_cf_crypto.c',
    ]) {
      assert.ok(names.includes(expected), `manifest.json's esp32 build lacks ${expected}: it has ${names.join(', ')}`);
    }
  });

  test('every device C source under native/ is part of the ESP32 build', { skip }, () => {
    // Host-only C: the test program, the XS test host, the ESP-IDF stand-ins of the host tests, the
    // libFuzzer harness, build output.
    const hostOnly = new Set(['test', 'xs-host', 'build', 'bench', 'fuzz']);
    const sources: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (!(dir === join(projectRoot, 'native') && hostOnly.has(entry.name))) walk(path);
        } else if (entry.name.endsWith('.c')) sources.push(path);
      }
    };
    walk(join(projectRoot, 'native'));
    const missing = sources.filter((f) => !cFiles.includes(f)).map((f) => projectPath(projectRoot, f));
    assert.deepEqual(missing, [], `C sources not built for esp32 by manifest.json: ${missing.join(', ')}`);
  });

  test('every file compiles for esp32, esp32s3 and esp32c3 with -Wall -Wextra -Werror', { skip }, () => {
    const files = cFiles.map((f) => projectPath(projectRoot, f));
    const run = runKit(projectRoot, 'manifest.json', files);
    console.log(run.output.trim());
    assert.equal(run.failed, 0, `compile-check failed:\n${run.output}`);
    assert.equal(run.passed, files.length * TARGETS.length, `compile-check did not check every file:\n${run.output}`);
    assert.equal(run.status, 0, run.output);
    const riscv = /^# esp32c3: riscv64-unknown-elf-gcc -c/m.test(run.output);
    if (inCi) assert.ok(riscv, `CI must compile esp32c3 to RISC-V objects (gcc-riscv64-unknown-elf):\n${run.output}`);
    else if (!riscv)
      console.error('!!! esp32c3 was only syntax-checked: install gcc-riscv64-unknown-elf to compile it');
  });

  test('the check fails when an ESP-IDF include folder is removed from the manifest', { skip }, () => {
    const nativeManifest = join(projectRoot, 'native', 'manifest.json');
    // ESP-IDF's PSA driver headers are included by the PSA headers of Espressif's Mbed TLS fork
    // (its driver-context headers), which the kit replaces with upstream Mbed TLS 4.0: leaving that
    // folder out breaks the real build but not the kit's, so it is not one of the folders tried.
    const notVisibleToKit = '$(IDF_PATH)/components/mbedtls/port/psa_driver/include/';
    const folders = idfIncludeFolders(nativeManifest).filter((f) => f !== notVisibleToKit);
    assert.ok(folders.length >= 5, `native/manifest.json lists ${folders.length} ESP-IDF include folders`);
    const original = readFileSync(nativeManifest, 'utf8');
    for (const folder of folders) {
      const copy = mkdtempSync(join(tmpdir(), 'cf-manifest-'));
      try {
        // The project as the kit sees it, with that one folder left out of native/manifest.json.
        mkdirSync(join(copy, 'native'));
        writeFileSync(join(copy, 'manifest.json'), readFileSync(manifest));
        for (const entry of readdirSync(join(projectRoot, 'native'), { withFileTypes: true })) {
          if (entry.isDirectory())
            symlinkSync(join(projectRoot, 'native', entry.name), join(copy, 'native', entry.name));
        }
        const edited = original.replace(new RegExp(`\\s*"${folder.replace(/[$()/.]/g, '\\$&')}",?`), '');
        assert.notEqual(edited, original, `could not remove ${folder} from a copy of native/manifest.json`);
        writeFileSync(join(copy, 'native', 'manifest.json'), edited.replace(/,(\s*\])/g, '$1'));
        const files = cFiles.map((f) => projectPath(projectRoot, f));
        const run = runKit(copy, 'manifest.json', files);
        assert.equal(run.status, 1, `without ${folder} the check should fail (exit 1):\n${run.output}`);
        assert.ok(run.failed > 0, `without ${folder} no file failed:\n${run.output}`);
        assert.match(run.output, /^FAIL /m);
      } finally {
        rmSync(copy, { recursive: true, force: true });
      }
    }
  });
});
