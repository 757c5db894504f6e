/**
 * The device application (src/device/app.ts) over a scripted MQTT link and a manual clock: the
 * test decides when a connection attempt succeeds, when a QoS 2 publish completes and which
 * control messages arrive, and moves time itself — so every case runs in milliseconds.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type CertificateAuthority, createCa, generateKeyPair, issueCertificate } from '../../cloud/pki/authority.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { seededHuk } from '../../host-sim/huk.js';
import { collectingLogger } from '../../host-sim/log.js';
import { simulatedSensor } from '../../host-sim/sensor.js';
import { MemoryStore } from '../../host-sim/store.js';
import { nodeCrypto } from '../../node/crypto.js';
import { equal, utf8Encode } from '../../src/bytes.js';
import type { P256PrivateKey } from '../../src/crypto/provider.js';
import { DeviceApp, type DeviceEvent } from '../../src/device/app.js';
import { type DeviceConfig, deviceConfig } from '../../src/device/config.js';
import { CredentialStore } from '../../src/device/credentials.js';
import type { Clock } from '../../src/platform/clock.js';
import type { Platform } from '../../src/platform/index.js';
import type { LinkDown, MessageHandler, MqttLink, QoS } from '../../src/platform/mqtt.js';
import type { Timers } from '../../src/platform/timers.js';
import { makeControlMessage } from '../../src/profile/control.js';
import { encodeKid } from '../../src/profile/counter.js';
import { makeEnrollResult, parseEnrollRequest } from '../../src/profile/enrollment.js';
import { openKeyMessage } from '../../src/profile/key-message.js';
import { cloudKeyId } from '../../src/profile/session.js';
import { topic } from '../../src/profile/topics.js';

const host = nodeCrypto();
const DEVICE = 'app-test-1';
const HOUR = 3600_000;

/** Lets every promise chain that can run, run (microtasks drain before setImmediate). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A manual clock and timers: nothing happens until `advance`. */
class ManualTime {
  t = 0;
  readonly wall = Date.now();
  #seq = 0;
  readonly #queue = new Map<number, { at: number; fn: () => void }>();
  readonly clock: Clock = { now: () => this.wall + this.t, uptimeMs: () => this.t };
  readonly timers: Timers = {
    setTimeout: (fn, ms) => {
      const id = ++this.#seq;
      this.#queue.set(id, { at: this.t + ms, fn });
      return id;
    },
    clearTimeout: (handle) => {
      this.#queue.delete(handle as number);
    },
  };

  get pending(): number {
    return this.#queue.size;
  }

  /** Runs the timers due within `ms`, in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#queue)
        if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.#queue.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
    await settle();
  }
}

interface Sent {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  done: boolean;
  resolve(): void;
  reject(e: Error): void;
}

/** An `MqttLink` the test scripts: connection attempts wait for `accept()`, publishes for `complete()` unless auto-acked. */
class ScriptedLink implements MqttLink {
  connected = false;
  readonly sent: Sent[] = [];
  readonly subscribed: string[] = [];
  readonly attempts: { resolve(): void; reject(e: Error): void }[] = [];
  /** Which publishes complete at once (default: all but QoS 2). */
  autoAck: (topic: string, qos: QoS) => boolean = (_topic, qos) => qos !== 2;
  readonly #up = new Set<() => void>();
  readonly #down = new Set<(down: LinkDown) => void>();
  readonly #messages = new Set<MessageHandler>();

  connect(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => this.attempts.push({ resolve, reject }));
  }

