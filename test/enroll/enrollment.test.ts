/**
 * Zero-touch enrollment end to end through a real MQTT broker (aedes, in this process, on
 * 127.0.0.1): simulated devices (noble crypto, src/device/enrollment.ts over host-sim/mqtt.ts)
 * and the enrollment service (cloud/enroll/service.ts, and once `cose-flow ca serve` as a child
 * process) over a data directory made with the CA library.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { allowDevices, allowRekey, batchDeviceKey, createBatch, readRekeyAllowed } from '../../cloud/enroll/policy.js';
import { type EnrollmentService, type LogLine, startEnrollmentService } from '../../cloud/enroll/service.js';
import { createCa, generateKeyPair, issueCertificate } from '../../cloud/pki/authority.js';
import { cloudKeygen, cloudKeyLookup, loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { openDataDir } from '../../cloud/pki/data-dir.js';
import { readCertificates } from '../../cloud/pki/files.js';
import { readDeviceRecord } from '../../cloud/pki/records.js';
import { readRevocations, revocationChecker } from '../../cloud/pki/revocation.js';
import { initCa } from '../../cloud/pki/setup.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { connectDeviceMqtt, type HostMqttConnection } from '../../host-sim/mqtt.js';
import { hostTimers } from '../../host-sim/timers.js';
import { nodeCrypto } from '../../node/crypto.js';
import { equal } from '../../src/bytes.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import type { P256PrivateKey } from '../../src/crypto/provider.js';
import {
  backoffDelay,
  DEFAULT_RETRY,
  type EnrollDeviceOptions,
  type EnrollEvent,
  type Enrolled,
  EnrollmentError,
  enrollDevice,
} from '../../src/device/enrollment.js';
import { makeCsr } from '../../src/pki/csr.js';
import {
  type EnrollCredential,
  type EnrollResult,
  makeEnrollRequest,
  makeEnrollResult,
  parseEnrollRequest,
  parseEnrollResult,
} from '../../src/profile/enrollment.js';
import { makeKeyMessage, openKeyMessage } from '../../src/profile/key-message.js';
import { newSessionKey } from '../../src/profile/session.js';
import { topic } from '../../src/profile/topics.js';
import { startBroker, type TestBroker } from '../fixtures/broker.js';
import { until } from '../host-sim/harness.js';

const device = nobleCrypto();
const host = nodeCrypto();
const BATCH = 'line-1';
/** Short timings: a retry every few hundred milliseconds, the rate limit at 100 ms. */
const FAST = { responseTimeoutMs: 600, initialDelayMs: 100, multiplier: 2, maxDelayMs: 400, jitter: 0.5 };
const RATE_MS = 100;

let tmp: string;
let data: string;
let broker: TestBroker;
let service: EnrollmentService;
let caDer: Uint8Array;
const log: LogLine[] = [];
const connections: HostMqttConnection[] = [];
const rawClients: MqttClient[] = [];

async function connect(clientId: string): Promise<HostMqttConnection> {
  const connection = await connectDeviceMqtt(broker.url, { clientId: `${clientId}-${connections.length}` });
  connections.push(connection);
  return connection;
}

function credential(deviceId: string, batch = BATCH): EnrollCredential {
  return { batchId: batch, key: batchDeviceKey(host, data, BATCH, deviceId) };
}

/** A simulated device enrolling: its own MQTT connection, noble crypto, the CA pinned unless told otherwise. */
async function enroll(
  deviceId: string,
  options: Partial<EnrollDeviceOptions> & { key?: P256PrivateKey } = {},
): Promise<Enrolled & { key: P256PrivateKey; events: EnrollEvent[] }> {
  const key = options.key ?? device.p256Generate();
  const events: EnrollEvent[] = [];
  const result = await enrollDevice({
    mqtt: await connect(deviceId),
    crypto: device,
    key,
    deviceId,
    ca: caDer,
    now: () => Date.now(),
    timers: hostTimers,
    retry: { ...FAST, maxAttempts: 5 },
    onEvent: (e) => events.push(e),
    ...options,
  });
  return { ...result, key, events };
}

