/**
 * The fuzzer of test/fuzz/ (run.ts, `npm run fuzz`), short: a few thousand inputs per target
 * (FUZZ_CI_RUNS, default 5000; at most FUZZ_CI_SECONDS per target, default 4) with a seed from
 * the clock (FUZZ_SEED to replay), printed with the figures. Fails on any crash, forgery or hang
 * and prints the input in hex; `malleable` (the unprotected bucket or the ECDSA s changed, which
 * docs/PROTOCOL.md §2.3 and §6.2 document) is printed as a figure.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ALL_TARGETS, clean, formatReport, fuzz } from './runner.js';

const RUNS = Number(process.env.FUZZ_CI_RUNS ?? 5000);
const SECONDS = Number(process.env.FUZZ_CI_SECONDS ?? 4);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000_000);

test(`fuzz every decoder and the cloud receiver: ${RUNS} inputs or ${SECONDS} s per target (seed ${SEED})`, async () => {
  const { reports, closeFindings } = await fuzz({ runs: RUNS, seconds: SECONDS, seed: SEED });
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(formatReport(r));
    for (const f of r.findings)
      if (f.kind !== 'malleable')
        lines.push(`  ${f.kind} at run ${f.run} (${f.strategy}): ${f.message}\n    input ${f.inputHex}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  assert.deepEqual(
    reports.map((r) => r.name),
    ALL_TARGETS,
    'every target reported',
  );
  for (const r of reports) assert.ok(r.runs >= Math.min(RUNS, 200), `${r.name}: only ${r.runs} inputs`);
  assert.deepEqual(closeFindings, [], `seed ${SEED}`);
  const failed = reports.filter((r) => !clean(r)).map((r) => `${r.name} (${JSON.stringify(r.counts)})`);
  assert.deepEqual(failed, [], `findings with seed ${SEED}; replay: npm run fuzz -- --seed ${SEED} --target NAME`);
});
