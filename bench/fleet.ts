/**
 * A whole fleet through the real processes, as a user runs it: mosquitto (a separate process,
 * test/fixtures/mosquitto.ts), `cose-flow cloud run` on SQLite (a child process, with --http for
 * /metrics) and `cose-flow sim --crypto node` (a child process) with N devices at R msg/s each.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/fleet.js [--devices 10000] [--rate 0.1]
 *       [--seconds 300] [--json]
 *
 * `--seconds` counts from the moment every device is sending (enrollment is timed separately).
 * Reports: enrollment time (start → all N sending), messages acknowledged by the devices (the sim's
 * summary) and stored (rows in the cloud's SQLite store: acknowledged = stored means no loss; the
 * store's unique key means no duplicate is ever stored, and the cloud's duplicate counter says how
 * many redeliveries it refused), msg/s, p99 latencies from the cloud's /metrics while every device
 * was sending (the upper bound of the bucket holding the 99th percentile): device → stored (the
 * reading's time stamp to stored, cose_flow_reading_age_seconds, a sample of the payloads; the
 * simulated devices share the machine's clock) and received → acknowledged
 * (cose_flow_delivery_latency_seconds), the time the sim took to stop after its --duration, and the peak RSS of the sim and
 * the cloud (VmHWM).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { main } from '../cli/main.js';
import { startMosquitto } from '../test/fixtures/mosquitto.js';

const BIN = fileURLToPath(new URL('../../bin/cose-flow.js', import.meta.url));

export interface FleetOptions {
  devices: number;
  /** Messages per second per device. */
  rate: number;
  /** Seconds of sending once every device sends. */
  seconds: number;
  /** The longest enrollment may take before the run is called failed (default 600 s). */
  enrollLimitSeconds?: number;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
}

export interface FleetResult {
  devices: number;
  rate: number;
  /** Start of the sim → every device sending; undefined when the limit passed first. */
  enrollSeconds: number | undefined;
  devicesSending: number;
  sendSeconds: number;
  acknowledged: number;
  stored: number;
  lost: number;
  duplicatesRefused: number;
  /** Payloads stored per second while every device was sending. */
  msgPerSecond: number;
  /** p99 received → acknowledged (after the commit), while every device was sending. */
  p99Ms: number | undefined;
  /** p99 device → stored: the reading's time stamp to stored (a sample), while every device was sending. */
  p99DeviceMs: number | undefined;
  simStopSeconds: number;
  simErrors: number;
  simPeakRssMb: number;
  cloudPeakRssMb: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function peakRssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? Number.NaN : Math.round(Number(m[1]) / 1024);
  } catch {
    return Number.NaN;
  }
}

function cli(args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

async function until(what: string, limitMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${limitMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A Prometheus histogram's cumulative buckets, in order. */
function histogramBuckets(metrics: string, name: string): { le: number; count: number }[] {
  const buckets: { le: number; count: number }[] = [];
  for (const m of metrics.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'gm')))
    buckets.push({ le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), count: Number(m[2]) });
  return buckets;
}

/**
 * The `q` quantile (0…1) of a Prometheus histogram, as the upper bound of its bucket (seconds);
 * with `since` (an earlier scrape), of the observations made between the two scrapes only.
 */
export function histogramQuantile(metrics: string, name: string, q: number, since?: string): number | undefined {
  const before = since === undefined ? [] : histogramBuckets(since, name);
  const buckets = histogramBuckets(metrics, name).map((b, i) => ({
    le: b.le,
    count: b.count - (before[i]?.count ?? 0),
  }));
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  return buckets.find((b) => b.count >= q * total)?.le;
}

