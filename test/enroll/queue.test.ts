/**
 * The enrollment service's queue and batches (cloud/enroll/service.ts, cloud/pki/device-issuer.ts
 * `issueDeviceCertificates`): one waiting request per device (the latest), a prompt `close()`
 * that abandons the queue, and records on disk before any result is published. The service is
 * held still by taking the data directory's lock (DIR/.lock) while requests arrive.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { allowDevices } from '../../cloud/enroll/policy.js';
import { type LogLine, startEnrollmentService } from '../../cloud/enroll/service.js';
import { parseCertificate } from '../../cloud/pki/certificate.js';
import { cloudKeygen } from '../../cloud/pki/cloud-keys.js';
import { loadCaFromDir } from '../../cloud/pki/data-dir.js';
import { issueDeviceCertificates } from '../../cloud/pki/device-issuer.js';
import { readDeviceRecord } from '../../cloud/pki/records.js';
import { initCa } from '../../cloud/pki/setup.js';
import { nodeCrypto } from '../../node/crypto.js';
import { toHex } from '../../src/bytes.js';
import { makeCsr } from '../../src/pki/csr.js';
import { makeEnrollRequest, parseEnrollResult } from '../../src/profile/enrollment.js';
import { topic } from '../../src/profile/topics.js';
import { startBroker, type TestBroker } from '../fixtures/broker.js';

const host = nodeCrypto();
let tmp: string;
let data: string;
let broker: TestBroker;
let client: MqttClient;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** An allow-list request (bare map) of a fresh key for `deviceId`, with its request id. */
function request(deviceId: string, key = host.p256Generate()) {
  const requestId = host.randomBytes(16);
  const bytes = makeEnrollRequest(host, { deviceId, csr: makeCsr(host, key, deviceId), requestId });
  return { bytes, requestId: toHex(requestId) };
}

/**
 * Whether the broker has had the service's PUBACK of the next request (so the service's message
 * handler ran: MQTT.js acknowledges after handling). Only the service subscribes to enroll topics;
 * the watcher's PUBACKs (of results) are not counted. Call before publishing.
 */
function handledByService(): () => boolean {
  let seen = false;
  const on = (_packet: unknown, client: { id: string } | undefined) => {
    if (client !== undefined && client.id !== 'queue-watch') {
      seen = true;
      broker.aedes.off('ack', on);
    }
  };
  broker.aedes.on('ack', on);
  return () => seen;
}

const lockPath = () => join(data, '.lock');
const hold = () => mkdirSync(lockPath());
const release = () => rmSync(lockPath(), { recursive: true, force: true });

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cose-flow-enroll-queue-'));
  data = join(tmp, 'data');
  await initCa(host, data, { name: 'queue test CA' });
  await cloudKeygen(host, data);
  broker = await startBroker();
  client = await mqtt.connectAsync(broker.url, { clientId: 'queue-test', reconnectPeriod: 0 });
});

