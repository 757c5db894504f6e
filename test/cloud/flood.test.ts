/**
 * One sender cannot starve the rest (issue 12 §5): a flood of key messages on one device's topic
 * stops before signature verification; certificates that failed are not verified again; an
 * oversize certificate is refused before it is parsed; refusal logs are aggregated; the consumer
 * asks mosquitto (MQTT 5) for a Maximum Packet Size and Retain Handling 2 and ignores retained
 * messages; the dashboard snapshot stays small and a slow event-stream client is dropped.
 * The latency figures under a flood are a benchmark (bench/flood.ts), not a test.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { LiveState } from '../../cloud/dashboard/live-state.js';
import { dashboard } from '../../cloud/dashboard/routes.js';
import { type LogLine, startEnrollmentService } from '../../cloud/enroll/service.js';
import { startHttpEndpoint } from '../../cloud/http/server.js';
import { type InboundMessage, MqttConsumer } from '../../cloud/mqtt/consumer.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { x509 } from '../../cloud/pki/x509.js';
import { Admission } from '../../cloud/service/admission.js';
import { RefusalLog } from '../../cloud/service/log.js';
import { startCloudService } from '../../cloud/service/service.js';
import { MAX_DETAIL_CHARS } from '../../cloud/telemetry/detail.js';
import { encode } from '../../src/cbor/index.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { startBroker, type TestBroker } from '../fixtures/broker.js';
import { mosquittoAvailability, startMosquitto } from '../fixtures/mosquitto.js';
import { issueCertificate, makeCa } from '../fixtures/pki.js';
import {
  type CloudFixture,
  captureLog,
  connectPublisher,
  crypto,
  makeCloudDataDir,
  makeDevice,
  sleep,
  until,
} from './service-fixture.js';

/** node:crypto with ECDSA verifications counted. */
function countingCrypto(): { crypto: CryptoProvider; verifications: () => number } {
  let n = 0;
  const counted = Object.create(crypto) as CryptoProvider;
  counted.ecdsaP256Verify = (key, message, signature) => {
    n++;
    return crypto.ecdsaP256Verify(key, message, signature);
  };
  return { crypto: counted, verifications: () => n };
}

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-flood-'));
let fixture: CloudFixture;
let broker: TestBroker;
before(async () => {
  [fixture, broker] = await Promise.all([makeCloudDataDir(join(tmp, 'data')), startBroker()]);
});
after(async () => {
  await broker?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('admission before public-key work', () => {
  test('a flood of key messages on one device topic stops before signature verification', async () => {
    const counting = countingCrypto();
    const log = captureLog('warn');
    const service = await startCloudService({
      brokerUrl: broker.url,
      dataDir: fixture.dataDir,
      store: `sqlite:${join(tmp, 'bucket.db')}`,
      clientId: 'flood-bucket',
      logger: log.logger,
      crypto: counting.crypto,
    });
    const pub = await connectPublisher(broker.url, 'flood-bucket-pub');
    try {
      const device = await makeDevice(fixture, 'flood-victim');
      await pub.key(device, device.keyMessage(1));
      await until('the genuine session', async () => (await service.store.stats()).sessions === 1);
      const before = counting.verifications();
      const flood = 300;
      // A captured key message, replayed: the certificate is cached, the signature is checked
      // (and the cloud key's ECDH done) again for every copy unless admission stops it.
      await Promise.all(Array.from({ length: flood }, () => pub.key(device, device.keyMessage(1))));
      await until(
        'every copy handled',
        () => service.metrics.received.get({ kind: 'session' }) === flood + 1 && service.health().inFlight === 0,
        60_000,
      );
      const spent = counting.verifications() - before;
      assert.ok(spent <= 25, `${spent} signature verifications for ${flood} copies of one key message (≤ 25 expected)`);
      const refused = service.metrics.rejectedByReason()['rate-limited'] ?? 0;
      assert.ok(refused >= flood - 25, `${refused} refused as rate-limited`);
    } finally {
      await pub.close();
      await service.stop();
    }
  });
});

describe('device certificates', () => {
  test('a certificate that failed is not verified again (negative cache)', async () => {
    const ca = await makeCa({ name: 'flood test CA' });
    const lookAlike = await makeCa({ name: 'flood test CA' }); // same name, another key
    const forged = await issueCertificate(lookAlike, { commonName: 'dev-forged' });
    const counting = countingCrypto();
    const verify = deviceCertificateVerifier({ crypto: counting.crypto, trustAnchors: [ca.der] });
    for (let i = 0; i < 100; i++) assert.throws(() => verify(forged.der), /does not verify/);
    assert.equal(counting.verifications(), 1, 'one signature verification for 100 presentations');
  });

  test('a certificate over 2 KiB is refused before it is parsed', async () => {
    const ca = await makeCa({ name: 'size test CA' });
    // Valid in every other respect: a non-critical extension of 3000 bytes.
    const padding = new x509.Extension('1.3.6.1.4.1.99999.1', false, new Uint8Array(3000).fill(0x41));
    const big = await issueCertificate(ca, { commonName: 'dev-big', extensions: [padding] });
    assert.ok(big.der.length > 3000);
    const counting = countingCrypto();
    const verify = deviceCertificateVerifier({ crypto: counting.crypto, trustAnchors: [ca.der] });
    assert.throws(() => verify(big.der), /certificate of \d+ bytes is larger than 2048/);
    assert.equal(counting.verifications(), 0);
    const small = await issueCertificate(ca, { commonName: 'dev-small' });
    assert.equal(verify(small.der).deviceId, 'dev-small');
  });
});

describe('refusal logs', () => {
  test('a flood of refusals yields a bounded number of log lines, with counts', async () => {
    const log = captureLog('info');
    const service = await startCloudService({
      brokerUrl: broker.url,
      dataDir: fixture.dataDir,
      store: `sqlite:${join(tmp, 'log.db')}`,
      clientId: 'flood-log',
      logger: log.logger,
    });
    const pub = await connectPublisher(broker.url, 'flood-log-pub');
    const flood = 400;
    try {
      await Promise.all(Array.from({ length: flood }, (_, i) => pub.data(`junk-${i % 7}`, Uint8Array.of(0x42))));
      await until('every message refused', () => (service.metrics.rejectedByReason()['bad-cbor'] ?? 0) === flood);
    } finally {
      await pub.close();
      await service.stop();
    }
    const refusals = log.lines().filter((l) => l.event === 'rejected' || l.event === 'rejected-summary');
    assert.ok(refusals.length <= 30, `${refusals.length} refusal lines for ${flood} refusals (≤ 30 expected)`);
    const counted = refusals.reduce((n, l) => n + (typeof l.count === 'number' ? l.count : 1), 0);
    assert.equal(counted, flood, 'the lines account for every refusal');
    for (const l of refusals) assert.ok(JSON.stringify(l).length < 1024);
  });
});

describe('ca serve under a flood', () => {
  test('requests dropped unanswered make a bounded number of log lines, with counts', async () => {
    const lines: LogLine[] = [];
    const enroll = await startEnrollmentService({
      dataDir: fixture.dataDir,
      crypto,
      brokerUrl: broker.url,
      log: (l) => lines.push(l),
    });
    let seen = 0;
    enroll.client.on('message', () => seen++);
    const pub = await connectPublisher(broker.url, 'flood-enroll-pub');
    const flood = 200;
    try {
      // Not a valid device id: ignored as bad-request, one line each before aggregation.
      await Promise.all(
        Array.from({ length: flood }, (_, i) => pub.raw(`cose-flow/v1/bad!id${i}/enroll`, Uint8Array.of(1))),
      );
      await until('every request seen', () => seen === flood);
    } finally {
      await pub.close();
      await enroll.close();
    }
    const ignoredLines = lines.filter((l) => l.outcome === 'ignored');
    assert.ok(ignoredLines.length <= 10, `${ignoredLines.length} lines for ${flood} ignored requests`);
    const counted = ignoredLines.reduce((n, l) => n + (typeof l.count === 'number' ? l.count : 1), 0);
    assert.equal(counted, flood);
  });
});

/** A TCP proxy in front of the broker that decodes what the client sends. */
async function sniffingProxy(port: number): Promise<{ url: string; packets: Packet[]; close: () => Promise<void> }> {
  const packets: Packet[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ port, host: '127.0.0.1' });
    sockets.add(client).add(upstream);
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p: Packet) => packets.push(p));
    parser.on('error', () => {});
    client.on('data', (d) => {
      parser.parse(d);
      upstream.write(d);
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${address.port}`,
    packets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const mosquitto = mosquittoAvailability('the consumer flood tests against mosquitto');

describe('MQTT consumer against mosquitto', { skip: mosquitto.run ? false : mosquitto.why }, () => {
  test('CONNECT carries a Maximum Packet Size, SUBSCRIBE Retain Handling 2; retained and oversize messages never reach the service', async () => {
    const broker5 = await startMosquitto();
    const proxy = await sniffingProxy(broker5.port);
    const pub = await mqtt.connectAsync(broker5.url, { clientId: 'retain-pub', protocolVersion: 5 });
    const seen: InboundMessage[] = [];
    const consumer = new MqttConsumer({
      url: proxy.url,
      clientId: 'retain-consumer',
      subscriptions: [{ topic: 'cose-flow/v1/+/session', qos: 2 }],
      onMessage: (m) => {
        seen.push(m);
        m.ack();
      },
    });
    try {
      // 20 retained look-alikes wait in the broker before the service subscribes.
      for (let i = 0; i < 20; i++)
        await pub.publishAsync(`cose-flow/v1/retained-${i}/session`, Buffer.from(`r${i}`), { qos: 1, retain: true });
      await consumer.start();
      assert.equal(consumer.protocolVersion, 5);
      const connect = proxy.packets.find((p) => p.cmd === 'connect') as mqttPacket.IConnectPacket;
      const maxPacket = connect.properties?.maximumPacketSize;
      assert.ok(
        maxPacket !== undefined && maxPacket >= 65_536 && maxPacket <= 128 * 1024,
        `Maximum Packet Size ${maxPacket}`,
      );
      const subscribe = proxy.packets.find((p) => p.cmd === 'subscribe') as mqttPacket.ISubscribePacket;
      assert.deepEqual(
        subscribe.subscriptions.map((s) => s.rh),
        [2],
      );
      // A retained message published while subscribed comes with retain 0 (MQTT 5 §3.3.1.3): it is
      // an ordinary message; an oversize one is dropped by the broker; then a normal one.
      await pub.publishAsync('cose-flow/v1/big/session', Buffer.alloc(maxPacket! + 1000), { qos: 1 });
      await pub.publishAsync('cose-flow/v1/live/session', Buffer.from('live'), { qos: 2 });
      await until('the live message', () => seen.some((m) => m.topic === 'cose-flow/v1/live/session'));
      await sleep(200);
      assert.deepEqual(
        seen.map((m) => m.topic),
        ['cose-flow/v1/live/session'],
      );
    } finally {
      await consumer.close();
      await pub.endAsync();
      await proxy.close();
      await broker5.close();
    }
  });
});

test('on MQTT 3.1.1 (aedes), a retained message sent on subscribe is acknowledged and not handed on', async () => {
  const pub = await mqtt.connectAsync(broker.url, { clientId: 'retain4-pub', protocolVersion: 4 });
  const seen: string[] = [];
  const consumer = new MqttConsumer({
    url: broker.url,
    clientId: 'retain4-consumer',
    subscriptions: [{ topic: 'r4/+/session', qos: 1 }],
    onMessage: (m) => {
      seen.push(m.topic);
      m.ack();
    },
  });
  try {
    await pub.publishAsync('r4/old/session', Buffer.from('old'), { qos: 1, retain: true });
    await consumer.start();
    await pub.publishAsync('r4/new/session', Buffer.from('new'), { qos: 1 });
    await until('the new message', () => seen.includes('r4/new/session'));
    await sleep(100);
    assert.deepEqual(seen, ['r4/new/session']);
    assert.equal(consumer.unacked, 0, 'the retained one was acknowledged');
  } finally {
    await consumer.close();
    await pub.endAsync();
  }
});

describe('dashboard under a flood', () => {
  test('the snapshot stays small: long refusal details and large readings are cut', () => {
    const live = new LiveState();
    for (let i = 0; i < 20; i++)
      live.record({
        type: 'rejected',
        kind: 'session',
        reason: 'bad-certificate',
        deviceId: `d${i}`,
        detail: `certificate CN=${'x'.repeat(46_000)} is not valid`,
        at: Date.now(),
      });
    for (let i = 0; i < 50; i++)
      live.recordPayload({
        deviceId: `big-${i}`,
        kid: Uint8Array.of(1),
        kidHex: '01',
        seq: 0,
        receivedAt: new Date(),
        payload: encode({ blob: 'y'.repeat(60_000) }),
      });
    const bytes = JSON.stringify(live.snapshot()).length;
    assert.ok(bytes < 64 * 1024, `snapshot of ${bytes} bytes (< 64 KiB expected)`);
  });

  test('an event-stream client that does not read is dropped', async () => {
    const live = new LiveState();
    for (let i = 0; i < 500; i++)
      live.recordPayload({
        deviceId: `dev-${i}`,
        kid: Uint8Array.of(1),
        kidHex: '01',
        seq: i,
        receivedAt: new Date(),
        payload: encode({ temp: 21.5, n: i }),
      });
    const page = dashboard({ state: live, intervalMs: 5 });
    const http = await startHttpEndpoint({
      port: 0,
      metrics: async () => '',
      metricsContentType: 'text/plain',
      health: () => ({ status: 'ok' }),
      routes: page.route,
    });
    const req = request(`${http.url}/api/events`, (res) => res.pause()); // never reads
    req.on('error', () => {});
    req.end();
    try {
      await until('the client is connected', () => page.clients === 1);
      await until('the slow client is dropped', () => page.clients === 0, 120_000);
    } finally {
      req.destroy();
      page.close();
      await http.close();
    }
  });
});

describe('admission rules', () => {
  test('per-device bucket, global bucket, bounded table', () => {
    let now = 0;
    const a = new Admission(
      { keyBurst: 3, keyPerSecond: 1, globalKeyBurst: 5, globalKeyPerSecond: 1, maxDevices: 2 },
      () => now,
    );
    const outcome = (id: string) => a.admitKeyMessage(id)?.reason ?? 'ok';
    assert.deepEqual(
      [1, 2, 3, 4].map(() => outcome('a')),
      ['ok', 'ok', 'ok', 'rate-limited'],
    );
    now += 1000; // one token back for a
    assert.equal(outcome('a'), 'ok');
    assert.equal(outcome('a'), 'rate-limited');
    // b has its own bucket, but the global one (5 + 1 refilled) is spent after two more
    assert.deepEqual(
      [1, 2, 3].map(() => outcome('b')),
      ['ok', 'ok', 'rate-limited'],
    );
    assert.match(a.admitKeyMessage('c')!.detail, /from all devices together/);
    assert.equal(a.size, 2, 'at most maxDevices ids tracked');
  });

  test('quotas count what was stored: sessions per hour and payload bytes per minute', () => {
    let now = 0;
    const a = new Admission({ sessionsPerHour: 2, payloadBytesPerMinute: 1000, keyBurst: 100 }, () => now);
    for (let i = 0; i < 10; i++) {
      assert.equal(a.admitKeyMessage('d'), undefined);
      assert.equal(a.admitSession('d'), undefined, 'refused forgeries cost no quota');
    }
    a.sessionStored('d');
    a.sessionStored('d');
    assert.equal(a.admitSession('d')?.reason, 'quota-exceeded');
    now += 1800_000; // half an hour: one session back
    assert.equal(a.admitSession('d'), undefined);
    assert.equal(a.admitData('d'), undefined);
    a.payloadStored('d', 1500);
    assert.equal(a.admitData('d')?.reason, 'quota-exceeded');
    assert.equal(a.admitData('other'), undefined, 'per device');
    now += 60_000;
    assert.equal(a.admitData('d'), undefined, 'refilled after a minute');
  });

  test('refusal lines cut their detail', () => {
    const log = captureLog('info');
    const refusals = new RefusalLog(log.logger);
    refusals.refused('warn', { kind: 'session', reason: 'bad-certificate', detail: 'x'.repeat(50_000) }, 'refused');
    const [line] = log.lines();
    assert.ok(String(line!.detail).length <= MAX_DETAIL_CHARS + 40, `detail of ${String(line!.detail).length}`);
    assert.ok(log.text().length < 1024);
  });

  test('the service refuses a compromised key past its session quota and its payload bytes', async () => {
    const log = captureLog('warn');
    const service = await startCloudService({
      brokerUrl: broker.url,
      dataDir: fixture.dataDir,
      store: `sqlite:${join(tmp, 'quota.db')}`,
      clientId: 'flood-quota',
      logger: log.logger,
      admission: { sessionsPerHour: 3, payloadBytesPerMinute: 2000 },
    });
    const pub = await connectPublisher(broker.url, 'flood-quota-pub');
    try {
      const device = await makeDevice(fixture, 'flood-greedy');
      for (let kid = 1; kid <= 5; kid++) await pub.key(device, device.keyMessage(kid));
      await until('five key messages handled', () => service.metrics.received.get({ kind: 'session' }) === 5);
      await until('idle', () => service.health().inFlight === 0);
      assert.equal((await service.store.stats()).sessions, 3);
      assert.equal(service.metrics.rejectedByReason()['quota-exceeded'], 2);
      const big = new Map<string, unknown>([['blob', 'z'.repeat(900)]]);
      for (let seq = 0; seq < 6; seq++) {
        await pub.data(device, device.data(3, seq, big));
        await until(`data ${seq} handled`, () => service.metrics.received.get({ kind: 'data' }) === seq + 1);
        await until('idle', () => service.health().inFlight === 0);
      }
      // ~910 bytes each: the third goes over the 2000 bytes, the fourth and later are refused.
      assert.equal(await service.store.countPayloads(), 3);
      assert.equal(service.metrics.rejectedByReason()['quota-exceeded'], 2 + 3);
    } finally {
      await pub.close();
      await service.stop();
    }
  });
});
