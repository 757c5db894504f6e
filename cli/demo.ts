/**
 * `cose-flow demo` (npm start): the whole system on this machine — broker, CA, cloud service with
 * its dashboard, simulated devices, optionally an attacker — shown live until Ctrl-C or
 * --duration, then a summary checked against the store (system/demo.ts). This file holds the
 * flags, the screen and the signals.
 */
import { isAbsolute, resolve } from 'node:path';
import { parseListen } from '../cloud/http/server.js';
import { DEFAULT_DATA_DIR } from '../cloud/pki/data-dir.js';
import { BrokerUnreachable, probeBroker } from '../node/broker-probe.js';
import { redactUrl } from '../node/redact-url.js';
import { checkPrefix } from '../src/profile/topics.js';
import { DEFAULT_DASHBOARD_PORT, type DemoOptions, type DemoSystem, startDemoSystem } from '../system/demo.js';
import { type CliIo, type Command, numberFlag, parseFlags, UsageError } from './command.js';
import { ALTERNATE_SCREEN, formatSummary, frameInPlace, renderScreen, statusLine } from './demo-view.js';

export const DEFAULT_DEVICES = 3;
export const DEFAULT_ATTACK_EVERY_S = 5;

export const DEMO_USAGE = `Usage: cose-flow demo [options]        (npm start -- [options])

The whole system on this machine, with no configuration and no servers installed:
  - an MQTT broker (embedded, on 127.0.0.1), or yours with --broker
  - a CA, the cloud key and certificates in the data directory (made on the first run and reused;
    the same layout \`cose-flow ca\` and \`cose-flow cloud\` use for a real deployment)
  - the cloud service on SQLite in the data directory (or PostgreSQL with --store), serving the
    live dashboard at http://127.0.0.1:${DEFAULT_DASHBOARD_PORT}/ (another free port when that one is taken)
  - N simulated devices, each the firmware's application on Node with its own key: they enroll
    with the CA over MQTT, start a session and send a reading every 1/R seconds
The terminal shows sessions, messages per second, decrypted readings and rejections by reason
until Ctrl-C (or --duration); the devices then send what they have queued, and the summary checks
the store: every acknowledged QoS 1 message stored exactly once, nothing stored that no device sent.

Options:
  --data-dir DIR        CA, keys, store, devices and logs (default ${DEFAULT_DATA_DIR})
  --devices N           simulated devices (default ${DEFAULT_DEVICES})
  --rate R              readings per second per device (default 1)
  --qos Q               QoS of data messages, 0 or 1 (default 1)
  --broker URL          use this broker (mqtt:// or mqtts://) instead of the embedded one
  --mqtt-port N         the embedded broker's port on 127.0.0.1 (default any free port)
  --store URL           sqlite:FILE or postgres://user:pass@host/db (default sqlite:DIR/cose-flow.db)
  --prefix P            topic prefix (default cose-flow/v1): on a shared broker, keeps the demo's
                        devices, service and attacker apart from other deployments
  --http [HOST:]PORT    where the dashboard listens (default 127.0.0.1:${DEFAULT_DASHBOARD_PORT}); 0: any free port
  --no-dashboard        no dashboard
  --attack              inject replayed, tampered and forged messages every ${DEFAULT_ATTACK_EVERY_S} s (the dashboard
                        has a button for the same)
  --attack-every S      seconds between attack rounds (implies --attack)
  --crypto noble|node   the devices' crypto: noble as on the device (default), node for large fleets
  --duration S          stop after S seconds (default: until Ctrl-C)
  --plain               a status line every 2 s instead of the redrawn screen (the default when
                        standard error is not a terminal); NO_COLOR=1: no colour on the screen
  --json                print the summary as JSON on standard output
  -h, --help            print this help

Logs: DIR/logs/cloud.log (the service's JSON lines) and DIR/logs/devices.log.
Exit status: 0 when every device established a session and delivery was exactly once (at most
once for QoS 0); 1 otherwise or on a failure; 2 for a usage error.
`;