  /** The pending connection attempt succeeds. */
  accept(): void {
    const attempt = this.attempts.shift();
    assert.ok(attempt !== undefined, 'no connection attempt pending');
    this.connected = true;
    for (const up of this.#up) up();
    attempt.resolve();
  }

  /** The connection is lost: every publish not yet complete rejects, then the down handlers run. */
  drop(reason = 'lost'): void {
    this.connected = false;
    for (const s of this.sent.filter((s) => !s.done)) {
      s.done = true;
      s.reject(new Error(reason));
    }
    for (const down of this.#down) down({ reason });
  }

  complete(sent: Sent): void {
    sent.done = true;
    sent.resolve();
  }

  on(name: string): Sent[] {
    return this.sent.filter((s) => s.topic === name);
  }

  deliver(name: string, payload: Uint8Array): void {
    for (const handler of this.#messages) handler(name, payload);
  }

  publish(name: string, payload: Uint8Array, options: { qos: QoS }): Promise<void> {
    if (!this.connected) return Promise.reject(new Error('offline'));
    return new Promise((resolve, reject) => {
      const sent: Sent = { topic: name, payload: payload.slice(), qos: options.qos, done: false, resolve, reject };
      this.sent.push(sent);
      if (this.autoAck(name, options.qos)) this.complete(sent);
    });
  }

  subscribe(name: string): Promise<void> {
    if (!this.connected) return Promise.reject(new Error('offline'));
    this.subscribed.push(name);
    return Promise.resolve();
  }

  onMessage(handler: MessageHandler): () => void {
    this.#messages.add(handler);
    return () => this.#messages.delete(handler);
  }

  onUp(handler: () => void): () => void {
    this.#up.add(handler);
    return () => this.#up.delete(handler);
  }

  onDown(handler: (down: LinkDown) => void): () => void {
    this.#down.add(handler);
    return () => this.#down.delete(handler);
  }

  async close(): Promise<void> {
    this.connected = false;
    for (const s of this.sent.filter((s) => !s.done)) {
      s.done = true;
      s.reject(new Error('closed'));
    }
  }
}

interface Cloud {
  certificate: Uint8Array;
  key: P256PrivateKey;
  publicKey: Uint8Array;
}

let ca: CertificateAuthority;
let cloud: Cloud;
const huk = seededHuk(host, utf8Encode('app tests'), DEVICE);
let deviceCertificate: Uint8Array;

async function cloudAt(notBefore: number): Promise<Cloud> {
  const pair = generateKeyPair();
  const issued = await issueCertificate(ca, {
    commonName: 'app test cloud',
    publicKey: pair.publicKey,
    keyUsage: 'cloud',
    notBefore: new Date(notBefore),
    notAfter: new Date(notBefore + 24 * HOUR),
  });
  return { certificate: issued.der, key: host.p256Import(pair.privateScalar), publicKey: pair.publicKey };
}

before(async () => {
  ca = await createCa({ name: 'app tests CA' });
  cloud = await cloudAt(Math.floor(Date.now() / 1000) * 1000 - 2 * HOUR);
  const publicKey = huk.identity().key.publicKey;
  deviceCertificate = (await issueCertificate(ca, { commonName: DEVICE, publicKey, keyUsage: 'device' })).der;
});

const CONFIG: Partial<DeviceConfig> = { deviceId: DEVICE, intervalMs: 1000, keyAckTimeoutMs: 5000 };

function device(config: Partial<DeviceConfig> = {}, provision = true) {
  const time = new ManualTime();
  const mqtt = new ScriptedLink();
  const store = new MemoryStore();
  const log = collectingLogger();
  if (provision) {
    new CredentialStore(store).save({ deviceCertificate, caCertificate: ca.der, cloudCertificate: cloud.certificate });
  }
  const platform: Platform = {
    clock: time.clock,
    timers: time.timers,
    store,
    rng: host,
    huk,
    sensor: simulatedSensor(time.clock, () => 0.5),
    mqtt,
    log,
    crypto: host,
  };
  const events: DeviceEvent[] = [];
  const app = new DeviceApp(platform, deviceConfig({ ...CONFIG, ...config }), { onEvent: (e) => events.push(e) });
  const logged = (event: string) => log.entries.filter((e) => e.event === event);
  const control = (
    request: 'rekey' | 'cloud-certificate',
    by: Cloud,
    extra: { kid?: number; certificate?: Uint8Array } = {},
  ) =>
    mqtt.deliver(
      topic('control', DEVICE),
      makeControlMessage(host, by.key, {
        deviceId: DEVICE,
        request,
        kid: encodeKid(extra.kid ?? app.kid!),
        issuedAt: Math.floor(Date.now() / 1000),
        ...(extra.certificate === undefined ? {} : { cloudCertificate: extra.certificate }),
      }),
    );
  /** The last control event. */
  const lastControl = () => events.filter((e) => e.type === 'control').at(-1);
  return { app, time, mqtt, store, events, logged, control, lastControl };
}

/** Started, connected, and the first key message acknowledged. */
async function sending(config: Partial<DeviceConfig> = {}) {
  const d = device(config);
  await d.app.start();
  d.mqtt.accept();
  await settle();
  d.mqtt.complete(d.mqtt.on(topic('session', DEVICE))[0]!);
  await settle();
  assert.equal(d.app.state, 'sending');
  return d;
}

const SESSION = topic('session', DEVICE);
const DATA = topic('data', DEVICE);

describe('device application (scripted link, manual clock)', () => {
  test('key message: resent with the same bytes after a timeout and after a reconnect', async () => {
    const d = device();
    await d.app.start();
    assert.equal(d.app.state, 'session');
    assert.equal(d.mqtt.on(SESSION).length, 0, 'nothing is published before the link is up');
    d.mqtt.accept();
    await settle();
    const first = d.mqtt.on(SESSION);
    assert.equal(first.length, 1);
    assert.equal(first[0]!.qos, 2);
    await d.time.advance(4999);
    assert.equal(d.mqtt.on(SESSION).length, 1, 'no resend before keyAckTimeoutMs');
    await d.time.advance(1);
    assert.equal(d.mqtt.on(SESSION).length, 2);
    assert.equal(d.logged('key-message-timeout').length, 1);
    d.mqtt.drop('broker gone');
    await settle();
    assert.equal(d.logged('reconnect').length, 1);
    await d.time.advance(1000); // reconnect.initialMs: at most this, jitter taken off
    d.mqtt.accept();
    await settle();
    const all = d.mqtt.on(SESSION);
    assert.equal(all.length, 3);
    for (const s of all) assert.ok(equal(s.payload, first[0]!.payload), 'the same key message bytes each time');
    d.mqtt.complete(all[2]!);
    await settle();
    assert.equal(d.app.state, 'sending');
    assert.deepEqual(
      d.events.filter((e) => e.type === 'key-acked'),
      [{ type: 'key-acked', kid: d.app.kid }],
    );
    assert.equal(d.app.stats.keyMessages, 3);
    await d.app.stop();
    assert.equal(d.time.pending, 0, 'stop() leaves no timer behind');
  });

  test('no data is published before the key message QoS 2 flow completes', async () => {
    const d = device();
    await d.app.start();
    d.mqtt.accept();
    await d.time.advance(3000);
    assert.equal(d.events.filter((e) => e.type === 'sealed').length, 3, 'readings are sealed and queued');
    assert.equal(d.mqtt.on(DATA).length, 0);
    assert.equal(d.app.queued, 3);
    const key = d.mqtt.on(SESSION)[0]!;
    d.mqtt.complete(key);
    await settle();
    assert.equal(d.mqtt.on(DATA).length, 3);
    assert.ok(d.mqtt.sent.indexOf(key) < d.mqtt.sent.indexOf(d.mqtt.on(DATA)[0]!));
    assert.equal(d.app.queued, 0);
    assert.equal(d.app.stats.acknowledged, 3);
    await d.app.stop();
  });

  test('cloud re-keys are rate limited (rekey.minIntervalMs), before any signature check', async () => {
    const d = await sending({ rekey: { minIntervalMs: 10_000 } as DeviceConfig['rekey'] });
    const kid = d.app.kid!;
    d.control('rekey', cloud);
    assert.deepEqual(d.lastControl(), { type: 'control', request: 'rekey', accepted: true, reason: 'ok' });
    assert.equal(d.app.kid, kid + 1);
    assert.equal(d.app.state, 'session');
    const stranger = await cloudAt(Date.now() - HOUR);
    d.control('rekey', stranger); // not even signed by the cloud: refused before the signature is looked at
    assert.deepEqual(d.lastControl(), { type: 'control', request: 'rekey', accepted: false, reason: 'rate-limited' });
    await d.time.advance(9999);
    d.control('rekey', cloud);
    assert.equal(d.lastControl()?.type === 'control' && d.lastControl()?.reason, 'rate-limited');
    await d.time.advance(1);
    d.control('rekey', cloud);
    assert.deepEqual(d.lastControl(), { type: 'control', request: 'rekey', accepted: true, reason: 'ok' });
    assert.equal(d.app.kid, kid + 2);
    d.control('rekey', cloud, { kid });
    assert.equal(d.lastControl()?.type === 'control' && d.lastControl()?.reason, 'stale-kid');
    assert.equal(d.app.stats.rekeys, 2);
    assert.equal(d.app.stats.controlIgnored, 3);
    await d.app.stop();
  });

  test('cloud certificate rotation: announced by the key in use, used from the next session on, no rollback', async () => {
    const d = await sending();
    const next = await cloudAt(Math.floor(Date.now() / 1000) * 1000 - HOUR);
    const stranger = await cloudAt(Math.floor(Date.now() / 1000) * 1000 - HOUR / 2);
    d.control('cloud-certificate', stranger, { certificate: stranger.certificate });
    const forged = d.lastControl();
    assert.ok(forged?.type === 'control' && !forged.accepted && forged.reason.startsWith('bad-signature'));
    d.control('cloud-certificate', cloud, { certificate: next.certificate });
    assert.deepEqual(d.lastControl(), {
      type: 'control',
      request: 'cloud-certificate',
      accepted: true,
      reason: 'used from the next session on',
    });
    assert.ok(equal(new CredentialStore(d.store).load()!.cloudCertificate, next.certificate), 'stored');
    d.control('cloud-certificate', cloud, { certificate: next.certificate });
    assert.equal(d.lastControl()?.type === 'control' && d.lastControl()?.reason, 'already announced');

    // The next session (asked for with the new key, which the device already accepts) is sealed to the new key.
    d.control('rekey', next);
    assert.equal(d.lastControl()?.type === 'control' && d.lastControl()?.accepted, true);
    await settle();
    const keyMessage = d.mqtt.on(SESSION).at(-1)!.payload;
    const opened = openKeyMessage(host, keyMessage, {
      cloudKey: (kid) => (equal(kid, cloudKeyId(host, next.publicKey)) ? next.key : undefined),
      verifyCertificate: deviceCertificateVerifier({ crypto: host, trustAnchors: [ca.der], cacheSize: 0 }),
      topicDeviceId: DEVICE,
    });
    assert.equal(opened.session.kid.length > 0, true);

    // The old certificate cannot come back, even announced by the key now in use.
    d.control('cloud-certificate', next, { certificate: cloud.certificate });
    const rollback = d.lastControl();
    assert.ok(rollback?.type === 'control' && !rollback.accepted && /rollback/.test(rollback.reason));
    d.control('cloud-certificate', next, { certificate: next.certificate });
    assert.equal(d.lastControl()?.type === 'control' && d.lastControl()?.reason, 'already in use');
    await d.app.stop();
  });

  test('drain: no more readings, true once the queue is acknowledged, false on timeout', async () => {
    const d = await sending();
    d.mqtt.autoAck = () => false;
    await d.time.advance(3000);
    assert.equal(d.mqtt.on(DATA).length, 3);
    const drained = d.app.drain(10_000);
    await d.time.advance(5000);
    assert.equal(d.events.filter((e) => e.type === 'sealed').length, 3, 'no readings while draining');
    for (const s of d.mqtt.on(DATA)) d.mqtt.complete(s);
    await d.time.advance(20);
    assert.equal(await drained, true);
    assert.equal(d.app.queued, 0);
    await d.app.stop();

    const e = await sending();
    e.mqtt.autoAck = () => false;
    await e.time.advance(1000);
    const timedOut = e.app.drain(100);
    await e.time.advance(100);
    assert.equal(await timedOut, false);
    assert.equal(e.app.queued, 1);
    await e.app.stop();
  });

  test('an enrollment result that does not verify is logged as an error and counted (a replaced CA)', async () => {
    // The device pins the CA; the answer comes from another one (as after `ca init --force` with a
    // cloud certificate of the old CA): an error an operator sees, not a debug line.
    const d = device({ enroll: { ca: ca.der } }, false);
    const started = d.app.start();
    d.mqtt.accept();
    await settle();
    const [request] = d.mqtt.on(topic('enroll', DEVICE));
    assert.ok(request !== undefined, 'the enrollment request went out');
    const other = await createCa({ name: 'another CA' });
    const publicKey = huk.identity().key.publicKey;
    const otherDevice = await issueCertificate(other, { commonName: DEVICE, publicKey, keyUsage: 'device' });
    const otherCloud = await issueCertificate(other, {
      commonName: 'cloud',
      publicKey: generateKeyPair().publicKey,
      keyUsage: 'cloud',
    });
    d.mqtt.deliver(
      topic('enroll/result', DEVICE),
      makeEnrollResult({
        status: 'issued',
        requestId: parseEnrollRequest(request.payload).requestId,
        deviceCertificate: otherDevice.der,
        caCertificate: other.der,
        cloudCertificates: [otherCloud.der],
      }),
    );
    await settle();
    const lines = d.logged('enroll-result-invalid');
    assert.equal(lines.length, 1, JSON.stringify(d.logged('enroll-result-invalid')));
    assert.equal(lines[0]!.level, 'error');
    assert.ok(d.app.stats.errors >= 1, 'counted as an error');
    assert.equal(d.app.state, 'enrolling', 'still enrolling: nothing from another CA is trusted');
    await d.app.stop();
    await started;
  });

  test('stop during enrollment ends it: start() resolves, no session, no timer left', async () => {
    for (const linkUp of [false, true]) {
      const d = device({}, false);
      const started = d.app.start();
      await settle();
      assert.equal(d.app.state, 'enrolling');
      if (linkUp) {
        d.mqtt.accept();
        await settle();
        assert.equal(d.mqtt.on(topic('enroll', DEVICE)).length, 1, 'the enrollment request went out');
      }
      await d.app.stop();
      await started;
      assert.equal(d.app.state, 'stopped');
      assert.equal(d.time.pending, 0);
      assert.equal(d.events.filter((e) => e.type === 'session').length, 0);
      assert.deepEqual(
        d.events.filter((e) => e.type === 'state').map((e) => e.type === 'state' && e.state),
        ['enrolling', 'stopped'],
      );
      await d.time.advance(60_000);
      assert.equal(d.mqtt.attempts.length, linkUp ? 0 : 1, 'no new connection attempts after stop');
    }
  });
});
