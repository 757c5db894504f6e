/**
 * The cloud service against a bare MQTT.js 5 subscriber, on the same broker, publisher and
 * messages, in the same run (issue 13 §3). Both sides take QoS 1 data messages from mosquitto;
 * the service also decrypts them, runs the replay window, commits them to SQLite (WAL,
 * synchronous FULL) and acknowledges each only after its commit; the bare subscriber only counts
 * them (MQTT.js acknowledges on receipt).
 *
 *   measureEndToEnd   a publisher (bench/publisher.ts, a worker thread, messages sealed before)
 *                     sends `messages` data messages; msg/s from the first publish to the last
 *                     message handled
 *   measureBacklogDrain  `messages` data messages are queued in mosquitto for a persistent
 *                     session while its client is away; then the client connects and drains
 *                     them: msg/s from the first message received to the last one handled
 *
 * Each returns { ratio: service / bare, service, bare } in msg/s, and `cpu`: each side's CPU time
 * per message on the main thread, in the whole process and in mosquitto (Linux /proc), which is
 * what bounds the ratio on a machine with few cores. Within one call the sides are
 * interleaved (bare, service, bare; `bare` is the mean of its two rounds), so a machine shared
 * with others shifts both alike. Options: { messages (default 20 000), devices (default 50) }.
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/e2e.js [e2e|drain|both] [messages] [devices] [repeat]`
 * prints one JSON line per measurement (`service-drain` / `service-e2e`: the service's side alone,
 * for `node --cpu-prof`). Needs mosquitto.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import mqtt from 'mqtt';
import { createLogger } from '../cloud/service/log.js';
import { type CloudService, startCloudService } from '../cloud/service/service.js';
import { topic } from '../src/profile/topics.js';
import { type CloudFixture, makeCloudDataDir, makeDevice, type TestDevice } from '../test/cloud/service-fixture.js';
import { startMosquitto, type TestMosquitto } from '../test/fixtures/mosquitto.js';
import { type PublishJob, publish } from './publisher.js';

export interface E2eOptions {
  /** Data messages per round (default 20 000). */
  messages?: number;
  /** Devices they come from, round robin (default 50). */
  devices?: number;
}

export interface E2eResult {
  /** service / bare. */
  ratio: number;
  /** msg/s. */
  service: number;
  /** msg/s (mean of the two bare rounds). */
  bare: number;
  /** CPU time per message of each side (bare: the mean of its two rounds). */
  cpu: { service: CpuPerMessage; bare: CpuPerMessage };
}

/**
 * Where a side's CPU went, in µs per message, over its measuring window: what bounds a ratio on a
 * machine with few cores. `main` is the Node main thread's (from /proc, 10 ms ticks);
 * `process` all threads of the process (the service's store writer thread; in e2e also the
 * publisher, a worker thread of this process, alike for both sides); `broker` mosquitto's.
 */
export interface CpuPerMessage {
  main: number;
  process: number;
  broker: number;
}

/** CPU seconds (user + system) of a process or thread so far, from its /proc stat file; 0 when gone. */
function statCpuSeconds(path: string): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const rest = readFileSync(path, 'utf8').split(') ').pop()!.split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100; // USER_HZ
  } catch {
    return 0;
  }
}