const FLAGS = {
  'data-dir': { type: 'string' },
  devices: { type: 'string' },
  rate: { type: 'string' },
  qos: { type: 'string' },
  broker: { type: 'string' },
  'mqtt-port': { type: 'string' },
  store: { type: 'string' },
  prefix: { type: 'string' },
  http: { type: 'string' },
  'no-dashboard': { type: 'boolean' },
  attack: { type: 'boolean' },
  'attack-every': { type: 'string' },
  crypto: { type: 'string' },
  duration: { type: 'string' },
  plain: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function prefixFlag(value: string): string {
  try {
    return checkPrefix(value);
  } catch (e) {
    throw new UsageError(`--prefix: ${(e as Error).message}`);
  }
}

export function parseDemoArgs(args: string[]): {
  options: Omit<DemoOptions, 'note'>;
  attackEveryS: number | undefined;
  durationS: number | undefined;
  plain: boolean;
  json: boolean;
} {
  const { values, positionals } = parseFlags(args, FLAGS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const dataDir = values['data-dir'] ?? DEFAULT_DATA_DIR;
  if (dataDir === '') throw new UsageError('--data-dir must not be empty');
  const devices = numberFlag(values.devices, 'devices', DEFAULT_DEVICES, { integer: true, min: 1, max: 10_000 });
  const rate = numberFlag(values.rate, 'rate', 1, { above: 0, max: 1000 });
  const qos = numberFlag(values.qos, 'qos', 1, { oneOf: [0, 1] }) as 0 | 1;
  if (values.broker !== undefined && !/^mqtts?:\/\/[^/]/.test(values.broker))
    throw new UsageError(`--broker must be an mqtt:// or mqtts:// URL, got ${JSON.stringify(values.broker)}`);
  if (values.broker !== undefined && values['mqtt-port'] !== undefined)
    throw new UsageError('--mqtt-port is for the embedded broker: not with --broker');
  const mqttPort =
    values['mqtt-port'] === undefined
      ? undefined
      : numberFlag(values['mqtt-port'], 'mqtt-port', 0, { integer: true, min: 0, max: 65535 });
  if (values.store !== undefined && !/^(sqlite:.|postgres(ql)?:\/\/.)/.test(values.store))
    throw new UsageError('--store must be sqlite:FILE or postgres://…');
  let http: DemoOptions['http'] = { host: '127.0.0.1', port: DEFAULT_DASHBOARD_PORT };
  if (values.http !== undefined) {
    const listen = parseListen(values.http);
    if (listen === undefined) throw new UsageError(`--http must be [HOST:]PORT, got ${JSON.stringify(values.http)}`);
    http = { host: listen.host ?? '127.0.0.1', port: listen.port };
  }
  if (values['no-dashboard']) {
    if (values.http !== undefined) throw new UsageError('--http and --no-dashboard contradict each other');
    http = undefined;
  }
  const crypto = values.crypto ?? 'noble';
  if (crypto !== 'noble' && crypto !== 'node') throw new UsageError('--crypto is noble or node');
  const attackEveryS =
    values['attack-every'] !== undefined
      ? numberFlag(values['attack-every'], 'attack-every', DEFAULT_ATTACK_EVERY_S, { min: 0.5, max: 3600 })
      : values.attack
        ? DEFAULT_ATTACK_EVERY_S
        : undefined;
  const durationS =
    values.duration === undefined
      ? undefined
      : numberFlag(values.duration, 'duration', 0, { above: 0, max: 86_400 * 365 });
  return {
    options: {
      dataDir: isAbsolute(dataDir) ? dataDir : resolve(dataDir),
      devices,
      rate,
      qos,
      crypto,
      ...(values.broker === undefined ? {} : { broker: values.broker }),
      ...(mqttPort === undefined ? {} : { mqttPort }),
      ...(values.store === undefined ? {} : { store: values.store }),
      ...(values.prefix === undefined ? {} : { prefix: prefixFlag(values.prefix) }),
      ...(http === undefined ? {} : { http }),
    },
    attackEveryS,
    durationS,
    plain: values.plain ?? false,
    json: values.json ?? false,
  };
}

async function run(args: string[], io: CliIo): Promise<number> {
  const parsed = parseDemoArgs(args);
  const interactive = !parsed.plain && process.stderr.isTTY === true;
  // https://no-color.org: any non-empty NO_COLOR turns colour off
  const color = interactive && (process.env.NO_COLOR ?? '') === '' && process.env.TERM !== 'dumb';
  const began = Date.now();
  io.stderr(`cose-flow demo: starting in ${parsed.options.dataDir}\n`);
  let system: DemoSystem;
  const notes: string[] = [];
  const note = (line: string) => {
    notes.push(line);
    if (notes.length > 3) notes.shift();
    io.stderr(`  ${line}\n`);
  };
  if (parsed.options.broker !== undefined) {
    // Check first, then write: no CA, cloud key or batch is made for a broker that is not there.
    io.stderr(`connecting to ${redactUrl(parsed.options.broker)}…\n`);
    try {
      await probeBroker(parsed.options.broker);
    } catch (e) {
      if (!(e instanceof BrokerUnreachable)) throw e;
      io.stderr(`cose-flow demo: ${e.message}\n`);
      return 1;
    }
  }
  try {
    system = await startDemoSystem({ ...parsed.options, note });
  } catch (e) {
    io.stderr(`cose-flow demo: could not start: ${(e as Error).message}\n`);
    return 1;
  }
  io.stderr(
    `  broker ${system.brokerUrl}${system.embeddedBroker ? ' (embedded)' : ''} · store ${redactUrl(system.storeUrl)}\n` +
      `  ${parsed.options.devices} device(s) × ${parsed.options.rate} msg/s at QoS ${parsed.options.qos}` +
      `${parsed.durationS === undefined ? ' until Ctrl-C' : ` for ${parsed.durationS} s`}\n` +
      (system.dashboardUrl === undefined ? '' : `dashboard: ${system.dashboardUrl}\n`) +
      `  logs: ${system.logFiles.cloud}, ${system.logFiles.devices}\n`,
  );

  let attackError: string | undefined;
  const attackRound = () =>
    system.attack().catch((e: Error) => {
      if (attackError !== e.message) io.stderr(`cose-flow demo: attack round failed: ${e.message}\n`);
      attackError = e.message;
    });
  const timers: NodeJS.Timeout[] = [];
  if (parsed.attackEveryS !== undefined) {
    const every = parsed.attackEveryS * 1000;
    // The first round once the devices have sent something to capture.
    timers.push(
      setTimeout(
        () => {
          void attackRound();
          timers.push(setInterval(() => void attackRound(), every));
        },
        Math.min(every, 3000),
      ),
    );
  }
  const screen = () => {
    const s = system.snapshot();
    const attack = s.extra?.attack as { rounds: number; injected: Record<string, number> } | undefined;
    const rows = Math.max(5, (process.stderr.rows ?? 40) - 16);
    return renderScreen(s, {
      brokerUrl: system.brokerUrl,
      embeddedBroker: system.embeddedBroker,
      storeUrl: redactUrl(system.storeUrl),
      dashboardUrl: system.dashboardUrl,
      attack: attack !== undefined && attack.rounds > 0 ? attack : undefined,
      maxDevices: rows,
      notes,
      caFingerprint: system.caFingerprint,
      color,
      ...(process.stderr.columns === undefined ? {} : { columns: process.stderr.columns }),
    });
  };
  if (interactive) {
    // The alternate screen, redrawn in place: the terminal's scrollback keeps what was there
    // before, not a copy of every frame. Each line clears its rest; what is below is cleared.
    io.stderr(ALTERNATE_SCREEN.enter);
    const draw = () => io.stderr(frameInPlace(screen()));
    draw();
    timers.push(setInterval(draw, 1000));
  } else {
    const ids = new Set(system.fleet.devices.map((d) => d.deviceId));
    timers.push(setInterval(() => io.stderr(`${statusLine(system.snapshot(), ids)}\n`), 2000));
  }

  await new Promise<void>((done) => {
    const stop = (signal?: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (signal !== undefined) process.once(signal, () => process.exit(130));
      done();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (parsed.durationS !== undefined) timers.push(setTimeout(() => stop(), parsed.durationS * 1000));
  });
  for (const t of timers) clearInterval(t);
  // Back on the normal screen, the last frame stays in the scrollback.
  if (interactive) io.stderr(`${ALTERNATE_SCREEN.leave}${screen()}\n`);
  io.stderr('stopping: the devices send what they have queued, then everything stops (Ctrl-C again to quit at once)\n');
  let summary: Awaited<ReturnType<DemoSystem['stop']>>;
  try {
    summary = await system.stop({ drainMs: 5000 });
  } catch (e) {
    io.stderr(`cose-flow demo: stopping failed: ${(e as Error).message}\n`);
    return 1;
  }
  if (parsed.json) io.stdout(`${JSON.stringify(summary)}\n`);
  else io.stdout(formatSummary(summary));
  io.stderr(`cose-flow demo: done in ${((Date.now() - began) / 1000).toFixed(1)} s\n`);
  return summary.allSessions && summary.exactlyOnce ? 0 : 1;
}

export const demoCommand: Command = {
  usage: DEMO_USAGE,
  run,
};
