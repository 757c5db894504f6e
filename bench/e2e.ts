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
 * Each returns { ratio: service / bare, service, bare } in msg/s. Within one call the sides are
 * interleaved (bare, service, bare; `bare` is the mean of its two rounds), so a machine shared
 * with others shifts both alike. Options: { messages (default 20 000), devices (default 50) }.
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/e2e.js [e2e|drain|both] [messages] [devices] [repeat]`
 * prints one JSON line per measurement (`service-drain` / `service-e2e`: the service's side alone,
 * for `node --cpu-prof`). Needs mosquitto.
 */
import { mkdtempSync, rmSync } from 'node:fs';
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
}

const BARE_PREFIX = 'bench-bare';

interface Rig {
  tmp: string;
  broker: TestMosquitto;
  fixture: CloudFixture;
  devices: TestDevice[];
  messages: number;
  round: number;
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

async function bareEndToEnd(r: Rig): Promise<number> {
  let n = 0;
  const client = await bareSubscriber(r, `bench-bare-${++r.round}`, 'none', () => n++);
  const messages = dataMessages(r, 1, BARE_PREFIX);
  const t0 = performance.now();
  const published = publish({ url: r.broker.url, messages });
  await until(() => n >= messages.length);
  const rate = messages.length / ((performance.now() - t0) / 1000);
  await published;
  await client.endAsync();
  return rate;
}

async function serviceEndToEnd(r: Rig, kid: number): Promise<number> {
  let n = 0;
  const { service } = await serviceWithSessions(r, kid, () => n++);
  const messages = dataMessages(r, kid);
  const t0 = performance.now();
  const published = publish({ url: r.broker.url, messages });
  await until(() => n >= messages.length);
  const rate = messages.length / ((performance.now() - t0) / 1000);
  await published;
  await service.stop();
  return rate;
}

/** Publisher → mosquitto → service (SQLite FULL, ack after commit) vs → bare MQTT.js 5 subscriber. */
export async function measureEndToEnd(options: E2eOptions = {}): Promise<E2eResult> {
  const r = await rig(options);
  try {
    const bare1 = await bareEndToEnd(r);
    const service = await serviceEndToEnd(r, 1);
    const bare2 = await bareEndToEnd(r);
    const bare = (bare1 + bare2) / 2;
    return { ratio: service / bare, service, bare };
  } finally {
    await dispose(r);
  }
}

// ------------------------------------------------------------------------------ backlog drain

/** Rate from the first message to the last, given each message's receive time and the end. */
function drainRate(count: number, first: number, last: number): number {
  return count / Math.max(1e-3, (last - first) / 1000);
}

async function bareDrain(r: Rig): Promise<number> {
  const clientId = `bench-bare-drain-${++r.round}`;
  const away = await bareSubscriber(r, clientId, 'new', () => {});
  await away.endAsync();
  const messages = dataMessages(r, 1, BARE_PREFIX);
  await publish({ url: r.broker.url, messages });
  let n = 0;
  let first = 0;
  let last = 0;
  const client = await bareSubscriber(r, clientId, 'resume', () => {
    if (n++ === 0) first = performance.now();
    last = performance.now();
  });
  await until(() => n >= messages.length);
  await client.endAsync();
  return drainRate(messages.length - 1, first, last);
}

async function serviceDrain(r: Rig, kid: number): Promise<number> {
  const { service: away, store, clientId } = await serviceWithSessions(r, kid, () => {});
  await away.stop();
  const messages = dataMessages(r, kid);
  await publish({ url: r.broker.url, messages });
  let n = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  const service = await start(r, store, clientId, (receivedAt) => {
    n++;
    // receivedAt: when the consumer read the message (ms); the first read starts the clock.
    first = Math.min(first, receivedAt);
    last = Date.now();
  });
  await until(() => n >= messages.length);
  await service.stop();
  return drainRate(messages.length - 1, first, last);
}

/** A backlog queued in mosquitto while the client was away, drained: the service vs a bare subscriber. */
export async function measureBacklogDrain(options: E2eOptions = {}): Promise<E2eResult> {
  const r = await rig(options);
  try {
    const bare1 = await bareDrain(r);
    const service = await serviceDrain(r, 1);
    const bare2 = await bareDrain(r);
    const bare = (bare1 + bare2) / 2;
    return { ratio: service / bare, service, bare };
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
      const rate = which === 'service-drain' ? await serviceDrain(r, 1) : await serviceEndToEnd(r, 1);
      console.log(JSON.stringify({ case: which, messages, devices, service: Math.round(rate) }));
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
  return { ratio: Math.round(r.ratio * 1000) / 1000, service: Math.round(r.service), bare: Math.round(r.bare) };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
