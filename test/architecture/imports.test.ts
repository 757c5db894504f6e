/**
 * The import directions of docs/ARCHITECTURE.md hold over the whole tree (test/architecture/import-rules.ts),
 * and the check does fail on a wrong import.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkImports, repoPath, specifiers } from './import-rules.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const ROOMS = ['src', 'node', 'host-sim', 'system', 'cloud', 'cli'];

function sources(dir: string, out: Map<string, string>): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sources(path, out);
    else if (/\.(ts|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts'))
      out.set(repoPath(root, path), readFileSync(path, 'utf8'));
  }
  return out;
}

test('every import in src/, node/, host-sim/, system/, cloud/ and cli/ goes the stated direction', () => {
  const files = new Map<string, string>();
  for (const room of ROOMS) sources(join(root, room), files);
  assert.ok(files.size > 150, `only ${files.size} source files found under ${ROOMS.join(', ')}`);
  const violations = checkImports(files);
  assert.deepEqual(
    violations.map((v) => `${v.file}: '${v.specifier}' breaks "${v.rule}"`),
    [],
    'imports that break docs/ARCHITECTURE.md',
  );
});

test('the check fails on a wrong import in each room', () => {
  const wrong = new Map([
    ['src/profile/key-message.ts', "import { DeviceApp } from '../device/app.js';"],
    ['src/device/app.ts', "import { readFileSync } from 'node:fs';"],
    ['src/cose/sign1.ts', "import { x } from '../../cloud/pki/verify.js';"],
    ['host-sim/platform.ts', "import { createCa } from '../cloud/pki/authority.js';"],
    ['cloud/service/service.ts', "export { simDevice } from '../../host-sim/platform.js';"],
    ['cloud/dashboard/routes.ts', "const m = await import('../service/service.js');"],
    ['system/fleet.ts', "import '../cli/sim.js';"],
    ['node/crypto.ts', "import type { Store } from '../cloud/store/store.js';"],
  ]);
  const violations = checkImports(wrong);
  assert.deepEqual([...new Set(violations.map((v) => v.file))].sort(), [...wrong.keys()].sort());
  const fine = new Map([
    [
      'src/device/app.ts',
      "import { sealData } from '../profile/data-message.js';\nimport { x } from '@noble/curves/p256';",
    ],
    ['cloud/service/service.ts', "import { nodeCrypto } from '../../node/crypto.js';\nimport { x } from 'mqtt';"],
    ['system/demo.ts', "import { startCloudService } from '../cloud/service/service.js';"],
    ['cli/main.ts', "import { startDemoSystem } from '../system/demo.js';"],
  ]);
  assert.deepEqual(checkImports(fine), []);
});

test('specifiers() finds static, re-exported, side-effect, type-only and dynamic imports', () => {
  const source = [
    "import a from './a.js';",
    "import type { B } from './b.js';",
    "export { c } from './c.js';",
    "export * from './d.js';",
    "import './e.js';",
    "const f = await import('./f.js');",
    'import {',
    '  g,',
    "} from './g.js';",
  ].join('\n');
  assert.deepEqual(specifiers(source).sort(), ['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js', './g.js']);
});
