/**
 * The fuzzing loop, in a worker thread started by runner.ts: builds the targets once, then runs
 * each named target for `runs` inputs or `seconds`, whichever ends first. Before each input it
 * writes the input and a progress count into shared memory, so the runner can tell a hang (no
 * progress for `hangMs`) and name the input that hung even when this thread never returns.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toHex } from '../../src/bytes.js';
import { nextInput, Rng, STRATEGIES, type Strategy } from './engine.js';
import type { FindingReport, TargetReport, WorkerJob } from './runner.js';
import { Finding, makeTargets } from './targets.js';

const job = workerData as WorkerJob;
const progress = new Int32Array(job.shared, 0, 4); // [count, input length, target index, running]
const inputBytes = new Uint8Array(job.shared, 16);

/** The seed of one target's sequence: the same whether it runs alone (--target) or with the others. */
export function targetSeed(seed: number, name: string): number {
  let h = seed >>> 0;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

const set = await makeTargets();
parentPort!.postMessage({ type: 'ready', names: set.targets.map((t) => t.name) });
for (const name of job.names) {
  const index = set.targets.findIndex((t) => t.name === name);
  const target = set.targets[index];
  if (target === undefined) throw new Error(`no fuzz target ${name}`);
  const pool = set.targets.flatMap((t) => t.seeds);
  const rng = new Rng(targetSeed(job.seed, name));
  const byStrategy = Object.fromEntries(STRATEGIES.map((s) => [s, 0])) as Record<Strategy, number>;
  const findings: FindingReport[] = [];
  const counts = { crash: 0, forgery: 0, malleable: 0, hang: 0 };
  let accepted = 0;
  let slowestMs = 0;
  let runs = 0;
  const started = performance.now();
  const deadline = started + job.seconds * 1000;
  Atomics.store(progress, 2, index);
  Atomics.store(progress, 3, 1);
  const replay = job.replay === undefined ? undefined : Uint8Array.from(Buffer.from(job.replay, 'hex'));
  while (runs < (replay ? 1 : job.runs) && (runs % 64 !== 0 || performance.now() < deadline)) {
    const { input, strategy } = replay
      ? { input: replay, strategy: 'valid' as Strategy }
      : nextInput(rng, target.seeds, pool);
    runs++;
    byStrategy[strategy]++;
    const n = Math.min(input.length, inputBytes.length);
    inputBytes.set(input.subarray(0, n));
    Atomics.store(progress, 1, input.length);
    Atomics.add(progress, 0, 1);
    const t0 = performance.now();
    try {
      const verdict = await target.run(input);
      if (verdict === 'accepted') accepted++;
    } catch (e) {
      const f =
        e instanceof Finding ? e : new Finding('crash', `the harness threw ${(e as Error)?.stack ?? String(e)}`);
      counts[f.kind]++;
      if (f.kind === 'malleable') accepted++;
      if (findings.filter((x) => x.kind === f.kind).length < 5)
        findings.push({ kind: f.kind, message: f.message.slice(0, 2000), run: runs, strategy, inputHex: toHex(input) });
    }
    const ms = performance.now() - t0;
    if (ms > slowestMs) slowestMs = ms;
    if (ms > job.hangMs) {
      counts.hang++;
      if (findings.filter((x) => x.kind === 'hang').length < 5)
        findings.push({
          kind: 'hang',
          message: `one input took ${ms.toFixed(0)} ms`,
          run: runs,
          strategy,
          inputHex: toHex(input),
        });
    }
  }
  Atomics.store(progress, 3, 0);
  const report: TargetReport = {
    name,
    allowed: target.allowed,
    seed: job.seed,
    runs,
    ms: performance.now() - started,
    accepted,
    byStrategy,
    slowestMs,
    counts,
    findings,
  };
  parentPort!.postMessage({ type: 'report', report });
}
try {
  await set.close();
} catch (e) {
  const message = e instanceof Finding ? e.message : `closing the targets: ${(e as Error)?.stack ?? String(e)}`;
  parentPort!.postMessage({ type: 'closeFinding', message });
}
parentPort!.postMessage({ type: 'done' });
