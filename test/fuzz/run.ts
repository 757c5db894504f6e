/**
 * `npm run fuzz -- [--runs N] [--seconds S] [--seed S] [--target NAME[,NAME…]] [--hang-ms MS] [--replay HEX]`
 *
 * Fuzzes every decoder of the protocol, the cloud's enrollment admission, the device's control
 * reader and the cloud's receiver (test/fuzz/targets.ts) with random, mutated and structure-aware
 * inputs (engine.ts), and prints per target: runs, time, seed, inputs per strategy, accepted
 * inputs and findings (crash, forgery, malleable, hang) with the input in hex. Defaults: 1,000,000
 * runs per target, no time limit, a seed from the clock. Exit status 1 when anything was found.
 * A finding replays with the same `--seed` and `--target`, or directly with `--replay HEX`.
 */
import { ALL_TARGETS, clean, formatReport, fuzz } from './runner.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const runs = Number(option('runs') ?? 1_000_000);
const seconds = option('seconds') === undefined ? undefined : Number(option('seconds'));
const seed = Number(option('seed') ?? Date.now() % 1_000_000_000);
const names = option('target')?.split(',') ?? ALL_TARGETS;
const hangMs = Number(option('hang-ms') ?? 10_000);
const replay = option('replay');
for (const n of names) {
  if (!ALL_TARGETS.includes(n)) {
    console.error(`unknown target ${n}; targets: ${ALL_TARGETS.join(', ')}`);
    process.exit(2);
  }
}
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  console.error('--runs and --seed are integers');
  process.exit(2);
}

console.log(
  `fuzz: ${names.length} targets, up to ${runs} runs${seconds === undefined ? '' : ` or ${seconds} s`} each, seed ${seed}, hang bound ${hangMs} ms`,
);
const started = Date.now();
const { reports, closeFindings } = await fuzz({
  runs,
  ...(seconds === undefined ? {} : { seconds }),
  seed,
  names,
  hangMs,
  ...(replay === undefined ? {} : { replay }),
  onReport: (r) => {
    console.log(formatReport(r));
    for (const f of r.findings)
      console.log(`  ${f.kind} at run ${f.run} (${f.strategy}): ${f.message}\n    input ${f.inputHex}`);
  },
});
for (const m of closeFindings) console.log(`after the runs: ${m}`);
const total = reports.reduce((n, r) => n + r.runs, 0);
const bad = reports.filter((r) => !clean(r)).length + closeFindings.length;
console.log(
  `fuzz: ${total} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s, seed ${seed}: ${bad === 0 ? 'nothing found' : `${bad} target(s) with findings`}`,
);
process.exit(bad === 0 ? 0 : 1);