async function refusedWith(code: string, run: () => Promise<unknown>): Promise<EnrollmentError> {
  try {
    await run();
  } catch (e) {
    assert.ok(e instanceof EnrollmentError, `expected an EnrollmentError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected a refusal with ${code}`);
}

async function rawClient(): Promise<MqttClient> {
  const client = await mqtt.connectAsync(broker.url, { clientId: `raw-${rawClients.length}`, reconnectPeriod: 0 });
  rawClients.push(client);
  return client;
}

/** Publishes `payload` on `deviceId`'s enroll topic and waits for the result with `requestId` there. */
async function rawRequest(deviceId: string, payload: Uint8Array, requestId: Uint8Array): Promise<EnrollResult> {
  const client = await rawClient();
  const resultTopic = topic('enroll/result', deviceId);
  await client.subscribeAsync(resultTopic, { qos: 1 });
  const answer = new Promise<EnrollResult>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no result for ${deviceId} within 60 s`)), 60_000);
    client.on('message', (name, bytes) => {
      if (name !== resultTopic) return;
      const result = parseEnrollResult(new Uint8Array(bytes));
      if (!equal(result.requestId, requestId)) return;
      clearTimeout(timer);
      resolve(result);
    });
  });
  await client.publishAsync(topic('enroll', deviceId), Buffer.from(payload), { qos: 1 });
  return answer;
}

function request(deviceId: string, key: P256PrivateKey, cred?: EnrollCredential, csrDeviceId = deviceId) {
  const requestId = device.randomBytes(12);
  const bytes = makeEnrollRequest(device, {
    deviceId,
    csr: makeCsr(device, key, csrDeviceId),
    requestId,
    ...(cred === undefined ? {} : { credential: cred }),
  });
  return { bytes, requestId };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A service of a test's own, on its own prefix, with its own log lines. */
async function serviceOn(prefix: string, options: { minIntervalMs?: number } = {}) {
  const lines: LogLine[] = [];
  const service = await startEnrollmentService({
    dataDir: data,
    crypto: host,
    brokerUrl: broker.url,
    prefix,
    log: (l) => lines.push(l),
    ...options,
  });
  return { service, lines };
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cose-flow-enroll-'));
  data = join(tmp, 'data');
  caDer = (await initCa(host, data, { name: 'enrollment test CA' })).ca.der;
  await cloudKeygen(host, data);
  createBatch(host, data, BATCH);
  allowDevices(data, ['allowed-1', 'allowed-2', 'allowed-3', 'topic-b']);
  broker = await startBroker();
  service = await startEnrollmentService({
    dataDir: data,
    crypto: host,
    brokerUrl: broker.url,
    minIntervalMs: RATE_MS,
    log: (line) => log.push(line),
  });
});

after(async () => {
  for (const c of connections) await c.close(true).catch(() => {});
  for (const c of rawClients) await c.endAsync(true).catch(() => {});
  await service?.close();
  await broker?.close();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe('enrollment over MQTT', () => {
  test('with a batch credential: certificates that verify, and a first session the cloud opens', async () => {
    const enrolled = await enroll('batch-dev-1', { credential: credential('batch-dev-1') });
    assert.equal(enrolled.caTrust, 'pinned');
    assert.equal(enrolled.attempts, 1);
    assert.ok(equal(enrolled.caCertificate, caDer));
    const verify = deviceCertificateVerifier({
      crypto: host,
      trustAnchors: [caDer],
      isRevoked: revocationChecker(data),
    });
    const certified = verify(enrolled.deviceCertificate);
    assert.equal(certified.deviceId, 'batch-dev-1');
    assert.ok(equal(certified.publicKey, enrolled.key.publicKey));
    assert.deepEqual(enrolled.cloudCertificates, readCertificates(openDataDir(data).cloudCertificate));
    const record = readDeviceRecord(data, 'batch-dev-1')!;
    assert.deepEqual(record.enrollment, { mode: 'batch', batch: BATCH });

    // The device starts its first session with what it got; the cloud opens it with its keys.
    const session = newSessionKey(device, 1);
    const keyMessage = makeKeyMessage(device, {
      deviceId: 'batch-dev-1',
      deviceKey: enrolled.key,
      deviceCertificate: enrolled.deviceCertificate,
      cloudPublicKey: enrolled.cloudPublicKeys[0]!,
      session,
    });
    const opened = openKeyMessage(host, keyMessage, {
      cloudKey: cloudKeyLookup(loadCloudKeys(host, data)),
      verifyCertificate: verify,
      topicDeviceId: 'batch-dev-1',
    });
    assert.equal(opened.deviceId, 'batch-dev-1');
    assert.ok(equal(opened.session.key, session.key));
    const decision = log.find((l) => l.deviceId === 'batch-dev-1' && l.outcome === 'issued');
    assert.ok(decision, 'one JSON log line for the decision');
    assert.equal(decision.mode, 'batch');
    assert.equal(decision.serial, record.serial);
  });

  test('with the allow-list: trust on first use, or a pinned CA fingerprint', async () => {
    const tofu = await enroll('allowed-1', { ca: undefined });
    assert.equal(tofu.caTrust, 'first-use');
    assert.ok(equal(tofu.caCertificate, caDer));
    const pinned = await enroll('allowed-2', { ca: undefined, caFingerprint: host.sha256(caDer) });
    assert.equal(pinned.caTrust, 'fingerprint');
    assert.equal(readDeviceRecord(data, 'allowed-2')!.enrollment.mode, 'allow-list');
  });

  test('a device that starts before the service gets its certificate once the service is up', async () => {
    const prefix = 'late/v1';
    const started = enroll('early-1', {
      prefix,
      credential: credential('early-1'),
      retry: { ...FAST, responseTimeoutMs: 200, maxAttempts: 20 },
    });
    await sleep(700); // the device publishes into the void a few times
    const late = await startEnrollmentService({
      dataDir: data,
      crypto: host,
      brokerUrl: broker.url,
      prefix,
      minIntervalMs: RATE_MS,
    });
    try {
      const enrolled = await started;
      assert.ok(enrolled.attempts > 1, `retried (${enrolled.attempts} attempts)`);
      assert.ok(enrolled.events.some((e) => e.type === 'no-answer'));
      assert.ok(enrolled.events.some((e) => e.type === 'backoff'));
    } finally {
      await late.close();
    }
  });

  test('a duplicate request gets the same certificate (idempotent retries)', async () => {
    const key = device.p256Generate();
    const { bytes, requestId } = request('dup-1', key, credential('dup-1'));
    const first = await rawRequest('dup-1', bytes, requestId);
    assert.equal(first.status, 'issued', first.reason);
    await sleep(RATE_MS + 20);
    const second = await rawRequest('dup-1', bytes, requestId);
    assert.equal(second.status, 'issued', second.reason);
    assert.ok(equal(first.deviceCertificate!, second.deviceCertificate!), 'the same certificate bytes');
    // A new request (new request id) from the same device with the same key: still the same certificate.
    await sleep(RATE_MS + 20);
    const again = await enroll('dup-1', { key, credential: credential('dup-1') });
    assert.ok(equal(again.deviceCertificate, first.deviceCertificate!));
    assert.ok(log.some((l) => l.deviceId === 'dup-1' && l.outcome === 'existing'));
  });

  test('a second key for an enrolled device id: key-conflict, until an operator allows a re-key', async () => {
    const first = await enroll('rekey-1', { credential: credential('rekey-1') });
    const firstSerial = readDeviceRecord(data, 'rekey-1')!.serial;
    await sleep(RATE_MS + 20);
    const conflict = await refusedWith('key-conflict', () =>
      enroll('rekey-1', { credential: credential('rekey-1'), retry: { ...FAST, maxAttempts: 5 } }),
    );
    assert.equal(conflict.final, true);
    assert.equal(conflict.attempts, 1, 'a final refusal is not retried');
    assert.match(conflict.message, /enrolled with another key/);

    allowRekey(data, ['rekey-1']); // the operator: cose-flow ca allow --rekey rekey-1
    await sleep(RATE_MS + 20);
    const second = await enroll('rekey-1', { credential: credential('rekey-1') });
    assert.ok(!equal(second.key.publicKey, first.key.publicKey));
    assert.ok(!equal(second.deviceCertificate, first.deviceCertificate));
    assert.deepEqual(readRekeyAllowed(data), [], 'the permission is used up');
    const superseded = readRevocations(data).find((e) => e.serial === firstSerial);
    assert.equal(superseded?.reason, 'superseded', 'the previous certificate is revoked');
    assert.ok(log.some((l) => l.deviceId === 'rekey-1' && l.outcome === 'rekeyed'));

    await sleep(RATE_MS + 20);
    await refusedWith('key-conflict', () => enroll('rekey-1', { credential: credential('rekey-1') }));
  });

  test('refusals: no credential and not allow-listed, a wrong credential, an unknown batch', async () => {
    const notAllowed = await refusedWith('not-allowed', () => enroll('stranger-1'));
    assert.equal(notAllowed.final, true);
    // The per-device key of another device.
    await refusedWith('bad-credential', () =>
      enroll('batch-dev-2', { credential: { batchId: BATCH, key: credential('batch-dev-3').key } }),
    );
    await refusedWith('bad-credential', () =>
      enroll('batch-dev-4', { credential: { batchId: 'no-such-batch', key: device.randomBytes(32) } }),
    );
    assert.equal(readDeviceRecord(data, 'batch-dev-2'), undefined, 'nothing was issued');
  });

  test('a request on another device topic is refused', async () => {
    // A credentialed request for device A replayed on device B's topic: the MAC binds A's id.
    const key = device.p256Generate();
    const a = request('topic-a', key, credential('topic-a'));
    const replayed = await rawRequest('topic-b', a.bytes, a.requestId);
    assert.equal(replayed.status, 'refused');
    assert.match(replayed.reason!, /^bad-credential: /);
    // An allow-listed topic, a CSR for another device id.
    const b = request('topic-b', key, undefined, 'topic-a');
    await sleep(RATE_MS + 20);
    const mismatch = await rawRequest('topic-b', b.bytes, b.requestId);
    assert.equal(mismatch.status, 'refused');
    assert.match(mismatch.reason!, /^device-mismatch: /);
    assert.equal(readDeviceRecord(data, 'topic-a'), undefined);
    assert.equal(readDeviceRecord(data, 'topic-b'), undefined);
  });

  test('a forged result (another CA) is ignored by a device that pinned its CA', async () => {
    // A forger on the broker answers the request with a certificate for the device's key from a CA
    // of its own. The real service (on this prefix) starts only after the forgery was sent.
    const prefix = 'forge/v1';
    const key = device.p256Generate();
    const forgerCa = await createCa({ name: 'forger CA' });
    const forgedDevice = await issueCertificate(forgerCa, {
      commonName: 'forged-1',
      publicKey: key.publicKey,
      keyUsage: 'device',
    });
    const forgedCloud = await issueCertificate(forgerCa, {
      commonName: 'forger cloud',
      publicKey: generateKeyPair().publicKey,
      keyUsage: 'cloud',
    });
    const forger = await rawClient();
    let forged!: () => void;
    const forgedSent = new Promise<void>((resolve) => {
      forged = resolve;
    });
    await forger.subscribeAsync(topic('enroll', 'forged-1', prefix), { qos: 1 });
    forger.on('message', async (_name, bytes) => {
      const result = makeEnrollResult({
        status: 'issued',
        requestId: parseEnrollRequest(new Uint8Array(bytes)).requestId,
        deviceCertificate: forgedDevice.der,
        caCertificate: forgerCa.der,
        cloudCertificates: [forgedCloud.der],
      });
      await forger.publishAsync(topic('enroll/result', 'forged-1', prefix), Buffer.from(result), { qos: 1 });
      forged();
    });
    const started = enroll('forged-1', { key, prefix, credential: credential('forged-1') });
    await forgedSent;
    await forger.unsubscribeAsync(topic('enroll', 'forged-1', prefix));
    const real = await startEnrollmentService({ dataDir: data, crypto: host, brokerUrl: broker.url, prefix });
    try {
      const enrolled = await started;
      assert.ok(enrolled.events.some((e) => e.type === 'invalid-result' && /not the pinned CA/.test(e.reason)));
      assert.ok(enrolled.attempts > 1);
      assert.ok(equal(enrolled.caCertificate, caDer), 'the real CA');
      deviceCertificateVerifier({ crypto: host, trustAnchors: [caDer] })(enrolled.deviceCertificate);
    } finally {
      await real.close();
    }
  });

  test('cloud key rotation: sessions sealed to the old key still open, new enrollments get the new key', async () => {
    const before = await enroll('rotate-1', { credential: credential('rotate-1') });
    const rotated = await cloudKeygen(host, data, { rotate: true });
    const after = await enroll('rotate-2', { credential: credential('rotate-2') });
    assert.ok(!equal(after.cloudPublicKeys[0]!, before.cloudPublicKeys[0]!), 'the new cloud key');
    const keys = loadCloudKeys(host, data);
    assert.equal(keys.get(rotated.kidHex)?.current, true);
    assert.equal(keys.get(rotated.retiredKidHex!)?.current, false);
    const verify = deviceCertificateVerifier({ crypto: host, trustAnchors: [caDer] });
    for (const [deviceId, d] of [
      ['rotate-1', before],
      ['rotate-2', after],
    ] as const) {
      const session = newSessionKey(device, 1);
      const message = makeKeyMessage(device, {
        deviceId,
        deviceKey: d.key,
        deviceCertificate: d.deviceCertificate,
        cloudPublicKey: d.cloudPublicKeys[0]!,
        session,
      });
      const opened = openKeyMessage(host, message, { cloudKey: cloudKeyLookup(keys), verifyCertificate: verify });
      assert.ok(equal(opened.session.key, session.key));
    }
  });

  test('garbage is ignored, floods are rate-limited, and the service keeps serving', async () => {
    const client = await rawClient();
    const garbage: [string, Uint8Array][] = [
      [topic('enroll', 'junk-1'), new Uint8Array(0)],
      [topic('enroll', 'junk-2'), device.randomBytes(100)],
      [topic('enroll', 'junk-3'), Uint8Array.of(0xd1, 0x84, 0x40, 0xa0, 0xf6, 0x40)],
      [topic('enroll', 'junk-4'), new Uint8Array(20_000)],
      ['cose-flow/v1/junk-5/enroll/extra', Uint8Array.of(1)],
    ];
    for (const [name, payload] of garbage) await client.publishAsync(name, Buffer.from(payload), { qos: 1 });
    // Wait for the decisions themselves (a loaded machine delivers later, not never).
    const junk = ['junk-1', 'junk-2', 'junk-3', 'junk-4'];
    await until(() => junk.every((id) => log.some((l) => l.deviceId === id)), 'the garbage decided');
    for (const id of junk) {
      const line = log.find((l) => l.deviceId === id);
      assert.equal(line?.outcome, 'ignored', `${id}: ${JSON.stringify(line)}`);
      assert.equal(line?.code, 'bad-request');
    }
    // A second request from one device id within the limit's interval is dropped and logged. Its own
    // service, whose interval (60 s) no loaded machine outlasts, and the second request sent only once
    // the first is decided: sent at once, it could find the first still queued and take its place
    // instead (the queue keeps a device's latest request; test/enroll/queue.test.ts covers that).
    const prefix = 'rate/v1';
    const { service: limited, lines } = await serviceOn(prefix, { minIntervalMs: 60_000 });
    try {
      const key = device.p256Generate();
      const of = (code?: string) => lines.filter((l) => l.deviceId === 'allowed-3' && l.code === code);
      await client.publishAsync(topic('enroll', 'allowed-3', prefix), Buffer.from(request('allowed-3', key).bytes), {
        qos: 1,
      });
      await until(() => lines.some((l) => l.deviceId === 'allowed-3'), 'the first request of allowed-3 decided');
      assert.equal(of('rate-limited').length, 0, 'the first request is not rate-limited');
      await client.publishAsync(topic('enroll', 'allowed-3', prefix), Buffer.from(request('allowed-3', key).bytes), {
        qos: 1,
      });
      await until(() => of('rate-limited').length > 0, 'the second request of allowed-3 rate-limited');
      assert.equal(lines.filter((l) => l.deviceId === 'allowed-3').length, 2, 'one decision, one drop');
    } finally {
      await limited.close();
    }
    // Still serving.
    const enrolled = await enroll('batch-dev-5', { credential: credential('batch-dev-5') });
    assert.equal(enrolled.attempts, 1);
  });

  test('a device enrolls despite ~100 garbage messages a second on its enroll topic', async () => {
    // Its own prefix and service, with the default per-device limit (one request a second): before
    // the MAC was checked first, the garbage used up that limit and the device's requests were dropped.
    const prefix = 'flood/v1';
    const { service: own, lines } = await serviceOn(prefix);
    const attacker = await rawClient();
    const target = 'flood-dev-1';
    const name = topic('enroll', target, prefix);
    const forged = request(target, device.p256Generate(), { batchId: BATCH, key: device.randomBytes(32) }).bytes;
    const garbage = [device.randomBytes(64), forged, new Uint8Array(0)];
    let stop = false;
    let sent = 0;
    const flood = (async () => {
      while (!stop) {
        await attacker.publishAsync(name, Buffer.from(garbage[sent++ % garbage.length]!), { qos: 0 });
        await sleep(10); // ~100 a second
      }
    })();
    try {
      while (sent < 30) await sleep(10); // the flood is on before the device asks
      const enrolled = await enroll(target, {
        prefix,
        credential: credential(target),
        retry: { ...FAST, maxAttempts: 5 },
      });
      assert.equal(enrolled.deviceCertificate.length > 0, true);
      assert.ok(sent >= 30, `the flood was on (${sent} sent)`);
    } finally {
      stop = true;
      await flood;
      await own.close(); // every decision logged
    }
    assert.ok(
      lines.some((l) => l.deviceId === target && l.outcome === 'issued'),
      'issued while the flood went on',
    );
    // The garbage was refused without taking the device's turn, and its log lines are bounded.
    const refusedForged = lines.filter((l) => l.deviceId === target && l.code === 'bad-credential').length;
    assert.ok(refusedForged >= 1, 'forged credentials are refused');
    assert.ok(
      lines.filter((l) => l.deviceId === target).length < sent,
      `fewer log lines (${lines.length}) than garbage messages (${sent})`,
    );
  });
});

describe('device retry policy', () => {
  test('exponential backoff, capped, with jitter taken off', () => {
    const policy = { ...DEFAULT_RETRY, initialDelayMs: 1000, multiplier: 2, maxDelayMs: 5000, jitter: 0.5 };
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n, () => 0)),
      [1000, 2000, 4000, 5000, 5000],
    );
    assert.equal(
      backoffDelay(policy, 2, () => 0.999999),
      1000,
    );
    assert.equal(
      backoffDelay({ ...policy, jitter: 0 }, 3, () => 0.7),
      4000,
    );
  });

  test('bad retry settings are refused before anything is sent', async () => {
    const mqttStub = {
      publish: async () => assert.fail('nothing may be published'),
      subscribe: async () => {},
      onMessage: () => () => {},
    };
    const base = { mqtt: mqttStub, crypto: device, key: device.p256Generate(), deviceId: 'd-1', timers: hostTimers };
    await assert.rejects(enrollDevice({ ...base, retry: { maxAttempts: 0 } }), RangeError);
    await assert.rejects(enrollDevice({ ...base, retry: { jitter: 2 } }), RangeError);
    await assert.rejects(enrollDevice({ ...base, caFingerprint: new Uint8Array(20) }), RangeError);
    await assert.rejects(enrollDevice({ ...base, deviceId: 'a/b' }), RangeError);
  });

  test('publish failures are retried, then reported (not final)', async () => {
    let publishes = 0;
    const offline = {
      publish: async () => {
        publishes++;
        throw new Error('offline');
      },
      subscribe: async () => {},
      onMessage: () => () => {},
    };
    const error = await refusedWith('publish-failed', () =>
      enrollDevice({
        mqtt: offline,
        crypto: device,
        key: device.p256Generate(),
        deviceId: 'd-2',
        timers: hostTimers,
        retry: { ...FAST, initialDelayMs: 1, maxDelayMs: 4, maxAttempts: 3 },
      }),
    );
    assert.equal(error.final, false);
    assert.equal(error.attempts, 3);
    assert.equal(publishes, 3);
  });
});

describe('cose-flow ca serve', () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  let child: ChildProcess | undefined;

  after(() => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
  });

  test('serves enrollments, logs one JSON line per decision, stops on SIGTERM', async () => {
    const prefix = 'cli/v1';
    child = spawn(
      process.execPath,
      [
        join(root, 'bin', 'cose-flow.js'),
        'ca',
        'serve',
        '--broker',
        broker.url,
        '--prefix',
        prefix,
        '--data-dir',
        data,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let onOutput = () => {};
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      onOutput();
    });
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
    // Until it says it is listening: a cold start on a loaded machine takes seconds, so the bound
    // is generous and an early exit fails at once.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ca serve not listening after 60 s\n${stderr}`)), 60_000);
      onOutput = () => {
        if (!stdout.includes('"event":"listening"')) return;
        clearTimeout(timer);
        resolve();
      };
      onOutput();
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`ca serve exited (${code}) before listening\n${stdout}${stderr}`));
      });
    });
    assert.match(stdout, /"event":"listening"/, `the service started\n${stderr}`);

    const enrolled = await enroll('cli-dev-1', { prefix, credential: credential('cli-dev-1') });
    assert.equal(enrolled.caTrust, 'pinned');
    await refusedWith('not-allowed', () => enroll('cli-stranger', { prefix }));

    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LogLine);
    assert.deepEqual(
      lines.map((l) => [l.event, l.deviceId, l.outcome, l.code]),
      [
        ['listening', undefined, undefined, undefined],
        ['enroll', 'cli-dev-1', 'issued', undefined],
        ['enroll', 'cli-stranger', 'refused', 'not-allowed'],
        ['stopped', undefined, undefined, undefined],
      ],
    );
    assert.deepEqual(readDeviceRecord(data, 'cli-dev-1')!.enrollment, { mode: 'batch', batch: BATCH });
  });
});
