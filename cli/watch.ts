/**
 * `cose-flow watch`: `mosquitto_sub` with the keys. Subscribes to the devices' key and data
 * topics, verifies and opens each message as the cloud does (the CA and cloud keys of the data
 * directory), and prints one line per message: the reading, or why it was refused. Read-only: a
 * clean, non-persistent MQTT session at QoS 0, so it stores nothing, acknowledges nothing the
 * service depends on and leaves no queue on the broker when it goes.
 *
 * It opens data only of sessions whose key message it saw: sessions are in the service's store,
 * which this command does not open (it loads no database, HTTP or broker code). Until a device's
 * next key message, its data is shown as "no session yet".
 */
import mqtt from 'mqtt';
import { loadCloudKeys } from '../cloud/pki/cloud-keys.js';
import { DEFAULT_DATA_DIR, openDataDir } from '../cloud/pki/data-dir.js';
import { readCertificates } from '../cloud/pki/files.js';
import { deviceCertificateVerifier } from '../cloud/pki/verify.js';
import { connectFailure } from '../node/broker-probe.js';
import { nodeCrypto } from '../node/crypto.js';
import { redactUrl } from '../node/redact-url.js';
import { DEFAULT_PREFIX } from '../src/profile/limits.js';
import { checkDeviceId, checkPrefix, parseTopic } from '../src/profile/topics.js';
import { type CliIo, type Command, numberFlag, parseFlags, UsageError } from './command.js';
import { addReading, formatLine, jsonLine, type LineResult } from './inspect-lines.js';
import { Inspector } from './inspect-message.js';

/** How long watch waits for the broker's CONNACK. */
const CONNECT_TIMEOUT_MS = 10_000;

export const WATCH_USAGE = `Usage: cose-flow watch --broker URL [--data-dir DIR] [--device ID] [options]

Subscribes to the devices' key and data messages on the broker and prints each one as the cloud
service judges it: verified (the device certificate against the CA of DIR), opened (with the cloud
keys of DIR) and decrypted — the reading — or refused with the reason. Read-only: a clean MQTT
session at QoS 0 that stores and acknowledges nothing the service depends on.
Data opens once the device's key message was seen: start watch, then the device's next session
(a re-key or a restart) makes its data readable.

Options:
  --broker URL        mqtt:// or mqtts:// (COSE_FLOW_BROKER)
  --data-dir DIR      the CA data directory: ca.pem, cloud keys (default ${DEFAULT_DATA_DIR})
  --device ID         only this device
  --prefix P          topic prefix (default ${DEFAULT_PREFIX})
  --username U        broker user name (password: COSE_FLOW_MQTT_PASSWORD)
  --count N           exit after N messages
  --duration S        exit after S seconds
  --json              one JSON object per message
  -h, --help          print this help

Exit status: 0 when it ends (Ctrl-C, --count, --duration); 1 when the broker cannot be reached; 2 for
a usage error.
`;

const FLAGS = {
  broker: { type: 'string' },
  'data-dir': { type: 'string' },
  device: { type: 'string' },
  prefix: { type: 'string' },
  username: { type: 'string' },
  count: { type: 'string' },
  duration: { type: 'string' },
  json: { type: 'boolean' },
} as const;

async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const broker = values.broker ?? process.env.COSE_FLOW_BROKER;
  if (broker === undefined || !/^mqtts?:\/\/./.test(broker))
    throw new UsageError('give --broker mqtt://host:port (or COSE_FLOW_BROKER)');
  const prefix = values.prefix ?? DEFAULT_PREFIX;
  try {
    checkPrefix(prefix);
    if (values.device !== undefined) checkDeviceId(values.device);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const count =
    values.count === undefined ? undefined : numberFlag(values.count, 'count', 0, { integer: true, min: 1 });
  const duration = values.duration === undefined ? undefined : numberFlag(values.duration, 'duration', 0, { above: 0 });
  const dir = openDataDir(values['data-dir'] ?? process.env.COSE_FLOW_DATA_DIR ?? DEFAULT_DATA_DIR);
  const crypto = nodeCrypto();
  let anchors: Uint8Array[];
  try {
    anchors = readCertificates(dir.caCertificate);
  } catch (e) {
    io.stderr(`cose-flow watch: no CA in ${dir.root}: ${(e as Error).message}\n`);
    return 1;
  }
  const keys = [...loadCloudKeys(crypto, dir.root).values()].map((k) => k.key);
  const inspector = new Inspector({
    crypto,
    cloudKeys: keys,
    verifyCertificate: deviceCertificateVerifier({ crypto, trustAnchors: anchors }),
    diagnostic: false,
  });

  const device = values.device ?? '+';
  const filters = [`${prefix}/${device}/session`, `${prefix}/${device}/data`];
  const shown = redactUrl(broker);
  io.stderr(`connecting to ${shown}…\n`);
  const password = process.env.COSE_FLOW_MQTT_PASSWORD;
  const client = mqtt.connect(broker, {
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    ...(values.username === undefined ? {} : { username: values.username }),
    ...(password === undefined ? {} : { password }),
  });
  let seen = 0;
  let line = 0;
  return new Promise<number>((resolve) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      client.end(true, () => resolve(code));
    };
    const interrupted = () => finish(0);
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
    client.once('error', (e) => {
      io.stderr(`cose-flow watch: ${connectFailure(e, shown, CONNECT_TIMEOUT_MS)}\n`);
      finish(1);
    });
    client.once('close', () => {
      if (!settled && seen === 0 && !client.connected) {
        io.stderr(`cose-flow watch: cannot connect to ${shown}: the connection closed\n`);
        finish(1);
      }
    });
    client.once('connect', () => {
      client.subscribe(filters, { qos: 0 }, (error) => {
        if (error) {
          io.stderr(`cose-flow watch: the broker refused the subscription: ${error.message}\n`);
          finish(1);
          return;
        }
        io.stderr(`watching ${filters.join(' and ')} on ${shown} (Ctrl-C to stop)\n`);
        if (duration !== undefined) timers.push(setTimeout(() => finish(0), duration * 1000));
      });
    });
    client.on('message', (name, payload) => {
      const parsed = parseTopic(name, prefix);
      if (parsed === undefined) return;
      line++;
      const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
      const result: LineResult = {
        ...inspector.inspect(name, bytes, parsed.deviceId),
        line,
        topic: name,
        topicDeviceId: parsed.deviceId,
      };
      if (result.type === 'data' && result.valid && !result.opened) {
        result.error = 'no session yet: its key message was sent before watch started';
      }
      addReading(result);
      io.stdout(values.json ? jsonLine(result) : formatLine(result));
      seen++;
      if (count !== undefined && seen >= count) finish(0);
    });
  });
}

export const watchCommand: Command = {
  usage: WATCH_USAGE,
  run,
};
