#!/usr/bin/env node
// Bundles the device application (src/moddable/sdk/main.ts and everything it imports, npm
// packages included) into one ES module per target, for the Moddable SDK's mcconfig and the
// project's manifest.json:
//   dist/moddable/sim/main.js     desktop simulator: noble crypto (+ the platform RNG in C), a stored HUK
//   dist/moddable/esp32/main.js   ESP32: native crypto (PSA, native/crypto) and the hardware HUK
// The SDK's own modules (mqtt/js, preference, timer, …, embedded:*) stay imports: mcconfig links them.
// This builds nothing of the SDK; build the app with it afterwards, e.g.
//   node scripts/bundle-moddable.js && mcconfig -m -p lin ./manifest.json          (desktop simulator)
//   node scripts/bundle-moddable.js && mcconfig -m -p esp32/esp32_c3_devkitm_1 ./manifest.json
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sdkModules = [
  'mqtt/js',
  'preference',
  'timer',
  'time',
  'instrumentation',
  'mc/config',
  'text/encoder',
  'text/decoder',
];

/** The platform choice: which provider and HUK source each target links. */
const targets = {
  sim: {},
  esp32: {
    'platform-crypto.js': join(root, 'src/moddable/native-crypto.ts'),
    'identity-stored.js': join(root, 'src/moddable/identity-native.ts'),
    'temperature.js': join(root, 'src/moddable/sdk/temperature-esp32.ts'),
  },
};

/**
 * Bundles the app for one target into dist/moddable/TARGET/main.js and returns esbuild's result
 * (with `metafile`: which input contributed how many bytes, for bench/device-bundle.ts).
 */
export async function bundleDevice(target) {
  const swaps = targets[target];
  if (swaps === undefined) throw new Error(`no such target ${target}: ${Object.keys(targets).join(', ')}`);
  const outfile = join(root, 'dist', 'moddable', target, 'main.js');
  mkdirSync(dirname(outfile), { recursive: true });
  const result = await build({
    entryPoints: [join(root, 'src/moddable/sdk/main.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    mainFields: ['module', 'main'],
    conditions: ['import', 'default'],
    external: [...sdkModules, 'embedded:*'],
    logLevel: 'warning',
    metafile: true,
    plugins: [
      {
        name: 'cose-flow-target',
        setup(b) {
          b.onResolve({ filter: /^\.\.?\/(platform-crypto|identity-stored|temperature)\.js$/ }, (args) => {
            const swap = swaps[args.path.replace(/^\.\.?\//, '')];
            return swap === undefined ? undefined : { path: swap };
          });
        },
      },
    ],
  });
  return { outfile, metafile: result.metafile };
}

export const deviceTargets = Object.keys(targets);

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const target of deviceTargets) {
    const { outfile } = await bundleDevice(target);
    console.log(`bundled ${target}: ${outfile}`);
  }
}
