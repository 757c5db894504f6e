/**
 * Issue 12 §1 and the cloud side of §4, at the receiver (cloud/service/receiver.ts) with real
 * stores (SQLite and PostgreSQL), real key and data messages, a real CA data directory and a
 * clock the test moves: sessions end (after a re-key and its grace, on revocation, on reset-kid),
 * kids are bounded, a reset cannot be undone by replaying captured traffic, no re-key request is
 * signed for a kid that did not authenticate, and data that finds the pending buffer full is never
 * acknowledged and then dropped. "--share" is two receivers (each its own session table and
 * pending buffer) on one store, as two service instances are.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { InboundMessage } from '../../cloud/mqtt/consumer.js';
import { cloudKeyLookup, loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { openDataDir } from '../../cloud/pki/data-dir.js';
import { readCertificates } from '../../cloud/pki/files.js';
import { addRevocation, revocationChecker } from '../../cloud/pki/revocation.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { SessionSealer } from '../../cloud/service/at-rest.js';
import { CommitQueue } from '../../cloud/service/commit-queue.js';
import type { PendingData } from '../../cloud/service/data-path.js';
import { ServiceMetrics } from '../../cloud/service/metrics.js';
import { PendingBuffer } from '../../cloud/service/pending-buffer.js';
import { Receiver } from '../../cloud/service/receiver.js';
import { RekeyRequester } from '../../cloud/service/rekey.js';
import { SessionTable } from '../../cloud/service/session-table.js';
import { openStore } from '../../cloud/store/index.js';
import type { Store } from '../../cloud/store/store.js';
import type { ServiceEvent } from '../../cloud/telemetry/events.js';
import type { DeliveredPayload } from '../../cloud/telemetry/payload.js';
import { toHex } from '../../src/bytes.js';
import { encode } from '../../src/cbor/index.js';
import { openControlMessage } from '../../src/profile/control.js';
import { sealData } from '../../src/profile/data-message.js';
import { makeKeyMessage, openKeyMessage } from '../../src/profile/key-message.js';
import { newSessionKey } from '../../src/profile/session.js';
import { topic } from '../../src/profile/topics.js';
import { startPostgres, type TestPostgres } from '../fixtures/postgres.js';
import {
  type CloudFixture,
  captureLog,
  crypto,
  makeCloudDataDir,
  makeDevice,
  type TestDevice,
  until,
} from './service-fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-lifetime-'));
let pg: TestPostgres | undefined;
let fixture: CloudFixture;

before(async () => {
  [pg, fixture] = await Promise.all([startPostgres(), makeCloudDataDir(join(tmp, 'data'))]);
});
after(async () => {
  await pg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const GRACE = { ms: 5_000, messages: 5 };
let files = 0;
const backends = [
  { name: 'sqlite', url: async () => `sqlite:${join(tmp, `lifetime-${++files}.db`)}` },
  { name: 'postgres', url: () => pg!.createDatabase() },
];

/** A message as the MQTT consumer hands it over, remembering whether it was acknowledged. */
interface TestMessage extends InboundMessage {
  acked: boolean;
}
function message(name: string, payload: Uint8Array): TestMessage {
  const m: TestMessage = {
    topic: name,
    payload,
    qos: 1,
    dup: false,
    receivedAt: Date.now(),
    acked: false,
    ack() {
      m.acked = true;
    },
  };
  return m;
}

interface Instance {
  receiver: Receiver;
  events: ServiceEvent[];
  controls: { topic: string; bytes: Uint8Array }[];
  delivered: DeliveredPayload[];
  key(device: TestDevice | string, bytes: Uint8Array): Promise<TestMessage>;
  data(device: TestDevice | string, bytes: Uint8Array): Promise<TestMessage>;
  rejected(reason: string): number;
}

const sealer = new SessionSealer(crypto.randomBytes(32));

