/**
 * `cose-flow sim`: one or many simulated devices (system/fleet.ts) against a real broker, with
 * a live progress line and a final summary. Every flag can also come from the environment
 * (COSE_FLOW_BROKER, COSE_FLOW_DATA_DIR, COSE_FLOW_DEVICES, COSE_FLOW_RATE, COSE_FLOW_QOS, …).
 */
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonLogger } from '../host-sim/log.js';
import { caPem } from '../host-sim/mqtt.js';
import { hostCrypto } from '../host-sim/platform.js';
import { deviceCsr, readCertificateFile, readProvisioning } from '../host-sim/provisioning.js';
import { BrokerUnreachable, probeBroker } from '../node/broker-probe.js';
import { redactUrl } from '../node/redact-url.js';
import type { DeviceConfig, RekeyPolicy } from '../src/device/config.js';
import { DEFAULT_CONFIG } from '../src/device/config.js';
import type { Credentials } from '../src/device/credentials.js';
import { DEFAULT_RAMP_PER_DEVICE_MS, deviceIds, type FleetTotals, startFleet } from '../system/fleet.js';
import { type CliIo, type Command, describeFailure, numberFlag, parseFlags, UsageError } from './command.js';

export const SIM_USAGE = `Usage: cose-flow sim --broker URL [options]

Runs N simulated devices, each the device application exactly as the firmware runs it (its own
key from its own HUK, certificate, kid counter and MQTT connection), until Ctrl-C or --duration.
Devices without a certificate enroll over MQTT with the CA in the data directory, which this
command serves itself (a data directory without a CA gets a new CA and cloud key first).

Options (environment variable in brackets):
  --broker URL          mqtt://host:port or mqtts://host:port            [COSE_FLOW_BROKER]
  --data-dir DIR        the CA data directory; devices live in DIR/sim/   [COSE_FLOW_DATA_DIR] (default ./data)
  --devices N           simulated devices (default 1)                     [COSE_FLOW_DEVICES]
  --rate R              messages per second per device (default 1)        [COSE_FLOW_RATE]
  --qos Q               QoS of data messages, 0 or 1 (default 1)          [COSE_FLOW_QOS]
  --duration S          stop after S seconds (default: until Ctrl-C)      [COSE_FLOW_DURATION]
  --messages N          stop once every device has N messages acknowledged (with --duration as
                        the limit: exit 1 when it passes first)
  --id-prefix P         device ids P0001, P0002, … P9999, P10000 … whatever N is (default sim-)
  --ramp S              start the devices over S seconds, each at a random moment of its own
                        slot (default N × ${DEFAULT_RAMP_PER_DEVICE_MS / 1000} s: 10 000 devices over ${(10_000 * DEFAULT_RAMP_PER_DEVICE_MS) / 1000} s)   [COSE_FLOW_RAMP]
  --prefix P            topic prefix (default cose-flow/v1)
  --username U, --password P   broker credentials                         [COSE_FLOW_USERNAME, COSE_FLOW_PASSWORD]
  --broker-ca FILE      mqtts:// only: the CA certificate (PEM or DER) that issued the broker's
                        TLS certificate; the devices trust only it           [COSE_FLOW_BROKER_CA]
  --crypto noble|node   the devices' crypto: noble as on the device (default), node:crypto for large fleets
  --rekey-messages N    re-key after N messages per session (default: never for this reason)
  --rekey-age S         re-key when a session is S seconds old (default ${DEFAULT_CONFIG.rekey.afterMs / 1000})
  --no-enroll-service   do not serve enrollments (a \`cose-flow ca serve\` runs elsewhere)
  --print-csr           print each device's certification request (PEM, CN = its id, from its key in
                        DIR/sim/<id>/) for \`cose-flow ca issue --csr\`, and exit (no broker needed)
  --device-certificate FILE, --ca-certificate FILE, --cloud-certificate FILE
                        offline provisioning, all three together: the devices are given these
                        certificates (PEM or DER) in their configuration, check them at boot and never
                        enroll; {id} in the device certificate's path is each device's id
  --log FILE            write every device's log lines (JSON) to FILE
  --json                print the final summary as JSON
  -h, --help            print this help

Exit status: 0 when the run ended without errors, 1 when devices reported errors, 2 for a usage error.
`;