/** CPU seconds mosquitto used so far. */
function brokerCpuSeconds(r: Rig): number {
  r.brokerPids ??= spawnSync('pgrep', ['-f', r.broker.dir], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter((p) => /^\d+$/.test(p));
  return r.brokerPids.reduce((sum, pid) => sum + statCpuSeconds(`/proc/${pid}/stat`), 0);
}

/** CPU seconds this process's main thread used so far (its thread id is the process id). */
function mainThreadCpuSeconds(): number {
  return statCpuSeconds(`/proc/self/task/${process.pid}/stat`);
}

/** Starts measuring CPU; the returned function ends it for `messages` messages. */
function cpuMeter(r: Rig): (messages: number) => CpuPerMessage {
  const usage = process.cpuUsage();
  const main = mainThreadCpuSeconds();
  const broker = brokerCpuSeconds(r);
  return (messages) => {
    const used = process.cpuUsage(usage);
    return {
      main: ((mainThreadCpuSeconds() - main) * 1e6) / messages,
      process: (used.user + used.system) / messages,
      broker: ((brokerCpuSeconds(r) - broker) * 1e6) / messages,
    };
  };
}

function meanCpu(a: CpuPerMessage, b: CpuPerMessage): CpuPerMessage {
  return { main: (a.main + b.main) / 2, process: (a.process + b.process) / 2, broker: (a.broker + b.broker) / 2 };
}

interface Round {
  rate: number;
  cpu: CpuPerMessage;
}

const BARE_PREFIX = 'bench-bare';

interface Rig {
  tmp: string;
  broker: TestMosquitto;
  fixture: CloudFixture;
  devices: TestDevice[];
  messages: number;
  round: number;
  /** mosquitto's process ids, looked up once (not on the measured thread while it measures). */
  brokerPids?: string[];
}

async function rig(options: E2eOptions): Promise<Rig> {
  const messages = options.messages ?? 20_000;
  const deviceCount = options.devices ?? 50;
  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-bench-e2e-'));
  const [fixture, broker] = await Promise.all([
    makeCloudDataDir(join(tmp, 'data')),
    startMosquitto({ maxQueued: Math.max(100_000, messages * 2) }),
  ]);
  const devices = await Promise.all([...Array(deviceCount).keys()].map((d) => makeDevice(fixture, `bench-${d}`)));
  return { tmp, broker, fixture, devices, messages, round: 0 };
}

async function dispose(r: Rig): Promise<void> {
  await r.broker.close();
  rmSync(r.tmp, { recursive: true, force: true });
}

/** The data messages of a round: `messages` sealed ones, round robin over the devices, under kid `kid`. */
function dataMessages(r: Rig, kid: number, prefix?: string): PublishJob['messages'] {
  const out: PublishJob['messages'] = [];
  const perDevice = Math.ceil(r.messages / r.devices.length);
  for (let seq = 0; seq < perDevice; seq++)
    for (const d of r.devices) {
      if (out.length >= r.messages) break;
      const t = prefix === undefined ? topic('data', d.id) : `${prefix}/${d.id}/data`;
      out.push([t, d.data(kid, seq), 1]);
    }
  return out;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean | Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('bench: timed out');
    await sleep(2);
  }
}

/** A service instance on a fresh SQLite store with every device's session `kid` stored. */
async function serviceWithSessions(
  r: Rig,
  kid: number,
  onPayload: (receivedAt: number) => void,
): Promise<{ service: CloudService; store: string; clientId: string }> {
  r.round++;
  const store = `sqlite:${join(r.tmp, `e2e-${r.round}.db`)}`;
  const clientId = `bench-e2e-${r.round}`;
  const service = await start(r, store, clientId, onPayload);
  await publish({ url: r.broker.url, messages: r.devices.map((d) => [topic('session', d.id), d.keyMessage(kid), 2]) });
  await until(async () => (await service.store.stats()).sessions >= r.devices.length);
  return { service, store, clientId };
}

function start(r: Rig, store: string, clientId: string, onPayload: (receivedAt: number) => void) {
  return startCloudService({
    brokerUrl: r.broker.url,
    dataDir: r.fixture.dataDir,
    store,
    clientId,
    logger: createLogger({ level: 'error' }),
    onPayload: (p) => onPayload(p.receivedAt.getTime()),
  });
}

/** A bare MQTT.js 5 subscriber of `{BARE_PREFIX}/+/data` at QoS 1 (acknowledges on receipt). */
async function bareSubscriber(r: Rig, clientId: string, session: 'none' | 'new' | 'resume', onMessage: () => void) {
  const client = mqtt.connect(r.broker.url, {
    clientId,
    protocolVersion: 5,
    clean: session !== 'resume',
    ...(session === 'none' ? {} : { properties: { sessionExpiryInterval: 3600 } }),
  });
  // Before the CONNACK: a resumed session's queued messages follow it at once.
  client.on('message', onMessage);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  if (session !== 'resume') await client.subscribeAsync(`${BARE_PREFIX}/+/data`, { qos: 1 });
  return client;
}

// ------------------------------------------------------------------------------- end to end

async function bareEndToEnd(r: Rig): Promise<Round> {
  let n = 0;
  const client = await bareSubscriber(r, `bench-bare-${++r.round}`, 'none', () => n++);
  const messages = dataMessages(r, 1, BARE_PREFIX);
  const cpu = cpuMeter(r);
  const t0 = performance.now();
  const published = publish({ url: r.broker.url, messages });
  await until(() => n >= messages.length);
  const rate = messages.length / ((performance.now() - t0) / 1000);
  const used = cpu(messages.length);
  await published;
  await client.endAsync();
  return { rate, cpu: used };
}

async function serviceEndToEnd(r: Rig, kid: number): Promise<Round> {
  let n = 0;
  const { service } = await serviceWithSessions(r, kid, () => n++);
  const messages = dataMessages(r, kid);
  const cpu = cpuMeter(r);
  const t0 = performance.now();
  const published = publish({ url: r.broker.url, messages });
  await until(() => n >= messages.length);
  const rate = messages.length / ((performance.now() - t0) / 1000);
  const used = cpu(messages.length);
  await published;
  await service.stop();
  return { rate, cpu: used };
}

