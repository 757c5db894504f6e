#!/usr/bin/env node
// The project's one test command (`npm test`): type-check and build, lint, then run every
// compiled test file under dist/test with node's test runner. Extra arguments are passed to
// `node --test` (e.g. `npm test -- --test-name-pattern=wycheproof`).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name) => join(root, 'node_modules', '.bin', name);

function run(step, command, args) {
  console.log(`\n▶ ${step}: ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`✖ ${step} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status || 1);
  }
}

function testFiles(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const name = entry.name;
    const path = join(dir, name);
    if (entry.isDirectory()) found.push(...testFiles(path));
    else if (name.endsWith('.test.js')) {
      // A compiled test whose source is gone (renamed or deleted) is stale: tsc never removes it.
      const source = join(root, relative(join(root, 'dist'), path)).replace(/\.js$/, '.ts');
      if (existsSync(source)) found.push(path);
      else {
        console.log(`  (removing stale ${relative(root, path)}: ${relative(root, source)} is gone)`);
        rmSync(path, { force: true });
        rmSync(`${path}.map`, { force: true });
      }
    }
  }
  return found;
}

run('build', bin('tsc'), ['-p', 'tsconfig.json']);
run('runtime-neutral src/ (no Node types)', bin('tsc'), ['-p', 'tsconfig.src.json']);
run('device app on the Moddable SDK typings', bin('tsc'), ['-p', 'tsconfig.moddable.json', '--noEmit']);
run('lint', bin('biome'), ['check', '.']);

const selected = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const options = process.argv.slice(2).filter((a) => a.startsWith('-'));
let files = testFiles(join(root, 'dist', 'test'));
if (selected.length > 0) files = files.filter((f) => selected.some((s) => relative(root, f).includes(s)));
if (files.length === 0) {
  console.error('✖ no test files found');
  process.exit(1);
}
// A test still running after 15 minutes (the longest, the chaos cover, takes ~3) fails with its
// name instead of holding the run, and CI, forever.
const TEST_TIMEOUT_MS = 15 * 60 * 1000;
run('tests', process.execPath, [
  '--test',
  '--test-concurrency=2',
  `--test-timeout=${TEST_TIMEOUT_MS}`,
  ...options,
  ...files.map((f) => relative(root, f)),
]);