function counterSum(metrics: string, name: string): number {
  let sum = 0;
  for (const m of metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)`, 'gm')))
    sum += Number(m[1]);
  return sum;
}

export async function measureFleet(options: FleetOptions): Promise<FleetResult> {
  const say = options.progress ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'cose-flow-fleet-'));
  const broker = await startMosquitto();
  const children: ChildProcess[] = [];
  try {
    const quiet = { stdout: () => {}, stderr: (t: string) => say(t.trimEnd()), stdin: async function* () {} };
    if ((await main(['ca', 'init', '--data-dir', dir], quiet)) !== 0) throw new Error('ca init failed');
    if ((await main(['cloud', 'keygen', '--data-dir', dir], quiet)) !== 0) throw new Error('cloud keygen failed');
    const httpPort = await freePort();
    const cloud = cli(['cloud', 'run', '--broker', broker.url, '--data-dir', dir, '--http', `127.0.0.1:${httpPort}`]);
    children.push(cloud);
    cloud.stdout?.resume();
    cloud.stderr?.on('data', (d: Buffer) => say(`cloud: ${d.toString().trimEnd()}`));
    const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    await until('the cloud service', 60_000, async () => {
      try {
        return (await fetch(`http://127.0.0.1:${httpPort}/health`)).ok;
      } catch {
        return false;
      }
    });

    const db = join(dir, 'cose-flow.db');
    const storedRows = (): number => {
      const d = new Database(db, { readonly: true, fileMustExist: true });
      try {
        return (d.prepare('SELECT count(*) AS n FROM payloads').get() as { n: number }).n;
      } finally {
        d.close();
      }
    };
    const enrollLimit = options.enrollLimitSeconds ?? 600;
    const began = Date.now();
    // --duration bounds the whole run: enrollment, then `seconds` of sending
    const sim = cli([
      'sim',
      '--broker',
      broker.url,
      '--data-dir',
      dir,
      '--devices',
      String(options.devices),
      '--rate',
      String(options.rate),
      '--crypto',
      'node',
      '--duration',
      String(enrollLimit + options.seconds),
      '--json',
    ]);
    children.push(sim);
    let out = '';
    let sending = 0;
    let enrolledAt: number | undefined;
    sim.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    let lastSaid = 0;
    sim.stderr?.on('data', (d: Buffer) => {
      const text = d.toString();
      for (const m of text.matchAll(/(\d+)\/(\d+) sending/g)) sending = Number(m[1]);
      if (enrolledAt === undefined && sending >= options.devices) enrolledAt = Date.now();
      if (Date.now() - lastSaid > 10_000) {
        lastSaid = Date.now();
        say(
          `sim: ${text
            .trim()
            .split(/[\r\n]/)
            .at(-1)}`,
        );
      }
    });
    const simExit = exited(sim);
    await until('every device sending', enrollLimit * 1000, () => enrolledAt !== undefined || sim.exitCode !== null);
    const enrollSeconds = enrolledAt === undefined ? undefined : (enrolledAt - began) / 1000;
    const sendStart = Date.now();
    const storedAtStart = storedRows();
    const metricsAtStart = await metrics();
    await new Promise((r) => setTimeout(r, options.seconds * 1000));
    const storedInWindow = storedRows() - storedAtStart;
    const windowSeconds = (Date.now() - sendStart) / 1000;
    const simRss = peakRssMb(sim.pid);
    const stopAsked = Date.now();
    sim.kill('SIGINT');
    await simExit;
    const simStopSeconds = (Date.now() - stopAsked) / 1000;
    const sendSeconds = (stopAsked - sendStart) / 1000;
    const summary = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { acknowledged?: number; errors?: number };
    const acknowledged = summary.acknowledged ?? 0;

    // the cloud commits what it took before acknowledging it: wait until the store stops growing
    let stored = storedRows();
    for (let still = 0; still < 3; ) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = storedRows();
      still = now === stored ? still + 1 : 0;
      stored = now;
    }
    const text = await metrics();
    const p99 = histogramQuantile(text, 'cose_flow_delivery_latency_seconds', 0.99, metricsAtStart);
    const p99Device = histogramQuantile(text, 'cose_flow_reading_age_seconds', 0.99, metricsAtStart);
    const cloudRss = peakRssMb(cloud.pid);
    return {
      devices: options.devices,
      rate: options.rate,
      enrollSeconds,
      devicesSending: sending,
      sendSeconds,
      acknowledged,
      stored,
      lost: Math.max(0, acknowledged - stored),
      duplicatesRefused: counterSum(text, 'cose_flow_duplicates_total'),
      msgPerSecond: storedInWindow / windowSeconds,
      p99Ms: p99 === undefined ? undefined : p99 * 1000,
      p99DeviceMs: p99Device === undefined ? undefined : p99Device * 1000,
      simStopSeconds,
      simErrors: summary.errors ?? Number.NaN,
      simPeakRssMb: simRss,
      cloudPeakRssMb: cloudRss,
    };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string, fallback: number): number => {
    const at = process.argv.indexOf(`--${name}`);
    return at < 0 ? fallback : Number(process.argv[at + 1]);
  };
  const result = await measureFleet({
    devices: arg('devices', 1000),
    rate: arg('rate', 0.1),
    seconds: arg('seconds', 60),
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