function instance(
  store: Store,
  clock: { t: number },
  options: { pending?: { perDevice?: number; total?: number; ttlMs?: number } } = {},
): Instance {
  const events: ServiceEvent[] = [];
  const controls: { topic: string; bytes: Uint8Array }[] = [];
  const delivered: DeliveredPayload[] = [];
  const now = () => clock.t;
  const sessions = new SessionTable(store, sealer);
  const pending = new PendingBuffer<PendingData>({ ttlMs: 1000, ...options.pending });
  const metrics = new ServiceMetrics({
    sessionsCached: () => sessions.size,
    pending: () => pending.size,
    commitQueue: () => 0,
    unacked: () => 0,
    mqttConnected: () => true,
    mqttReconnects: () => 0,
    storeStats: () => store.stats(),
  });
  const keys = loadCloudKeys(crypto, fixture.dataDir);
  const isRevoked = revocationChecker(fixture.dataDir);
  const verifyCertificate = deviceCertificateVerifier({
    crypto,
    trustAnchors: readCertificates(openDataDir(fixture.dataDir).caCertificate),
    isRevoked,
  });
  const rekey = new RekeyRequester({
    crypto,
    cloudKey: () => [...keys.values()].find((k) => k.current)!.key,
    prefix: 'cose-flow/v1',
    publish: async (t, bytes) => {
      controls.push({ topic: t, bytes });
    },
    minIntervalMs: 0,
    now,
    store,
  });
  const receiver = new Receiver({
    crypto,
    store,
    sessions,
    pending,
    commits: new CommitQueue(store),
    rekey,
    sealer,
    openKeyMessage: (bytes, topicDeviceId) =>
      openKeyMessage(crypto, bytes, { cloudKey: cloudKeyLookup(keys), verifyCertificate, topicDeviceId }),
    deliver: async (p) => {
      delivered.push(p);
    },
    metrics,
    log: captureLog('warn').logger,
    prefix: 'cose-flow/v1',
    maxMessageBytes: 65_536,
    retryMinMs: 10,
    observe: (e) => events.push(e),
    now,
    isRevoked,
  });
  const send = async (kind: 'session' | 'data', device: TestDevice | string, bytes: Uint8Array) => {
    const m = message(topic(kind, typeof device === 'string' ? device : device.id), bytes);
    receiver.handle(m);
    await receiver.idle();
    return m;
  };
  return {
    receiver,
    events,
    controls,
    delivered,
    key: (d, b) => send('session', d, b),
    data: (d, b) => send('data', d, b),
    rejected: (reason) => events.filter((e) => e.type === 'rejected' && e.reason === reason).length,
  };
}

async function openTestStore(url: string, clock: { t: number }): Promise<Store> {
  return openStore(url, { now: () => clock.t, sessionGrace: GRACE });
}

/** Payloads the store holds for (device, kid). */
async function storedFor(store: Store, deviceId: string, kid: number | bigint): Promise<number[]> {
  const hex = toHex(newSessionKey(crypto, kid).kid);
  return (await store.listPayloads({ deviceId, limit: 10_000 })).filter((p) => toHex(p.kid) === hex).map((p) => p.seq);
}

/** A data message under a kid nobody announced (random key): what an attacker without keys sends. */
function bogusData(kid: number | bigint, seq: number): Uint8Array {
  return sealData(crypto, newSessionKey(crypto, kid), seq, encode({ forged: seq }));
}

