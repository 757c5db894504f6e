/**
 * Runs fuzz targets (targets.ts) in a worker thread (worker.ts) and watches it: a target whose
 * progress count does not move for `hangMs` is a hang — the worker is terminated, the input it was
 * on is reported from shared memory, and a new worker goes on with the remaining targets.
 * Used by the CLI (run.ts, `npm run fuzz`) and the CI test (fuzz.test.ts).
 */
import { Worker } from 'node:worker_threads';
import { toHex } from '../../src/bytes.js';
import type { Strategy } from './engine.js';

export interface FindingReport {
  kind: 'crash' | 'forgery' | 'malleable' | 'hang';
  message: string;
  /** 1-based index of the input in the target's sequence (replay with the same seed). */
  run: number;
  strategy: Strategy;
  inputHex: string;
}

export interface TargetReport {
  name: string;
  allowed: string;
  seed: number;
  runs: number;
  ms: number;
  accepted: number;
  byStrategy: Record<Strategy, number>;
  slowestMs: number;
  counts: Record<FindingReport['kind'], number>;
  findings: FindingReport[];
}

export interface FuzzOptions {
  /** Inputs per target (upper bound). */
  runs: number;
  /** Time per target, seconds (upper bound; default no limit). */
  seconds?: number;
  seed: number;
  /** Target names (default all). */
  names?: string[];
  /** No progress for this long is a hang (default 10 s: a loaded 2-core machine is slow, never that slow). */
  hangMs?: number;
  /** Feed this one input (hex) to the named targets instead of generating inputs. */
  replay?: string;
  onReport?: (report: TargetReport) => void;
}

export interface WorkerJob {
  names: string[];
  runs: number;
  seconds: number;
  seed: number;
  hangMs: number;
  shared: SharedArrayBuffer;
  replay?: string;
}

const INPUT_BYTES = 1 << 17;

/** The names of all targets, in order (builds them once in a worker). */
export const ALL_TARGETS = [
  'cbor',
  'cose-sign1',
  'cose-encrypt0',
  'cose-encrypt',
  'cose-mac0',
  'cose-key',
  'key-message',
  'data-message',
  'enroll-request',
  'enroll-result',
  'enroll-admission',
  'control',
  'cloud-receiver',
];

export async function fuzz(options: FuzzOptions): Promise<{ reports: TargetReport[]; closeFindings: string[] }> {
  const hangMs = options.hangMs ?? 10_000;
  let remaining = [...(options.names ?? ALL_TARGETS)];
  const reports: TargetReport[] = [];
  const closeFindings: string[] = [];
  while (remaining.length > 0) {
    const shared = new SharedArrayBuffer(16 + INPUT_BYTES);
    const progress = new Int32Array(shared, 0, 4);
    const input = new Uint8Array(shared, 16);
    const job: WorkerJob = {
      names: remaining,
      runs: options.runs,
      seconds: options.seconds ?? Number.POSITIVE_INFINITY,
      seed: options.seed,
      hangMs,
      shared,
      ...(options.replay === undefined ? {} : { replay: options.replay }),
    };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: job });
    const hung = await new Promise<{ name: string; report: TargetReport } | undefined>((resolve, reject) => {
      let last = -1;
      let still = 0;
      let startedAt = Date.now();
      let current = remaining[0]!;
      const watch = setInterval(() => {
        const count = Atomics.load(progress, 0);
        if (Atomics.load(progress, 3) === 0 || count !== last) {
          last = count;
          still = Date.now();
          return;
        }
        if (Date.now() - still < hangMs) return;
        clearInterval(watch);
        const length = Atomics.load(progress, 1);
        const hex = toHex(input.subarray(0, Math.min(length, INPUT_BYTES)));
        void worker.terminate();
        resolve({
          name: current,
          report: {
            name: current,
            allowed: '',
            seed: options.seed,
            runs: count,
            ms: Date.now() - startedAt,
            accepted: 0,
            byStrategy: { random: 0, mutate: 0, structure: 0, valid: 0 },
            slowestMs: Date.now() - still,
            counts: { crash: 0, forgery: 0, malleable: 0, hang: 1 },
            findings: [
              { kind: 'hang', message: `no progress for ${hangMs} ms`, run: count, strategy: 'valid', inputHex: hex },
            ],
          },
        });
      }, 250);
      worker.on('message', (m: { type: string; report?: TargetReport; message?: string }) => {
        if (m.type === 'report') {
          reports.push(m.report!);
          options.onReport?.(m.report!);
          remaining = remaining.slice(1);
          current = remaining[0] ?? '';
          startedAt = Date.now();
          Atomics.store(progress, 0, 0);
          last = -1;
        } else if (m.type === 'closeFinding') closeFindings.push(m.message!);
        else if (m.type === 'done') {
          clearInterval(watch);
          resolve(undefined);
        }
      });
      worker.on('error', (e) => {
        clearInterval(watch);
        reject(e);
      });
      worker.on('exit', (code) => {
        clearInterval(watch);
        if (code !== 0 && remaining.length > 0) reject(new Error(`fuzz worker exited with ${code}`));
        else resolve(undefined);
      });
    });
    if (hung === undefined) break;
    reports.push(hung.report);
    options.onReport?.(hung.report);
    remaining = remaining.filter((n) => n !== hung.name);
  }
  return { reports, closeFindings };
}

/** One line per target: runs, time, rate, accepted, findings. */
export function formatReport(r: TargetReport): string {
  const s = (r.ms / 1000).toFixed(1);
  const rate = r.ms > 0 ? Math.round(r.runs / (r.ms / 1000)) : 0;
  const by = Object.entries(r.byStrategy)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const found = Object.entries(r.counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${r.name.padEnd(17)} ${String(r.runs).padStart(8)} runs  ${s.padStart(6)} s  ${String(rate).padStart(6)}/s  accepted ${r.accepted}  slowest ${r.slowestMs.toFixed(0)} ms  seed ${r.seed}  [${by}]  ${found}`;
}

/**
 * Whether a report is clean: no crash, forgery or hang. `malleable` (accepted with the unprotected
 * bucket or the ECDSA s changed, which docs/PROTOCOL.md §2.3/§6.2 document) is a figure, not a failure.
 */
export const clean = (r: TargetReport) => r.counts.crash === 0 && r.counts.forgery === 0 && r.counts.hang === 0;
