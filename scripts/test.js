#!/usr/bin/env node
// The project's one test command (`npm test`): type-check and build, lint, then run every
// compiled test file under dist/test with node's test runner. Extra arguments are passed to
// `node --test` (e.g. `npm test -- --test-name-pattern=wycheproof`).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
// The runner as a whole gets 45 minutes (a full run takes 5–9; COSE_FLOW_TEST_RUN_MINUTES changes it):
// past that, whatever holds it (a test file's process that does not exit, or its output never
// closing) is named and the run fails.
const RUN_TIMEOUT_MS = Number(process.env.COSE_FLOW_TEST_RUN_MINUTES || 45) * 60 * 1000;
const args = [
  '--test',
  '--test-concurrency=2',
  `--test-timeout=${TEST_TIMEOUT_MS}`,
  ...options,
  ...files.map((f) => relative(root, f)),
];
console.log(`\n▶ tests: node ${args.slice(0, 3 + options.length).join(' ')} <${files.length} files>`);
const runner = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });

/** The command lines of a process's children (Linux /proc; empty elsewhere). */
function childrenOf(pid) {
  try {
    const ids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return ids.map((id) => {
      try {
        return `${id}: ${readFileSync(`/proc/${id}/cmdline`, 'utf8').split('\0').join(' ').trim()}`;
      } catch {
        return `${id}: (gone)`;
      }
    });
  } catch {
    return [];
  }
}

const watchdog = setTimeout(() => {
  const held = childrenOf(runner.pid);
  console.error(`\n✖ tests: the runner has not finished after ${RUN_TIMEOUT_MS / 60_000} minutes; stopping it.`);
  console.error(
    held.length > 0
      ? `  still running:\n${held.map((c) => `    ${c}`).join('\n')}`
      : "  no test file is still running: the runner is waiting for a finished file's output to close" +
          ' (a process it started that is still alive holds it)',
  );
  for (const c of held) {
    try {
      process.kill(Number(c.split(':')[0]), 'SIGKILL');
    } catch {}
  }
  runner.kill('SIGKILL');
}, RUN_TIMEOUT_MS);
runner.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  if (code !== 0) console.error(`✖ tests failed (exit ${code ?? signal})`);
  process.exit(code === 0 ? 0 : code || 1);
});
