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

/**
 * The platform choice, made here and nowhere else: the app imports `@target/NAME.js` (crypto, huk,
 * temperature) and each target has a folder of files with those names, src/moddable/TARGET/ —
 * as Moddable's own modules have one file name per platform. (tsconfig.moddable.json maps
 * `@target/*` to the simulator's folder, for type checking only.)
 */
const targets = ['sim', 'esp32'];

/**
 * Bundles the app for one target into dist/moddable/TARGET/main.js and returns esbuild's result
 * (with `metafile`: which input contributed how many bytes, for bench/device-bundle.ts).
 */
export async function bundleDevice(target) {
  if (!targets.includes(target)) throw new Error(`no such target ${target}: ${targets.join(', ')}`);
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
          b.onResolve({ filter: /^@target\/[a-z0-9-]+\.js$/ }, (args) => ({
            path: join(root, 'src/moddable', target, args.path.slice('@target/'.length).replace(/\.js$/, '.ts')),
          }));
        },
      },
    ],
  });
  return { outfile, metafile: result.metafile };
}

export const deviceTargets = targets;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const target of deviceTargets) {
    const { outfile } = await bundleDevice(target);
    console.log(`bundled ${target}: ${outfile}`);
  }
}