after(async () => {
  release();
  await client?.endAsync(true);
  await broker?.close();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe('enrollment service queue', () => {
  test('only the latest request of a device is decided; records are on disk before results are published', async () => {
    const prefix = 'latest/v1';
    const ids = ['q-block', 'q-a', 'q-b'];
    allowDevices(data, ids);
    const lines: LogLine[] = [];
    const service = await startEnrollmentService({
      dataDir: data,
      crypto: host,
      brokerUrl: broker.url,
      prefix,
      minIntervalMs: 0,
      log: (l) => lines.push(l),
    });
    // Every result, checked when it arrives: the device's record must already be on disk.
    const problems: string[] = [];
    const results: { deviceId: string; requestId: string }[] = [];
    const watcher = await mqtt.connectAsync(broker.url, { clientId: 'queue-watch', reconnectPeriod: 0 });
    watcher.on('message', (name, payload) => {
      const deviceId = name.split('/')[2]!;
      const result = parseEnrollResult(new Uint8Array(payload));
      results.push({ deviceId, requestId: toHex(result.requestId) });
      const record = readDeviceRecord(data, deviceId);
      const serial = parseCertificate(result.deviceCertificate!).serialHex;
      if (record?.serial !== serial) problems.push(`${deviceId}: result published before its record`);
    });
    await watcher.subscribeAsync(`${prefix}/+/enroll/result`, { qos: 1 });
    const publish = (deviceId: string, bytes: Uint8Array) =>
      client.publishAsync(topic('enroll', deviceId, prefix), Buffer.from(bytes), { qos: 1 });
    try {
      hold();
      const blockHandled = handledByService();
      await publish('q-block', request('q-block').bytes);
      // Received and taken into a batch, which waits for the lock: waited for, not a fixed wait.
      await until('q-block received and taken into a batch', () => blockHandled() && service.stats().queued === 0);
      const keyA = host.p256Generate();
      const a = [request('q-a', keyA), request('q-a', keyA), request('q-a', keyA)];
      const b = [request('q-b'), request('q-b')];
      for (const r of a) await publish('q-a', r.bytes);
      for (const r of b) await publish('q-b', r.bytes);
      await until('the requests to arrive', () => service.stats().superseded === 3);
      assert.equal(service.stats().queued, 2, 'one waiting request per device');
      release();
      await service.idle();
      await until('three results', () => results.length === 3);
      const decided = (id: string) => lines.filter((l) => l.event === 'enroll' && l.deviceId === id);
      assert.deepEqual(
        decided('q-a').map((l) => l.requestId),
        [a[2]!.requestId],
        'q-a: only its latest request is decided',
      );
      assert.deepEqual(
        decided('q-b').map((l) => l.requestId),
        [b[1]!.requestId],
      );
      assert.deepEqual(
        results
          .filter((r) => r.deviceId !== 'q-block')
          .map((r) => r.requestId)
          .sort(),
        [a[2]!.requestId, b[1]!.requestId].sort(),
      );
      assert.equal(decided('q-a')[0]!.outcome, 'issued');
      assert.deepEqual(problems, []);
      assert.equal(service.stats().decided, 3);
    } finally {
      release();
      await watcher.endAsync(true);
      await service.close();
    }
  });

  test('close() with a large queue abandons it instead of deciding it, and returns promptly', async () => {
    const prefix = 'stop/v1';
    const ids = Array.from({ length: 300 }, (_, i) => `stop-${i}`);
    allowDevices(data, ['stop-block', ...ids]);
    const lines: LogLine[] = [];
    const service = await startEnrollmentService({
      dataDir: data,
      crypto: host,
      brokerUrl: broker.url,
      prefix,
      minIntervalMs: 0,
      maxQueue: 1000,
      log: (l) => lines.push(l),
    });
    try {
      hold();
      const blockHandled = handledByService();
      await client.publishAsync(topic('enroll', 'stop-block', prefix), Buffer.from(request('stop-block').bytes), {
        qos: 1,
      });
      // Received and taken into a batch, which waits for the lock: waited for, not a fixed wait.
      await until('stop-block received and taken into a batch', () => blockHandled() && service.stats().queued === 0);
      await Promise.all(
        ids.map((id) => client.publishAsync(topic('enroll', id, prefix), Buffer.from(request(id).bytes), { qos: 1 })),
      );
      await until('300 waiting requests', () => service.stats().queued === 300);
      const closing = service.close();
      release(); // the batch being decided finishes; nothing queued is decided
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        closing.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), 30_000);
        }),
      ]);
      clearTimeout(timer);
      assert.ok(ended, 'close() returned');
      const stats = service.stats();
      assert.equal(stats.decided, 1, 'only the batch that had started was decided');
      assert.equal(stats.abandoned, 300);
      assert.equal(lines.filter((l) => l.event === 'enroll' && l.outcome === 'issued').length, 1);
      const stopped = lines.find((l) => l.event === 'stopped');
      assert.equal(stopped?.abandoned, 300);
    } finally {
      release();
      await service.close();
    }
  });
});

describe('batch issuance', () => {
  test('one batch: new, duplicate, conflicting and bad requests each get their own result; every file is in place', async () => {
    const ca = await loadCaFromDir(data);
    const key = host.p256Generate();
    const csr = (id: string, k = host.p256Generate()) => makeCsr(host, k, id);
    const results = await issueDeviceCertificates(data, ca, [
      { csr: csr('batch-1', key), options: { deviceId: 'batch-1' } },
      { csr: csr('batch-2'), options: { deviceId: 'batch-2' } },
      { csr: csr('batch-1', key), options: { deviceId: 'batch-1' } }, // the same key again: the same certificate
      { csr: csr('batch-1'), options: { deviceId: 'batch-1' } }, // another key: key-conflict
      { csr: new Uint8Array([1, 2, 3]), options: { deviceId: 'batch-3' } },
      { csr: csr('batch-4'), options: { deviceId: 'batch-5' } }, // device-mismatch
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? r.issued.outcome : (r.error as { code?: string }).code)),
      ['issued', 'issued', 'existing', 'key-conflict', 'bad-csr', 'device-mismatch'],
    );
    const first = results[0]!;
    const again = results[2]!;
    assert.ok(first.ok && again.ok);
    assert.equal(toHex(again.issued.certificateDer), toHex(first.issued.certificateDer));
    for (const id of ['batch-1', 'batch-2']) {
      const result = results.find((r) => r.ok && r.issued.deviceId === id)!;
      assert.ok(result.ok);
      assert.equal(readDeviceRecord(data, id)?.serial, result.issued.record.serial);
      assert.deepEqual(readdirSync(join(data, 'devices', id)).sort(), ['cert.pem', 'csr.pem', 'record.json']);
    }
    assert.equal(readDeviceRecord(data, 'batch-3'), undefined);
  });
});
