/**
 * Enrollment throughput (issue 13 §1): N simulated devices (system/fleet.ts: the real device
 * application, node:crypto, one MQTT connection each) enroll through mosquitto with a fresh CA,
 * served by the enrollment service in a process of its own (this file forked with `--serve`: what
 * `cose-flow ca serve` runs, startEnrollmentService, with the fleet's queue and rate-limit
 * settings), so that the two processes' CPU are told apart. Data messages are slow (0.1 msg/s per
 * device) so enrollment is what is measured. Prints one JSON line per run:
 * - `devicesPerSecond`: devices enrolled per second, end to end, from the first device's start to
 *   the last certificate stored by a device;
 * - `serviceCpuMsPerEnrollment`: the service process's CPU (process.cpuUsage, user + system) from
 *   when it listens to the last enrollment, per request decided;
 * - `simCpuMsPerDevice`: the simulator process's CPU over the same window, per device enrolled
 *   (the device's boot, HUK and store, MQTT connection, key and CSR, the request and its checks of
 *   the result — and, for the devices enrolled early, their first session's start and readings);
 * - `perCpuSecond`: what each side would do with one core to itself (1000 / its CPU ms per
 *   device): the service's own throughput, and the simulator's, apart from the other's and from
 *   whatever else the machine runs;
 * - `busyFraction`: each process's CPU over the wall-clock time (1 = a core's worth).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/enroll.js [--devices 1000] [--ramp-ms MS]
 *       [--timeout-s 600] [--broker mqtt://127.0.0.1:PORT]
 *
 * `measureEnrollment(options)` is the same for other benches (bench/ratios.ts); without `broker`
 * it starts its own mosquitto (test/fixtures/mosquitto.ts). `devicesPerSecond` counts only the
 * devices that enrolled before `timeoutMs`; `enrolled < devices` then says the run did not finish.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createBatch, readBatchSecret } from '../cloud/enroll/policy.js';
import { type EnrollmentServiceStats, startEnrollmentService } from '../cloud/enroll/service.js';
import { nodeCrypto } from '../node/crypto.js';
import { ensureCa, SIM_BATCH, startFleet } from '../system/fleet.js';
import { startMosquitto } from '../test/fixtures/mosquitto.js';

export interface EnrollmentBenchOptions {
  /** Devices to enroll (default 1000). */
  devices?: number;
  /** An MQTT broker URL; default: a mosquitto started for the run. */
  broker?: string;
  /** The fleet's start window (default: the fleet's, devices × 5 ms). */
  rampMs?: number;
  /** Give up after this long (default 600 000 ms). */
  timeoutMs?: number;
}

export interface EnrollmentBenchResult {
  devices: number;
  /** Devices that enrolled before the timeout. */
  enrolled: number;
  /** From the fleet's start to the last enrollment (or the timeout). */
  seconds: number;
  devicesPerSecond: number;
  /** The service process's CPU (user + system) per request it decided, in ms. */
  serviceCpuMsPerEnrollment: number;
  /** The simulator process's CPU (user + system) per device enrolled, in ms. */
  simCpuMsPerDevice: number;
  /** Enrollments (service) and devices (simulator) per second of each one's CPU time. */
  perCpuSecond: { service: number; sim: number };
  /** CPU time over wall-clock time of each process during the run (1 = one core busy). */
  busyFraction: { service: number; sim: number };
  /** What the service did (decided, superseded, busy …). */
  service: EnrollmentServiceStats;
  /** The devices' error lines by event, and how long `stop()` took. */
  errorReasons: Record<string, number>;
  stopSeconds: number;
}