for (const backend of backends) {
  describe(`session lifetime (${backend.name})`, () => {
    test('a leaked old-session key is refused after a re-key and its grace (time and message count)', async () => {
      const clock = { t: Date.now() };
      const store = await openTestStore(await backend.url(), clock);
      try {
        const cloud = instance(store, clock);
        const device = await makeDevice(fixture, 'leak-1');
        assert.ok((await cloud.key(device, device.keyMessage(1))).acked);
        assert.ok((await cloud.data(device, device.data(1, 0))).acked);
        await cloud.key(device, device.keyMessage(2));
        // Within the grace: data still in flight under kid 1 is stored.
        await cloud.data(device, device.data(1, 1));
        assert.deepEqual(await storedFor(store, 'leak-1', 1), [0, 1]);
        // After the grace: kid 1's key (leaked) forges nothing more, up to seq 2^32 − 1.
        clock.t += GRACE.ms + 1;
        for (const seq of [2, 3, 100, 2 ** 32 - 1]) await cloud.data(device, device.data(1, seq));
        assert.deepEqual(await storedFor(store, 'leak-1', 1), [0, 1], 'no forged payload stored under kid 1');
        assert.equal(cloud.rejected('session-closed'), 4);
        // A fresh instance (nothing cached) refuses it too; the device's current session works.
        const other = instance(store, clock);
        await other.data(device, device.data(1, 7));
        assert.equal(other.rejected('session-closed'), 1);
        await other.data(device, device.data(2, 0));
        assert.deepEqual(await storedFor(store, 'leak-1', 2), [0]);

        // The message-count grace: at most GRACE.messages more payloads under a superseded session.
        const busy = await makeDevice(fixture, 'leak-2');
        await cloud.key(busy, busy.keyMessage(1));
        await cloud.key(busy, busy.keyMessage(2));
        for (let seq = 0; seq < GRACE.messages + 4; seq++) await cloud.data(busy, busy.data(1, seq));
        assert.equal((await storedFor(store, 'leak-2', 1)).length, GRACE.messages);
      } finally {
        await store.close();
      }
    });

    test('revocation ends the sessions opened before it', async () => {
      const clock = { t: Date.now() };
      const store = await openTestStore(await backend.url(), clock);
      try {
        const cloud = instance(store, clock);
        const device = await makeDevice(fixture, `revoke-${backend.name}`);
        await cloud.key(device, device.keyMessage(1));
        await cloud.data(device, device.data(1, 0));
        await addRevocation(fixture.dataDir, fixture.ca, { serial: device.serialHex, deviceId: device.id });
        for (let seq = 1; seq <= 5; seq++) assert.ok((await cloud.data(device, device.data(1, seq))).acked);
        assert.deepEqual(await storedFor(store, device.id, 1), [0], 'nothing stored after the revocation');
        assert.ok(cloud.rejected('session-closed') >= 1);
        // Another instance (nothing cached) refuses it as well.
        const other = instance(store, clock);
        await other.data(device, device.data(1, 9));
        assert.deepEqual(await storedFor(store, device.id, 1), [0]);
      } finally {
        await store.close();
      }
    });

    test('kid 2^64 − 1 (and kids far above the floor) are refused; the real device is unaffected', async () => {
      const clock = { t: Date.now() };
      const store = await openTestStore(await backend.url(), clock);
      try {
        const cloud = instance(store, clock);
        const device = await makeDevice(fixture, 'bound-1');
        await cloud.key(device, device.keyMessage(1));
        // The device key is compromised: the attacker announces huge kids.
        const forged = (kid: bigint) =>
          makeKeyMessage(crypto, {
            deviceId: device.id,
            deviceKey: device.key,
            deviceCertificate: device.certificate,
            cloudPublicKey: fixture.cloudPublicKey,
            session: newSessionKey(crypto, kid),
          } as Parameters<typeof makeKeyMessage>[1]);
        for (const kid of [2n ** 64n - 1n, 2n ** 53n, 1n + 65_536n + 1n]) await cloud.key(device, forged(kid));
        assert.equal(cloud.rejected('kid-too-far'), 3);
        assert.deepEqual([...(await store.getDevice('bound-1'))!.kidFloor!], [1], 'the floor did not move');
        // The real device re-keys as usual, and its data is stored.
        await cloud.key(device, device.keyMessage(2));
        const m = await cloud.data(device, device.data(2, 0));
        assert.ok(m.acked);
        assert.deepEqual(await storedFor(store, 'bound-1', 2), [0]);
        assert.equal(cloud.rejected('kid-rollback'), 0);
        assert.equal(cloud.controls.length, 0, 'nothing signed for the refused huge kids');
        // A kid the device really announced (signed) but the cloud refused: the device is told,
        // with a re-key request for that kid (it acts if the kid is still its current one).
        await cloud.key(device, device.otherKeyMessage(2));
        assert.equal(cloud.rejected('kid-reused'), 1);
        await until('the re-key request', () => cloud.controls.length > 0);
        const request = openControlMessage(crypto, cloud.controls[0]!.bytes, {
          cloudPublicKeys: [fixture.cloudPublicKey],
          deviceId: 'bound-1',
        });
        assert.deepEqual([request.request, [...request.kid]], ['rekey', [2]]);
      } finally {
        await store.close();
      }
    });

    test('reset-kid cannot be undone by replaying captured traffic; a new certificate starts a new epoch', async () => {
      const clock = { t: Date.now() };
      const store = await openTestStore(await backend.url(), clock);
      try {
        const cloud = instance(store, clock);
        const device = await makeDevice(fixture, 'reset-1');
        const captured: Uint8Array[] = [];
        for (const kid of [1, 2, 3]) {
          await cloud.key(device, device.keyMessage(kid));
          for (let seq = 0; seq < 3; seq++) {
            const bytes = device.data(kid, seq);
            captured.push(bytes);
            await cloud.data(device, bytes);
          }
        }
        const before = await store.countPayloads('reset-1');
        assert.equal(before, 9);
        assert.ok(await store.resetKidFloor('reset-1'));
        // The attacker replays everything it recorded before the reset.
        for (const kid of [1, 2, 3]) await cloud.key(device, device.keyMessage(kid));
        for (const bytes of captured) await cloud.data(device, bytes);
        assert.equal(await store.countPayloads('reset-1'), before, 'nothing re-stored in the new epoch');
        assert.equal((await store.getDevice('reset-1'))!.kidFloor, null, 'the floor was not pushed back up');
        // The re-flashed device starts at kid 1 (a new session key) and is accepted.
        await cloud.key(device, device.otherKeyMessage(1));
        assert.deepEqual([...(await store.getDevice('reset-1'))!.kidFloor!], [1]);

        // Re-enrolled (a new certificate): a new epoch, without an operator; the old key's
        // messages (a compromised old certificate) no longer count.
        const renewed = await makeDevice(fixture, 'reset-1');
        await cloud.key(renewed, renewed.keyMessage(1));
        await cloud.data(renewed, renewed.data(1, 0));
        assert.deepEqual(await storedFor(store, 'reset-1', 1).then((s) => s.length > 0), true);
        const epoch = (await store.getDevice('reset-1'))!.epoch;
        await cloud.key(device, device.keyMessage(5));
        assert.equal((await store.getDevice('reset-1'))!.epoch, epoch, 'the old certificate does not move the epoch');
        assert.deepEqual([...(await store.getDevice('reset-1'))!.kidFloor!], [1]);
      } finally {
        await store.close();
      }
    });

    test('no re-key request is signed for a kid that did not authenticate, nor for an unknown device', async () => {
      const clock = { t: Date.now() };
      const store = await openTestStore(await backend.url(), clock);
      try {
        const cloud = instance(store, clock);
        const device = await makeDevice(fixture, 'rekey-1');
        await cloud.key(device, device.keyMessage(1));
        // One fake data message with kid = current + 2, and data for device ids that do not exist.
        await cloud.data(device, bogusData(3, 0));
        for (let i = 0; i < 5; i++) await cloud.data(`ghost-${i}`, bogusData(1, 0));
        clock.t += 2_000; // past the pending TTL
        await cloud.receiver.sweep();
        await cloud.receiver.idle();
        assert.ok(cloud.rejected('unknown-kid') >= 6, 'the held data expired');
        assert.deepEqual(
          cloud.controls.map((c) => c.topic),
          [],
          'no control message signed on the word of unauthenticated data',
        );
      } finally {
        await store.close();
      }
    });

    test('--share: no data is acknowledged and then dropped when the pending buffer is full', async () => {
      const clock = { t: Date.now() };
      const store = await openTestStore(await backend.url(), clock);
      try {
        const limits = { pending: { perDevice: 4, total: 4, ttlMs: 60_000 } };
        const a = instance(store, clock, limits);
        const b = instance(store, clock, limits);
        const device = await makeDevice(fixture, 'share-1');
        await b.key(device, device.keyMessage(1));
        // An attacker fills instance A's pending buffer with data for device ids that do not exist.
        for (let i = 0; i < 8; i++) await a.data(`bogus-${i}`, bogusData(1, 0));
        const legit: TestMessage[] = [];
        // The key message of kid 2 goes to B; its data to A, whose buffer is full.
        await b.key(device, device.keyMessage(2));
        for (let seq = 0; seq < 3; seq++) legit.push(await a.data(device, device.data(2, seq)));
        // Kid 3: the data reaches A before its key message reaches B.
        for (let seq = 0; seq < 3; seq++) legit.push(await a.data(device, device.data(3, seq)));
        await b.key(device, device.keyMessage(3));
        clock.t += 500;
        await a.receiver.sweep();
        await a.receiver.idle();
        const stored = new Set([
          ...(await storedFor(store, 'share-1', 2)).map((s) => `2/${s}`),
          ...(await storedFor(store, 'share-1', 3)).map((s) => `3/${s}`),
        ]);
        const names = ['2/0', '2/1', '2/2', '3/0', '3/1', '3/2'];
        legit.forEach((m, i) => {
          if (m.acked) assert.ok(stored.has(names[i]!), `data ${names[i]} acknowledged but not stored`);
        });
        assert.equal(stored.size, 6, `every genuine payload stored: ${[...stored].join(' ')}`);

        // A buffer and its overflow (half as much again) full of plausible data (the device's next
        // kid): what does not fit is neither acknowledged nor dropped, for the broker to deliver
        // again; what the overflow holds is stored once its key message arrives.
        for (let seq = 0; seq < 4; seq++) await a.data(device, bogusData(4, seq));
        const held = await a.data(device, device.data(5, 0));
        assert.equal(held.acked, false);
        await a.data(device, bogusData(4, 4));
        const left = await a.data(device, device.data(4, 99));
        assert.equal(left.acked, false, 'refused for lack of space: left unacknowledged');
        assert.equal(a.receiver.leftForRedelivery, 1);
        assert.equal(a.rejected('unknown-kid') >= 4, true, 'what cannot be real (unknown devices) was refused');
        await b.key(device, device.keyMessage(5));
        clock.t += 500;
        await a.receiver.sweep();
        await a.receiver.idle();
        assert.ok(held.acked);
        assert.deepEqual(await storedFor(store, 'share-1', 5), [0]);
        assert.equal(left.acked, false);
      } finally {
        await store.close();
      }
    });
  });
}