const FLAGS = {
  broker: { type: 'string' },
  'data-dir': { type: 'string' },
  devices: { type: 'string' },
  rate: { type: 'string' },
  qos: { type: 'string' },
  duration: { type: 'string' },
  messages: { type: 'string' },
  'id-prefix': { type: 'string' },
  ramp: { type: 'string' },
  prefix: { type: 'string' },
  username: { type: 'string' },
  'broker-ca': { type: 'string' },
  password: { type: 'string' },
  crypto: { type: 'string' },
  'rekey-messages': { type: 'string' },
  'rekey-age': { type: 'string' },
  'no-enroll-service': { type: 'boolean' },
  'print-csr': { type: 'boolean' },
  'device-certificate': { type: 'string' },
  'ca-certificate': { type: 'string' },
  'cloud-certificate': { type: 'string' },
  log: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function env(name: string): string | undefined {
  const v = process.env[`COSE_FLOW_${name}`];
  return v === undefined || v === '' ? undefined : v;
}

/** Why files cannot be written in `dir` (made when missing), or undefined when they can. */
function writableProblem(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const probe = join(dir, `.write-test-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
    return undefined;
  } catch (e) {
    return describeFailure(e);
  }
}

/** `errors 0`, or `errors 15: enroll-refused 12, connect-failed 3` (most frequent first). */
export function formatErrors(t: Pick<FleetTotals, 'errors' | 'errorReasons'>): string {
  const reasons = Object.entries(t.errorReasons ?? {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (t.errors === 0 || reasons.length === 0) return `errors ${t.errors}`;
  return `errors ${t.errors}: ${reasons.map(([reason, n]) => `${reason} ${n}`).join(', ')}`;
}

export function formatTotals(t: FleetTotals, elapsedS: number, rate?: number): string {
  const enrolling =
    (t.enrolled ?? 0) > 0 || (t.enrollQueue ?? 0) > 0 || (t.enrollSlow ?? 0) > 0
      ? ` · enrolled ${t.enrolled ?? 0}` +
        ((t.enrollQueue ?? 0) > 0 ? ` (${t.enrollQueue} waiting)` : '') +
        ((t.enrollSlow ?? 0) > 0 ? ` · slow enrollments ${t.enrollSlow}` : '')
      : '';
  return (
    `${t.sending}/${t.devices} sending · ${t.connected} connected${enrolling} · sent ${t.sent} · ack ${t.acknowledged}` +
    (rate === undefined ? '' : ` · ${rate.toFixed(1)} msg/s`) +
    ` · queued ${t.queued} · re-keys ${t.rekeys} · dropped ${t.dropped} · ${formatErrors(t)} · ${elapsedS.toFixed(0)} s`
  );
}

type Values = ReturnType<typeof parseFlags<typeof FLAGS>>['values'];

function deviceCount(values: Values): number {
  return numberFlag(values.devices ?? env('DEVICES'), 'devices', 1, { integer: true, min: 1, max: 100_000 });
}

/** --print-csr: the factory's first step for simulated devices. */
function printCsrs(values: Values, io: CliIo): number {
  const dataDir = values['data-dir'] ?? env('DATA_DIR') ?? './data';
  const crypto = hostCrypto(values.crypto === 'node' ? 'node' : 'noble');
  for (const id of deviceIds(deviceCount(values), values['id-prefix'] ?? 'sim-'))
    io.stdout(deviceCsr(crypto, dataDir, id));
  return 0;
}

/** --device-certificate, --ca-certificate, --cloud-certificate: each device's certificates, or undefined. */
function readProvisioningFlags(values: Values, ids: string[]): Map<string, Credentials> | undefined {
  const deviceCertificate = values['device-certificate'];
  const caCertificate = values['ca-certificate'];
  const cloudCertificate = values['cloud-certificate'];
  if (deviceCertificate === undefined && caCertificate === undefined && cloudCertificate === undefined)
    return undefined;
  if (deviceCertificate === undefined || caCertificate === undefined || cloudCertificate === undefined) {
    throw new UsageError('--device-certificate, --ca-certificate and --cloud-certificate go together');
  }
  try {
    return readProvisioning({ deviceCertificate, caCertificate, cloudCertificate }, ids);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  if (values['print-csr']) return printCsrs(values, io);
  const broker = values.broker ?? env('BROKER');
  if (broker === undefined) throw new UsageError('give --broker mqtt://host:port (or COSE_FLOW_BROKER)');
  if (!/^mqtts?:\/\/./.test(broker)) throw new UsageError(`--broker ${broker}: an mqtt:// or mqtts:// URL`);
  const devices = deviceCount(values);
  const rate = numberFlag(values.rate ?? env('RATE'), 'rate', 1, { above: 0, max: 1000 });
  const qos = numberFlag(values.qos ?? env('QOS'), 'qos', 1, { oneOf: [0, 1] }) as 0 | 1;
  const rampS = values.ramp ?? env('RAMP');
  const ramp = rampS === undefined ? undefined : numberFlag(rampS, 'ramp', 0, { min: 0, max: 86_400 });
  const durationS = values.duration ?? env('DURATION');
  const duration = durationS === undefined ? undefined : numberFlag(durationS, 'duration', 0, { above: 0 });
  const messages =
    values.messages === undefined ? undefined : numberFlag(values.messages, 'messages', 0, { integer: true, min: 1 });
  const cryptoChoice = values.crypto ?? 'noble';
  if (cryptoChoice !== 'noble' && cryptoChoice !== 'node') throw new UsageError('--crypto is noble or node');
  const rekey: Partial<RekeyPolicy> = {};
  if (values['rekey-messages'] !== undefined) {
    rekey.afterMessages = numberFlag(values['rekey-messages'], 'rekey-messages', 0, { integer: true, min: 0 });
  }
  if (values['rekey-age'] !== undefined)
    rekey.afterMs = numberFlag(values['rekey-age'], 'rekey-age', 0, { min: 0 }) * 1000;
  const config: Partial<DeviceConfig> = { rekey: { ...DEFAULT_CONFIG.rekey, ...rekey } };
  if (values.prefix !== undefined) config.prefix = values.prefix;
  const logFile = values.log === undefined ? undefined : createWriteStream(values.log, { flags: 'a', mode: 0o600 });
  const username = values.username ?? env('USERNAME');
  const password = values.password ?? env('PASSWORD');
  const dataDir = values['data-dir'] ?? env('DATA_DIR') ?? './data';

  const brokerCaFile = values['broker-ca'] ?? env('BROKER_CA');
  let brokerCa: Uint8Array | undefined;
  if (brokerCaFile !== undefined) {
    if (!broker.startsWith('mqtts:')) throw new UsageError(`--broker-ca is for an mqtts:// broker, not ${broker}`);
    try {
      brokerCa = readCertificateFile(brokerCaFile, 'broker CA certificate');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const provisioned = readProvisioningFlags(values, deviceIds(devices, values['id-prefix'] ?? 'sim-'));

  // The broker first: nothing (a CA, a batch, device keys) is written for a run that cannot start.
  io.stderr(`connecting to ${redactUrl(broker)}…\n`);
  try {
    await probeBroker(broker, {
      mqtt: {
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
        ...(brokerCa === undefined ? {} : { ca: caPem(brokerCa), rejectUnauthorized: true }),
      },
    });
  } catch (e) {
    if (!(e instanceof BrokerUnreachable)) throw e;
    io.stderr(`cose-flow sim: ${e.message}\n`);
    return 1;
  }
  // The data directory must take files (the devices live in DIR/sim/): say so now, not as errors later.
  const unwritable = writableProblem(join(dataDir, 'sim'));
  if (unwritable !== undefined) {
    io.stderr(`cose-flow sim: cannot write the devices' files in ${join(dataDir, 'sim')}: ${unwritable}\n`);
    return 1;
  }
  const interactive = process.stderr.isTTY === true;
  const began = Date.now();
  const fleet = await startFleet({
    broker,
    dataDir,
    devices,
    rate,
    qos,
    crypto: cryptoChoice,
    enrollService: !values['no-enroll-service'],
    ...(provisioned === undefined ? {} : { provisioned: (id: string) => provisioned.get(id)! }),
    config,
    ...(values['id-prefix'] === undefined ? {} : { idPrefix: values['id-prefix'] }),
    ...(ramp === undefined ? {} : { rampMs: ramp * 1000 }),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(brokerCa === undefined ? {} : { brokerCa }),
    ...(logFile === undefined ? {} : { log: jsonLogger((line) => logFile.write(line), 'info') }),
    note: (line) => io.stderr(`${line}\n`),
  });
  io.stderr(
    `${devices} device(s) × ${rate} msg/s at QoS ${qos} on ${broker}${duration ? ` for ${duration} s` : ' until Ctrl-C'}\n`,
  );

  let last = { at: Date.now(), acknowledged: 0 };
  const report = () => {
    const t = fleet.totals();
    const now = Date.now();
    const msgRate = ((t.acknowledged - last.acknowledged) * 1000) / Math.max(1, now - last.at);
    last = { at: now, acknowledged: t.acknowledged };
    const line = formatTotals(t, (now - began) / 1000, msgRate);
    if (interactive) io.stderr(`\r\x1b[2K${line}`);
    else io.stderr(`${line}\n`);
  };
  const progress = setInterval(report, 1000);
  const everyDeviceDone = () =>
    messages !== undefined && fleet.devices.every((d) => d.app.stats.acknowledged >= messages);

  const reachedCount = await new Promise<boolean>((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    const done = (counted: boolean) => {
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      for (const t of timers) clearInterval(t);
      resolve(counted);
    };
    const interrupted = () => done(false);
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
    if (duration !== undefined) timers.push(setTimeout(() => done(false), duration * 1000).unref());
    if (messages !== undefined) timers.push(setInterval(() => everyDeviceDone() && done(true), 50));
  });
  clearInterval(progress);
  report(); // the state at the end, whatever stopped the run
  if (messages !== undefined && !reachedCount) {
    const short = fleet.devices.filter((d) => d.app.stats.acknowledged < messages).map((d) => d.deviceId);
    io.stderr(
      `${short.length} device(s) had fewer than ${messages} messages acknowledged when the run stopped: ` +
        `${short.slice(0, 5).join(', ')}${short.length > 5 ? ', …' : ''}\n`,
    );
  }
  if (interactive) io.stderr('\n');
  const stopBegan = Date.now();
  const totals = await fleet.stop();
  logFile?.end();
  const elapsed = (Date.now() - began) / 1000;
  const summary = {
    devices: totals.devices,
    seconds: Math.round(elapsed * 10) / 10,
    sealed: totals.sealed,
    sent: totals.sent,
    acknowledged: totals.acknowledged,
    resent: totals.resent,
    dropped: totals.dropped,
    skipped: totals.skipped,
    queuedAtStop: totals.queued,
    sessions: totals.sessions,
    rekeys: totals.rekeys,
    reconnects: totals.connects > totals.devices ? totals.connects - totals.devices : 0,
    errors: totals.errors,
    errorReasons: totals.errorReasons,
    enrolled: totals.enrolled,
    slowEnrollments: totals.enrollSlow,
    stopSeconds: Math.round((Date.now() - stopBegan) / 100) / 10,
  };
  if (values.json) io.stdout(`${JSON.stringify(summary)}\n`);
  else {
    io.stdout(
      `summary: ${summary.devices} device(s), ${summary.seconds} s: sent ${summary.sent}, acknowledged ${summary.acknowledged}` +
        ` (${(summary.acknowledged / Math.max(elapsed, 0.001)).toFixed(1)} msg/s), re-keys ${summary.rekeys}, ${formatErrors(totals)}` +
        `; resent ${summary.resent}, dropped ${summary.dropped}, skipped ${summary.skipped}, queued at stop ${summary.queuedAtStop}` +
        `; enrolled ${summary.enrolled}, slow enrollments ${summary.slowEnrollments}; stopped in ${summary.stopSeconds} s\n`,
    );
  }
  return summary.errors > 0 || (messages !== undefined && !reachedCount) ? 1 : 0;
}

export const simCommand: Command = {
  usage: SIM_USAGE,
  run,
};