/** What the service process says when asked (`'stats'`), and once it listens (`ready`). */
interface ServiceReport {
  ready?: true;
  cpuUs: number;
  stats: EnrollmentServiceStats;
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** The service side: the enrollment service on `dir`, answering the parent's questions over IPC. */
async function serve(dir: string, broker: string, devices: number): Promise<void> {
  const service = await startEnrollmentService({
    dataDir: dir,
    crypto: nodeCrypto(),
    brokerUrl: broker,
    // The fleet's in-process service settings (system/fleet.ts).
    maxQueue: Math.max(256, devices * 2),
    minIntervalMs: 200,
  });
  const report = (extra: Partial<ServiceReport> = {}) =>
    process.send!({ cpuUs: cpuUs(), stats: service.stats(), ...extra } satisfies ServiceReport);
  process.on('message', async (m) => {
    if (m === 'stats') report();
    else if (m === 'close') {
      await service.close();
      process.send!({ cpuUs: cpuUs(), stats: service.stats() } satisfies ServiceReport, () => process.exit(0));
    }
  });
  report({ ready: true });
}

/** Starts the service process and waits until it listens. */
function startService(dir: string, broker: string, devices: number) {
  const child: ChildProcess = fork(
    fileURLToPath(import.meta.url),
    ['--serve', dir, '--broker', broker, '--devices', String(devices)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = () =>
    new Promise<ServiceReport>((resolve, reject) => {
      const onExit = () => reject(new Error('the enrollment service process ended'));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        resolve(m as ServiceReport);
      });
    });
  return {
    ready: next(),
    ask: (what: 'stats' | 'close') => {
      const answer = next();
      child.send(what);
      return answer;
    },
    /** Waits a few seconds for the process to end (after `close`), then ends it. */
    end: async () => {
      const timer = setTimeout(() => child.kill(), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function measureEnrollment(options: EnrollmentBenchOptions = {}): Promise<EnrollmentBenchResult> {
  const devices = options.devices ?? 1000;
  const timeoutMs = options.timeoutMs ?? 600_000;
  const broker = options.broker === undefined ? await startMosquitto() : undefined;
  const url = options.broker ?? broker!.url;
  const dir = mkdtempSync(join(tmpdir(), 'cose-flow-bench-enroll-'));
  let service: ReturnType<typeof startService> | undefined;
  try {
    // The CA, cloud key and batch first, so the service process finds them.
    await ensureCa(dir);
    if (readBatchSecret(dir, SIM_BATCH) === undefined) createBatch(nodeCrypto(), dir, SIM_BATCH);
    service = startService(dir, url, devices);
    const serviceBegan = await service.ready;
    const simBegan = cpuUs();
    const began = Date.now();
    const fleet = await startFleet({
      broker: url,
      dataDir: dir,
      devices,
      rate: 0.1,
      qos: 1,
      crypto: 'node',
      enrollService: false,
      ...(options.rampMs === undefined ? {} : { rampMs: options.rampMs }),
    });
    let last = began;
    let enrolled = 0;
    while (Date.now() - began < timeoutMs) {
      const now = fleet.enrolled();
      if (now > enrolled) {
        enrolled = now;
        last = Date.now();
      }
      if (enrolled >= devices) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const simUs = cpuUs() - simBegan;
    const serviceEnd = await service.ask('stats');
    const wallUs = (Date.now() - began) * 1000;
    const serviceUs = serviceEnd.cpuUs - serviceBegan.cpuUs;
    const stopBegan = Date.now();
    const totals = await fleet.stop();
    await service.ask('close');
    const seconds = ((enrolled >= devices ? last : Date.now()) - began) / 1000;
    const r1 = (n: number) => Math.round(n * 10) / 10;
    const r2 = (n: number) => Math.round(n * 100) / 100;
    const decided = Math.max(1, serviceEnd.stats.decided);
    return {
      devices,
      enrolled,
      seconds: r1(seconds),
      devicesPerSecond: r1(enrolled / seconds),
      serviceCpuMsPerEnrollment: r2(serviceUs / 1000 / decided),
      simCpuMsPerDevice: r2(simUs / 1000 / Math.max(1, enrolled)),
      perCpuSecond: { service: Math.round(decided / (serviceUs / 1e6)), sim: Math.round(enrolled / (simUs / 1e6)) },
      busyFraction: { service: r2(serviceUs / wallUs), sim: r2(simUs / wallUs) },
      service: serviceEnd.stats,
      errorReasons: totals.errorReasons,
      stopSeconds: r1((Date.now() - stopBegan) / 1000),
    };
  } finally {
    await service?.end();
    rmSync(dir, { recursive: true, force: true });
    await broker?.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string' },
      'ramp-ms': { type: 'string' },
      'timeout-s': { type: 'string' },
      broker: { type: 'string' },
      serve: { type: 'string' },
    },
  });
  if (values.serve !== undefined) {
    await serve(values.serve, values.broker!, Number(values.devices));
    return;
  }
  const result = await measureEnrollment({
    ...(values.devices === undefined ? {} : { devices: Number(values.devices) }),
    ...(values['ramp-ms'] === undefined ? {} : { rampMs: Number(values['ramp-ms']) }),
    ...(values['timeout-s'] === undefined ? {} : { timeoutMs: Number(values['timeout-s']) * 1000 }),
    ...(values.broker === undefined ? {} : { broker: values.broker }),
  });
  console.log(JSON.stringify({ case: 'enroll', ...result }));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
