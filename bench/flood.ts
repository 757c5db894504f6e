/**
 * One sender against everyone else (issue 12 §5): while one MQTT client floods bogus key messages
 * at a fixed rate, how long do the legitimate devices' readings take from the device to the store,
 * and how fast does /health answer? Run by hand; the figures go into docs/PERFORMANCE.md.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/flood.js [--rate 5000] [--kind replay|forged|garbage]
 *       [--spread] [--devices 20] [--device-rate 2] [--seconds 20] [--no-admission]
 *
 * Everything runs on 127.0.0.1: mosquitto 2.0 (a separate process, test/fixtures/mosquitto.ts),
 * the cloud service (`startCloudService`, SQLite, its HTTP endpoint, log level info into a
 * counting sink), host-sim devices (`startFleet`: the real device application, node:crypto,
 * enrolled in process) and the flooder in a worker thread, which writes pre-encoded QoS 1 PUBLISH
 * packets on a raw socket in 10 ms slices and reads nothing but the broker's PUBACKs.
 *
 * The flood (`--kind`):
 *   replay   a genuine key message captured from a victim device, re-published on its topic: the
 *            costly case without admission (certificate cached, signature check, ECDH, store)
 *   forged   a key message for the victim signed under a look-alike CA's certificate
 *   garbage  random bytes
 * `--spread` puts each message on another random device id's topic (the per-device buckets do not
 * help; the global key-message bucket and the negative certificate cache do). `--no-admission`
 * lifts every admission limit, to see the cost without it.
 *
 * Phases: devices enroll and open their sessions (not measured), `--seconds` without a flood
 * (baseline), `--seconds` with it. Latency: from the reading's time stamp `t` (the device's clock,
 * this host's) to the payload handed to the service's handler (stored, about to be acknowledged).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import mqttPacket from 'mqtt-packet';
import { createLogger } from '../cloud/service/log.js';
import { startCloudService } from '../cloud/service/service.js';
import { decodePayload } from '../cloud/telemetry/payload.js';
import { topic } from '../src/profile/topics.js';
import { startFleet } from '../system/fleet.js';
import { crypto, makeCloudDataDir, makeDevice, TestDevice } from '../test/cloud/service-fixture.js';
import { startMosquitto } from '../test/fixtures/mosquitto.js';
import { issueCertificate, makeCa } from '../test/fixtures/pki.js';

interface FloodJob {
  port: number;
  rate: number;
  seconds: number;
  /** [topic, payload][] used round-robin. */
  messages: [string, Uint8Array][];
}

/** The flooder (worker thread): QoS 1 publishes at `rate`/s for `seconds`, PUBACKs drained. */
async function flood(job: FloodJob): Promise<number> {
  const socket = connect({ port: job.port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('data', () => {}); // CONNACK and PUBACKs
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId: `flooder-${process.pid}`,
      clean: true,
      keepalive: 60,
    }),
  );
  let id = 1;
  let sent = 0;
  const started = performance.now();
  const end = started + job.seconds * 1000;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - started) / 1000) * job.rate);
    const chunks: Buffer[] = [];
    for (; sent < due; sent++) {
      const [t, payload] = job.messages[sent % job.messages.length]!;
      chunks.push(
        mqttPacket.generate({
          cmd: 'publish',
          topic: t,
          payload: Buffer.from(payload),
          qos: 1,
          messageId: id,
          dup: false,
          retain: false,
        }),
      );
      id = id === 65535 ? 1 : id + 1;
    }
    if (chunks.length > 0 && !socket.write(Buffer.concat(chunks)))
      await new Promise((resolve) => socket.once('drain', resolve));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  socket.end();
  return sent;
}

if (!isMainThread) {
  flood(workerData as FloodJob).then(
    (sent) => parentPort!.postMessage(sent),
    (e) => parentPort!.postMessage(`error: ${e}`),
  );
} else {
  await main();
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** GET /health, timed (ms); a request that takes more than 5 s counts as 5000. */
function probeHealth(url: string): Promise<number> {
  const start = performance.now();
  return new Promise((resolve) => {
    const req = get(`${url}/health`, { timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - start));
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(5000);
    });
    req.on('error', () => resolve(5000));
  });
}

