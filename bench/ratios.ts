/**
 * The scale-and-speed figures, from one run on the machine it runs on, each next to the baseline
 * it was measured at before the work on it and its goal: JSON lines on stdout (one per metric),
 * then a readable table on stderr.
 *
 *   npm run bench:ratios [-- --only data-path,key-message] [-- --fleet-devices 10000
 *       --fleet-rate 0.1 --fleet-seconds 300]
 *
 * Ratios compare two things measured in the same run, interleaved where they can be (this is a
 * shared 2-core machine: absolute figures move with its load, ratios much less):
 *   data-path    the cloud's data path in process (parse + window + decrypt, node:crypto) / raw
 *                node:crypto AES-128-GCM decryption of the same bytes        (bench/data-path.ts)
 *   key-message  the sum of a key message's primitives (ECDSA verify, ECDH, HKDF, unwrap, GCM) /
 *                opening it with the device certificate cached                (bench/data-path.ts)
 *   e2e          the cloud service through mosquitto (QoS 1, SQLite FULL, ack after commit) / a bare
 *                MQTT.js 5 QoS 1 subscriber, same publisher                   (bench/e2e.ts)
 *   drain        the service draining a backlog queued in mosquitto while it was away / a bare
 *                MQTT.js 5 subscriber draining the same backlog               (bench/e2e.ts)
 *   enrollment   devices enrolled per second through mosquitto, the service in its own
 *                process; detail: each side's CPU per device                (bench/enroll.ts)
 *   fleet        N devices through mosquitto, `cloud run` and `sim` processes  (bench/fleet.ts)
 *   cli          `cose-flow --help` cold start, median                        (bench/cli-start.ts)
 * Targets live here, not in timed unit tests. Exit status 0 whatever the figures (a benchmark
 * reports; it does not judge a loaded machine), 1 when a measurement itself failed.
 */
import { fileURLToPath } from 'node:url';

export interface Figure {
  metric: string;
  /** What was measured, in the unit of `baseline` and `goal`. */
  value: number;
  unit: string;
  baseline: string;
  goal: string;
  /** Whether `value` meets the goal. */
  met: boolean;
  /** The raw measurement. */
  detail: Record<string, unknown>;
}

type Measure = (args: Args) => Promise<Figure[]>;

interface Args {
  fleetDevices: number;
  fleetRate: number;
  fleetSeconds: number;
  enrollDevices: number;
}

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** A figure whose value is `r.ratio`, met at `goal` or more. */
function ratioFigure(metric: string, r: { ratio: number }, baseline: string, goal: number): Figure[] {
  return [
    {
      metric,
      value: round(r.ratio),
      unit: 'ratio',
      baseline,
      goal: `≥ ${goal}`,
      met: r.ratio >= goal,
      detail: r as unknown as Record<string, unknown>,
    },
  ];
}

