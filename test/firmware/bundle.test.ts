/**
 * The device bundles (scripts/bundle-moddable.js) and the C the manifest builds for their platform
 * fit together: every native function a bundle calls (`native("xs_…")`, `Native("xs_…")`) is
 * defined by a C file of that platform's build, so the firmware cannot link a name that does not
 * exist or load a module whose C the manifest left out. The ESP32 bundle takes the native crypto,
 * the hardware identity and the temperature sensor; the desktop simulator's only the RNG.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { measureBundles, owner } from '../../bench/device-bundle.js';
import { projectRoot } from '../vectors.js';
import { deviceBuildCFiles, manifestPathOf, projectPath } from './device-build.js';

function bundle(target: 'esp32' | 'sim'): string {
  return readFileSync(join(projectRoot, 'dist', 'moddable', target, 'main.js'), 'utf8');
}

function nativeCalls(code: string): Set<string> {
  return new Set([...code.matchAll(/\b[Nn]ative\(\s*["'](xs_[A-Za-z0-9_]+)["']\s*\)/g)].map((m) => m[1]!));
}

function cDefinitions(platform: string): Map<string, string> {
  const defined = new Map<string, string>();
  for (const file of deviceBuildCFiles(manifestPathOf(projectRoot), platform)) {
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(
      /^void\s+(xs_[A-Za-z0-9_]+)\s*\(\s*(?:xsMachine\s*\*\s*the|void\s*\*\s*\w+)\s*\)/gm,
    )) {
      defined.set(m[1]!, projectPath(projectRoot, file));
    }
  }
  return defined;
}

test('the device bundles are built for esp32 and the desktop simulator', () => {
  const run = spawnSync(process.execPath, [join(projectRoot, 'scripts', 'bundle-moddable.js')], { encoding: 'utf8' });
  assert.equal(run.status, 0, `scripts/bundle-moddable.js failed:\n${run.stdout}${run.stderr}`);
});

for (const [target, platform] of [
  ['esp32', 'esp32'],
  ['sim', 'lin'],
] as const) {
  test(`every native function the ${target} bundle calls is defined by C that manifest.json builds for ${platform}`, () => {
    const calls = nativeCalls(bundle(target));
    assert.ok(calls.size > 0, `the ${target} bundle calls no native function`);
    const defined = cDefinitions(platform);
    const missing = [...calls].filter((name) => !defined.has(name));
    assert.deepEqual(missing, [], `called by dist/moddable/${target}/main.js but not defined for ${platform}`);
  });
}

test('the ESP32 bundle takes native crypto, the hardware identity and the temperature sensor; the simulator only the RNG', () => {
  const esp32 = nativeCalls(bundle('esp32'));
  for (const name of ['xs_cf_ecdsa_sign', 'xs_cf_aes_gcm_encrypt', 'xs_cf_p256_key_device', 'xs_cf_temperature_read']) {
    assert.ok(esp32.has(name), `the esp32 bundle does not call ${name}`);
  }
  assert.deepEqual([...nativeCalls(bundle('sim'))], ['xs_cf_get_random_values']);
});

test('each device bundle is within its size budget (bench/device-bundle.ts), and the sizes are attributed', async () => {
  assert.equal(owner('node_modules/@noble/curves/nist.js'), '@noble/curves');
  assert.equal(owner('node_modules/cbor-x/decode.js'), 'cbor-x');
  assert.equal(owner('src/cose/sign1.ts'), 'src/cose');
  const reports = await measureBundles();
  assert.deepEqual(reports.map((r) => r.target).sort(), ['esp32', 'sim']);
  for (const r of reports) {
    assert.ok(r.bytes <= r.budget, `${r.target}: ${r.bytes} B of JavaScript is over its budget of ${r.budget} B`);
    const attributed = r.byOwner.reduce((n, o) => n + o.bytes, 0);
    assert.ok(
      attributed > 0.9 * r.bytes && attributed <= r.bytes,
      `${r.target}: ${attributed} of ${r.bytes} B attributed`,
    );
  }
  const esp32 = reports.find((r) => r.target === 'esp32')!;
  assert.ok(
    !esp32.byOwner.some((o) => o.owner.startsWith('@noble/')),
    'the esp32 bundle must use the native crypto, not noble',
  );
});
