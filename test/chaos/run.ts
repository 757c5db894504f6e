/**
 * `npm run chaos`: a chaos campaign (test/chaos/campaign.ts) with a printed seed.
 *
 *   npm run chaos -- [--seed N] [--minutes M] [--ci] [--devices N] [--rate R] [--run STORE:KIND,KIND…]…
 *
 * --run sqlite:cloud-kill9,disk-full runs exactly those runs (repeat --run for more). Without --ci it runs random runs for M minutes (default 10); with --ci the fixed short cover
 * the test suite runs. Prints one JSON line per run and the figures as a JSON line (`{"figures":…}`)
 * on standard output, progress and the table on standard error. Exit 1 when any run has a
 * problem: a duplicate, a loss where the broker kept the messages, a silent loss, no recovery.
 */
import { parseArgs } from 'node:util';
import { type FaultKind, figures, runCampaign, table } from './campaign.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    minutes: { type: 'string' },
    ci: { type: 'boolean' },
    devices: { type: 'string' },
    rate: { type: 'string' },
    run: { type: 'string', multiple: true },
  },
});
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const mode = values.ci ? 'ci' : 'long';
const minutes = values.minutes === undefined ? 10 : Number(values.minutes);
const say = (line: string) => process.stderr.write(`${line}\n`);
say(`chaos: seed ${seed} (replay with --seed ${seed}), ${mode === 'ci' ? 'the CI cover' : `${minutes} min of runs`}`);
const plans = values.run?.map((r, i) => {
  const [store, kinds] = r.split(':');
  if ((store !== 'sqlite' && store !== 'postgres') || !kinds) throw new Error(`--run STORE:KIND,KIND…, got ${r}`);
  return { index: i + 1, store, faults: kinds.split(',') as FaultKind[] } as const;
});
const started = Date.now();
const result = await runCampaign({
  seed,
  mode,
  minutes,
  ...(values.devices === undefined ? {} : { devices: Number(values.devices) }),
  ...(values.rate === undefined ? {} : { rate: Number(values.rate) }),
  ...(plans === undefined ? {} : { plans }),
  say,
  onRun: (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
});
const f = figures(result);
process.stdout.write(`${JSON.stringify({ figures: f, minutes: Math.round((Date.now() - started) / 6000) / 10 })}\n`);
say(
  `\n${table(result)}\nseed ${seed}: replay with npm run chaos -- --seed ${seed}${mode === 'ci' ? ' --ci' : ` --minutes ${minutes}`}`,
);
process.exit(f.problems > 0 ? 1 : 0);
