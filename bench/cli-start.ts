/**
 * The CLI's cold start: wall time of `node bin/cose-flow.js ARGS` from spawn to exit, the median
 * of `runs` runs (each a new Node process, nothing cached but the OS's file cache).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/cli-start.js [--runs 15]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/cose-flow.js', import.meta.url));

export interface CliStartResult {
  args: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
}

export function measureCliStart(args: string[], runs = 15): CliStartResult {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const began = process.hrtime.bigint();
    const run = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - began) / 1e6;
    if (run.status !== 0) throw new Error(`cose-flow ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
    times.push(ms);
  }
  times.sort((a, b) => a - b);
  return {
    args: args.join(' '),
    medianMs: times[Math.floor(times.length / 2)]!,
    minMs: times[0]!,
    maxMs: times.at(-1)!,
    runs,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--runs');
  const runs = at < 0 ? 15 : Number(process.argv[at + 1]);
  for (const args of [['--help'], ['inspect', '--help'], ['sim', '--help'], ['cloud', '--help']])
    process.stdout.write(`${JSON.stringify(measureCliStart(args, runs))}\n`);
}
