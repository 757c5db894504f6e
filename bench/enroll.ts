/**
 * Enrollment throughput (issue 13 §1): N simulated devices (system/fleet.ts: the real device
 * application, node:crypto, one MQTT connection each) enroll through mosquitto with the fleet's
 * in-process enrollment service and a fresh CA; devices per second from the first device's start
 * to the last certificate stored. Data messages are slow (0.1 msg/s per device) so enrollment is
 * what is measured. Prints one JSON line per run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/enroll.js [--devices 2000] [--ramp-ms MS]
 *       [--timeout-s 600] [--broker mqtt://127.0.0.1:PORT]
 *
 * `measureEnrollment(options)` is the same for other benches (bench/ratios.ts); without `broker`
 * it starts its own mosquitto (test/fixtures/mosquitto.ts). `devicesPerSecond` counts only the
 * devices that enrolled before `timeoutMs`; `enrolled < devices` then says the run did not finish.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startFleet } from '../system/fleet.js';
import { startMosquitto } from '../test/fixtures/mosquitto.js';

export interface EnrollmentBenchOptions {
  /** Devices to enroll (default 2000). */
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
  /** The devices' error lines by event, and how long `stop()` took. */
  errorReasons: Record<string, number>;
  stopSeconds: number;
}

export async function measureEnrollment(options: EnrollmentBenchOptions = {}): Promise<EnrollmentBenchResult> {
  const devices = options.devices ?? 2000;
  const timeoutMs = options.timeoutMs ?? 600_000;
  const broker = options.broker === undefined ? await startMosquitto() : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cose-flow-bench-enroll-'));
  try {
    const began = Date.now();
    const fleet = await startFleet({
      broker: options.broker ?? broker!.url,
      dataDir: dir,
      devices,
      rate: 0.1,
      qos: 1,
      crypto: 'node',
      ...(options.rampMs === undefined ? {} : { rampMs: options.rampMs }),
    });
    let last = began;
    let enrolled = 0;
    while (Date.now() - began < timeoutMs) {
      const now = fleet.totals().enrolled;
      if (now > enrolled) {
        enrolled = now;
        last = Date.now();
      }
      if (enrolled >= devices) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const stopBegan = Date.now();
    const totals = await fleet.stop();
    const seconds = ((enrolled >= devices ? last : Date.now()) - began) / 1000;
    return {
      devices,
      enrolled,
      seconds: Math.round(seconds * 10) / 10,
      devicesPerSecond: Math.round((enrolled / seconds) * 10) / 10,
      errorReasons: totals.errorReasons,
      stopSeconds: Math.round((Date.now() - stopBegan) / 100) / 10,
    };
  } finally {
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
    },
  });
  const result = await measureEnrollment({
    ...(values.devices === undefined ? {} : { devices: Number(values.devices) }),
    ...(values['ramp-ms'] === undefined ? {} : { rampMs: Number(values['ramp-ms']) }),
    ...(values['timeout-s'] === undefined ? {} : { timeoutMs: Number(values['timeout-s']) * 1000 }),
    ...(values.broker === undefined ? {} : { broker: values.broker }),
  });
  console.log(JSON.stringify({ case: 'enroll', ...result }));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