const MEASURES: Record<string, Measure> = {
  'data-path': async () => {
    const { measureDataPath } = await import('./data-path.js');
    return ratioFigure('data-path', measureDataPath({ seconds: 2 }), '0.36–0.44', 0.7);
  },
  'key-message': async () => {
    const { measureKeyMessage } = await import('./data-path.js');
    return ratioFigure('key-message', await measureKeyMessage({ seconds: 2 }), '0.37–0.75', 0.85);
  },
  e2e: async () => {
    const { measureEndToEnd } = await import('./e2e.js');
    return ratioFigure('e2e', await measureEndToEnd({}), '0.54–0.85', 0.8);
  },
  drain: async () => {
    const { measureBacklogDrain } = await import('./e2e.js');
    return ratioFigure('drain', await measureBacklogDrain({}), '0.21–0.33', 0.6);
  },
  enrollment: async (args) => {
    // The devices in this process, the enrollment service in its own (bench/enroll.ts): the value
    // is devices enrolled per second end to end, the detail says what each side's CPU was per device.
    const { measureEnrollment } = await import('./enroll.js');
    const r = await measureEnrollment({ devices: args.enrollDevices });
    return [
      {
        metric: 'enrollment',
        value: round(r.devicesPerSecond, 1),
        unit: 'devices/s',
        baseline: '4.5',
        goal: '≥ 100',
        met: r.enrolled >= r.devices && r.devicesPerSecond >= 100,
        // serviceCpuMsPerEnrollment, simCpuMsPerDevice, busyFraction among the run's figures.
        detail: r as unknown as Record<string, unknown>,
      },
    ];
  },
  fleet: async (args) => {
    const { measureFleet } = await import('./fleet.js');
    const r = await measureFleet({
      devices: args.fleetDevices,
      rate: args.fleetRate,
      seconds: args.fleetSeconds,
      progress: (line) => process.stderr.write(`  ${line}\n`),
    });
    const offered = args.fleetDevices * args.fleetRate;
    const allSending = r.devicesSending >= r.devices;
    const p99ok = r.p99DeviceMs !== undefined && r.p99DeviceMs <= 250;
    return [
      {
        metric: 'fleet',
        value: round(r.msgPerSecond, 1),
        unit: 'msg/s stored',
        baseline: '10,000 devices: 602 enrolled',
        goal: `all ${r.devices} sending; ${offered} msg/s, 0 lost, p99 device → stored ≤ 250 ms`,
        met: allSending && r.lost === 0 && r.msgPerSecond >= offered * 0.95 && p99ok,
        detail: r as unknown as Record<string, unknown>,
      },
    ];
  },
  cli: async () => {
    const { measureCliStart } = await import('./cli-start.js');
    const r = measureCliStart(['--help'], 15);
    return [
      {
        metric: 'cli',
        value: Math.round(r.medianMs),
        unit: 'ms',
        baseline: '1200 (quiet)',
        goal: '≤ 300',
        met: r.medianMs <= 300,
        detail: r as unknown as Record<string, unknown>,
      },
    ];
  },
};

function formatTable(figures: Figure[]): string {
  const rows = figures.map((f) => [f.metric, `${f.value} ${f.unit}`, f.baseline, f.goal, f.met ? 'yes' : 'NO']);
  const head = ['metric', 'now', 'baseline', 'goal', 'met'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function run(argv: string[]): Promise<number> {
  const value = (name: string, fallback: number): number => {
    const at = argv.indexOf(`--${name}`);
    const n = at < 0 ? fallback : Number(argv[at + 1]);
    if (!Number.isFinite(n) || n <= 0) throw new RangeError(`--${name} wants a positive number`);
    return n;
  };
  const args: Args = {
    fleetDevices: value('fleet-devices', 1000),
    fleetRate: value('fleet-rate', 1),
    fleetSeconds: value('fleet-seconds', 30),
    enrollDevices: value('enroll-devices', 1000),
  };
  const onlyAt = argv.indexOf('--only');
  const names = onlyAt < 0 ? Object.keys(MEASURES) : (argv[onlyAt + 1] ?? '').split(',');
  const unknown = names.filter((n) => !Object.hasOwn(MEASURES, n));
  if (unknown.length > 0)
    throw new RangeError(`unknown metric(s) ${unknown.join(', ')}: ${Object.keys(MEASURES).join(', ')}`);
  const figures: Figure[] = [];
  let failed = false;
  for (const name of names) {
    process.stderr.write(`measuring ${name}…\n`);
    try {
      for (const figure of await MEASURES[name]!(args)) {
        figures.push(figure);
        process.stdout.write(`${JSON.stringify(figure)}\n`);
      }
    } catch (e) {
      failed = true;
      process.stderr.write(`${name}: the measurement failed: ${(e as Error).stack ?? e}\n`);
    }
  }
  process.stderr.write(`\n${formatTable(figures)}\n`);
  return failed ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await run(process.argv.slice(2));