/** Publisher → mosquitto → service (SQLite FULL, ack after commit) vs → bare MQTT.js 5 subscriber. */
export async function measureEndToEnd(options: E2eOptions = {}): Promise<E2eResult> {
  const r = await rig(options);
  try {
    return result(await bareEndToEnd(r), await serviceEndToEnd(r, 1), await bareEndToEnd(r));
  } finally {
    await dispose(r);
  }
}

// ------------------------------------------------------------------------------ backlog drain

/** Rate from the first message to the last, given each message's receive time and the end. */
function drainRate(count: number, first: number, last: number): number {
  return count / Math.max(1e-3, (last - first) / 1000);
}

function result(bare1: Round, service: Round, bare2: Round): E2eResult {
  const bare = (bare1.rate + bare2.rate) / 2;
  return {
    ratio: service.rate / bare,
    service: service.rate,
    bare,
    cpu: { service: service.cpu, bare: meanCpu(bare1.cpu, bare2.cpu) },
  };
}

async function bareDrain(r: Rig): Promise<Round> {
  const clientId = `bench-bare-drain-${++r.round}`;
  const away = await bareSubscriber(r, clientId, 'new', () => {});
  await away.endAsync();
  const messages = dataMessages(r, 1, BARE_PREFIX);
  await publish({ url: r.broker.url, messages });
  let n = 0;
  let first = 0;
  let last = 0;
  // CPU from before connecting: the drain starts with the connection (a resumed session's queue
  // follows the CONNACK at once).
  brokerCpuSeconds(r);
  const cpu = cpuMeter(r);
  const client = await bareSubscriber(r, clientId, 'resume', () => {
    if (n++ === 0) first = performance.now();
    last = performance.now();
  });
  await until(() => n >= messages.length);
  const used = cpu(messages.length);
  await client.endAsync();
  return { rate: drainRate(messages.length - 1, first, last), cpu: used };
}

async function serviceDrain(r: Rig, kid: number): Promise<Round> {
  const { service: away, store, clientId } = await serviceWithSessions(r, kid, () => {});
  await away.stop();
  const messages = dataMessages(r, kid);
  await publish({ url: r.broker.url, messages });
  let n = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  // CPU from the moment the service is up (its start-up, opening the store and loading keys, is
  // not the drain's): messages that came with the CONNACK and were handled before are left out of
  // the count as well.
  brokerCpuSeconds(r); // the process lookup, before anything is measured
  const service = await start(r, store, clientId, (receivedAt) => {
    n++;
    // receivedAt: when the consumer read the message (ms); the first read starts the clock.
    first = Math.min(first, receivedAt);
    last = Date.now();
  });
  const before = n;
  const cpu = cpuMeter(r);
  await until(() => n >= messages.length);
  const used = cpu(messages.length - before);
  await service.stop();
  return { rate: drainRate(messages.length - 1, first, last), cpu: used };
}

/** A backlog queued in mosquitto while the client was away, drained: the service vs a bare subscriber. */
export async function measureBacklogDrain(options: E2eOptions = {}): Promise<E2eResult> {
  const r = await rig(options);
  try {
    return result(await bareDrain(r), await serviceDrain(r, 1), await bareDrain(r));
  } finally {
    await dispose(r);
  }
}

// ------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const which = process.argv[2] ?? 'both';
  const messages = Number(process.argv[3] ?? 20_000);
  const devices = Number(process.argv[4] ?? 50);
  const repeat = Number(process.argv[5] ?? 1);
  if (which === 'service-drain' || which === 'service-e2e') {
    // One side alone, for `node --cpu-prof`: the profile then shows only the service's thread.
    const r = await rig({ messages, devices });
    try {
      const side = which === 'service-drain' ? await serviceDrain(r, 1) : await serviceEndToEnd(r, 1);
      console.log(
        JSON.stringify({ case: which, messages, devices, service: Math.round(side.rate), cpu: cpuUs(side.cpu) }),
      );
    } finally {
      await dispose(r);
    }
    return;
  }
  for (let i = 0; i < repeat; i++) {
    if (which === 'e2e' || which === 'both') {
      const r = await measureEndToEnd({ messages, devices });
      console.log(JSON.stringify({ case: 'e2e', messages, devices, ...round(r) }));
    }
    if (which === 'drain' || which === 'both') {
      const r = await measureBacklogDrain({ messages, devices });
      console.log(JSON.stringify({ case: 'drain', messages, devices, ...round(r) }));
    }
  }
}

function round(r: E2eResult): E2eResult {
  return {
    ratio: Math.round(r.ratio * 1000) / 1000,
    service: Math.round(r.service),
    bare: Math.round(r.bare),
    cpu: { service: cpuUs(r.cpu.service), bare: cpuUs(r.cpu.bare) },
  };
}

function cpuUs(c: CpuPerMessage): CpuPerMessage {
  const one = (x: number) => Math.round(x * 10) / 10;
  return { main: one(c.main), process: one(c.process), broker: one(c.broker) };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