async function main(): Promise<void> {
  const rate = Number(arg('rate', '5000'));
  const kind = arg('kind', 'replay') as 'replay' | 'forged' | 'garbage';
  const spread = process.argv.includes('--spread');
  const deviceCount = Number(arg('devices', '20'));
  const deviceRate = Number(arg('device-rate', '2'));
  const seconds = Math.min(120, Number(arg('seconds', '20')));
  const noAdmission = process.argv.includes('--no-admission');
  if (!['replay', 'forged', 'garbage'].includes(kind)) throw new Error(`unknown --kind ${kind}`);

  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-bench-flood-'));
  const dataDir = join(tmp, 'data');
  const [fixture, broker] = await Promise.all([makeCloudDataDir(dataDir, 'flood bench CA'), startMosquitto()]);
  let logLines = 0;
  let logBytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logBytes += chunk.length;
      for (const b of chunk) if (b === 10) logLines++;
      callback();
    },
  });
  let phase = 'setup' as 'setup' | 'baseline' | 'flood' | 'after';
  const latencies: Record<'baseline' | 'flood', number[]> = { baseline: [], flood: [] };
  const lifted = 1e12;
  const service = await startCloudService({
    brokerUrl: broker.url,
    dataDir,
    store: `sqlite:${join(tmp, 'flood.db')}`,
    clientId: 'bench-flood',
    logger: createLogger({ level: 'info', destination: sink }),
    http: { port: 0, dashboard: true },
    ...(noAdmission
      ? { admission: { keyBurst: lifted, keyPerSecond: lifted, globalKeyBurst: lifted, globalKeyPerSecond: lifted } }
      : {}),
    onPayload: (p) => {
      if (phase !== 'baseline' && phase !== 'flood') return;
      const t = (decodePayload(p.payload)?.value as { t?: unknown } | undefined)?.t;
      if (typeof t === 'number') latencies[phase].push(Date.now() - t);
    },
  });
  console.log(
    `flood bench: ${rate} ${kind} key messages/s${spread ? ' on random device ids' : ' on one device id'} ` +
      `against ${deviceCount} host-sim devices × ${deviceRate} msg/s (QoS 1), mosquitto ${broker.url}, ` +
      `${noAdmission ? 'admission limits LIFTED' : 'default admission limits'}; ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
  );

  // The flood's messages.
  const victim = await makeDevice(fixture, 'flood-victim');
  let payload: Uint8Array;
  if (kind === 'replay') {
    payload = victim.keyMessage(1);
  } else if (kind === 'forged') {
    const lookAlike = await makeCa({ name: 'flood bench CA' });
    const forged = await issueCertificate(lookAlike, { commonName: victim.id });
    const key = crypto.p256Import(forged.privateScalar);
    payload = new TestDevice(victim.id, key, forged.der, '01', fixture.cloudPublicKey).keyMessage(1);
  } else {
    payload = new Uint8Array(200).map(() => Math.floor(Math.random() * 256));
  }
  const messages: [string, Uint8Array][] = spread
    ? Array.from({ length: 5000 }, (_, i) => [
        topic('session', `spread-${i}-${Math.random().toString(36).slice(2, 8)}`),
        payload,
      ])
    : [[topic('session', victim.id), payload]];

  const fleet = await startFleet({
    broker: broker.url,
    dataDir,
    devices: deviceCount,
    rate: deviceRate,
    qos: 1,
    crypto: 'node',
    idPrefix: 'legit-',
  });
  const health: Record<'baseline' | 'flood', number[]> = { baseline: [], flood: [] };
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const ms = await probeHealth(service.http!.url);
      if (phase === 'baseline' || phase === 'flood') health[phase].push(ms);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const setupDeadline = Date.now() + 90_000;
    while (fleet.totals().acknowledged < deviceCount * 2) {
      if (Date.now() > setupDeadline)
        throw new Error(`devices not sending after 90 s: ${JSON.stringify(fleet.totals())}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    phase = 'baseline';
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const before = {
      received: service.metrics.received.get({ kind: 'session' }),
      logLines,
      logBytes,
      rss: process.memoryUsage().rss,
      cpu: process.cpuUsage(),
    };
    phase = 'flood';
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const sent = await new Promise<number>((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), {
        workerData: { port: broker.port, rate, seconds, messages } satisfies FloodJob,
      });
      worker.once('message', (m) => (typeof m === 'number' ? resolve(m) : reject(new Error(String(m)))));
      worker.once('error', reject);
    });
    loop.disable();
    const cpu = process.cpuUsage(before.cpu);
    const floodReceived = service.metrics.received.get({ kind: 'session' }) - before.received;
    phase = 'after';
    const rejected = service.metrics.rejectedByReason();
    const line = (name: string, l: number[], h: number[]) =>
      `${name.padEnd(9)} readings ${String(l.length).padStart(5)}  device → stored p50 ${pct(l, 50)} ms, ` +
      `p99 ${pct(l, 99)} ms, max ${Math.max(...l)} ms  |  /health ${h.length} probes, p50 ${pct(h, 50).toFixed(1)} ms, ` +
      `p99 ${pct(h, 99).toFixed(1)} ms, max ${Math.max(...h).toFixed(1)} ms, over 100 ms: ${h.filter((x) => x > 100).length}`;
    console.log(line('baseline', latencies.baseline, health.baseline));
    console.log(line('flood', latencies.flood, health.flood));
    console.log(
      `flood: ${sent} sent in ${seconds} s (${Math.round(sent / seconds)}/s), ${floodReceived} reached the service ` +
        `(${Math.round(floodReceived / seconds)}/s); service thread CPU ${(((cpu.user + cpu.system) / 1e6 / seconds) * 100).toFixed(0)} % of a core ` +
        `(includes the devices, in the same process); refused ${JSON.stringify(rejected)}`,
    );
    console.log(
      `log during the flood: ${logLines - before.logLines} lines, ${logBytes - before.logBytes} bytes; ` +
        `RSS ${Math.round(before.rss / 1e6)} → ${Math.round(process.memoryUsage().rss / 1e6)} MB; ` +
        `fleet ${JSON.stringify({ sent: fleet.totals().sent, acknowledged: fleet.totals().acknowledged })}`,
    );
    console.log(
      `service thread event-loop delay during the flood: p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, ` +
        `max ${(loop.max / 1e6).toFixed(1)} ms; machine load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')} (2 cores, shared with other work)`,
    );
  } finally {
    probing = false;
    await prober;
    await fleet.stop();
    await service.stop();
    await broker.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}
