/**
 * Rotation progress in the running service (issue 12 §3) and re-key requests mid-rotation: a
 * simulated fleet (the real device application on the host platform) against the real cloud
 * service and a broker.
 *
 * - The service records which cloud key each device's latest session was sealed to; /api/state
 *   (the dashboard's snapshot) counts the devices per cloud key, with the retired key's deadline,
 *   and the counts move as devices take the new certificate.
 * - A device that has not yet received the new cloud certificate trusts only the old key: a
 *   re-key request the service sends it mid-rotation is signed with the key its current session
 *   was sealed to, so it acts on it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { issueCertificate } from '../../cloud/pki/authority.js';
import { type CloudKey, cloudKeygen, loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { type CloudService, startCloudService } from '../../cloud/service/service.js';
import { openStore } from '../../cloud/store/index.js';
import type { CommitResult, DataItem, Store } from '../../cloud/store/store.js';
import { toHex } from '../../src/bytes.js';
import { DEFAULT_CONFIG } from '../../src/device/config.js';
import { makeControlMessage } from '../../src/profile/control.js';
import { cloudKeyId } from '../../src/profile/session.js';
import { topic } from '../../src/profile/topics.js';
import { type RestartableBroker, startAedes } from '../host-sim/brokers.js';
import { type SimDevice, simDevice, type TestPki } from '../host-sim/harness.js';
import { type CloudFixture, captureLog, connectPublisher, crypto, makeCloudDataDir, until } from './service-fixture.js';

let tmp: string;
let fixture: CloudFixture;
let broker: RestartableBroker;
let service: CloudService;
let old: CloudKey;
const serviceLog = captureLog('info');
const devices = new Map<string, SimDevice>();
/** Sessions the test makes the store "lose" (device id + kid hex): as if the row were gone. */
const lost = new Set<string>();

/** The service's store, except that the sessions in `lost` are not there. */
function losingStore(inner: Store): Store {
  const isLost = (deviceId: string, kid: Uint8Array) => lost.has(`${deviceId}/${toHex(kid)}`);
  return new Proxy(inner, {
    get(target, name, receiver) {
      if (name === 'getSession') {
        return async (deviceId: string, kid: Uint8Array) =>
          isLost(deviceId, kid) ? undefined : target.getSession(deviceId, kid);
      }
      if (name === 'commitBatch') {
        return async (items: readonly DataItem[]): Promise<CommitResult[]> => {
          const kept = items.filter((i) => !isLost(i.deviceId, i.kid));
          const results = kept.length === 0 ? [] : await target.commitBatch(kept);
          let next = 0;
          return items.map((i) => (isLost(i.deviceId, i.kid) ? 'unknown-session' : results[next++]!));
        };
      }
      const value = Reflect.get(target, name, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cose-flow-rotation-progress-'));
  fixture = await makeCloudDataDir(join(tmp, 'data'), 'rotation progress CA');
  old = [...loadCloudKeys(crypto, fixture.dataDir).values()].find((k) => k.current)!;
  broker = await startAedes();
  const store = losingStore(await openStore(`sqlite:${join(tmp, 'store.db')}`));
  service = await startCloudService({
    brokerUrl: broker.url,
    dataDir: fixture.dataDir,
    store,
    logger: serviceLog.logger,
    http: { port: 0, host: '127.0.0.1' },
    rekeyIntervalMs: 1000,
  });
});

after(async () => {
  for (const d of devices.values()) await d.app.stop();
  await service?.stop();
  await service?.store.close();
  await broker?.close();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

/** A row of the snapshot's `cloudKeys` (cloud/dashboard/live-state.ts), as the page reads it. */
interface CloudKeyRow {
  kid: string;
  current: boolean;
  loaded: boolean;
  devices: number;
  retireAt: number | null;
}

async function cloudKeys(): Promise<CloudKeyRow[]> {
  const r = await fetch(`${service.http!.url}/api/state`);
  assert.equal(r.status, 200);
  const body = (await r.json()) as { cloudKeys?: CloudKeyRow[] };
  return body.cloudKeys ?? [];
}

/** [kid, current, devices] per cloud key, as /api/state shows them. */
async function counts(): Promise<[string, boolean, number][]> {
  return (await cloudKeys()).map((k) => [k.kid, k.current, k.devices]);
}

async function untilCounts(expected: [string, boolean, number][], what: string): Promise<void> {
  let last: unknown;
  await until(
    what,
    async () => {
      last = await counts();
      return JSON.stringify(last) === JSON.stringify(expected);
    },
    30_000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; /api/state cloudKeys were ${JSON.stringify(last)}`);
  });
}

async function latestKid(deviceId: string): Promise<Uint8Array> {
  return (await service.store.getDevice(deviceId))!.kidFloor!;
}

describe('cloud key rotation in the running service', () => {
  const ids = ['move-1', 'move-2'];
  let newKid = '';

  test('/api/state counts the devices on each cloud key', async () => {
    const pki: TestPki = {
      ca: fixture.ca,
      caDer: fixture.ca.der,
      cloud: { certificate: old.certificate, key: old.key, publicKey: old.publicKey, kid: old.kid },
      newCloud: () => Promise.reject(new Error('not used')),
      deviceCertificate: async (deviceId, publicKey) =>
        (await issueCertificate(fixture.ca, { commonName: deviceId, publicKey, keyUsage: 'device' })).der,
    };
    for (const deviceId of ids) {
      const d = await simDevice({
        broker: broker.url,
        deviceId,
        pki,
        config: { intervalMs: 50, rekey: { ...DEFAULT_CONFIG.rekey, minIntervalMs: 2000 } },
      });
      devices.set(deviceId, d);
      await d.app.start();
    }
    assert.equal(toHex(cloudKeyId(crypto, old.publicKey)), old.kidHex);
    await untilCounts([[old.kidHex, true, 2]], 'both devices on the only key');
    const [only] = await cloudKeys();
    assert.deepEqual(only, { kid: old.kidHex, current: true, loaded: true, devices: 2, retireAt: null });

    // The rotation: a new current key; the old one stays loaded until its deadline.
    const retireAt = new Date(Date.now() + 600_000);
    newKid = (await cloudKeygen(crypto, fixture.dataDir, { rotate: true, retireAt })).kidHex;
    await untilCounts(
      [
        [newKid, true, 0],
        [old.kidHex, false, 2],
      ],
      'the service loaded the new key, no device on it yet',
    );
    const oldRow = (await cloudKeys()).find((k) => k.kid === old.kidHex)!;
    assert.equal(oldRow.retireAt, retireAt.getTime(), 'the old key shows its retire-at deadline');
  });

  test('a device mid-rotation (old certificate) acts on a re-key request from the service', async () => {
    const d = devices.get('move-1')!;
    const kid = await latestKid('move-1');
    const stored = new Set<string>();
    const stop = service.onEvent((e) => {
      if (e.type === 'session' && e.deviceId === 'move-1') stored.add(e.kidHex);
    });
    try {
      // The service no longer has the device's session: its next data asks it to re-key.
      lost.add(`move-1/${toHex(kid)}`);
      await until(
        'a re-key request sent to move-1',
        () =>
          serviceLog
            .lines()
            .some((l) => l.event === 'rekey-request' && l.deviceId === 'move-1' && l.outcome === 'sent'),
        30_000,
      );
      await until(
        'move-1 acted on the re-key request',
        () => d.events.some((e) => e.type === 'control' && e.request === 'rekey'),
        30_000,
      );
      const answers = d.events.filter((e) => e.type === 'control');
      assert.ok(
        answers.some((e) => e.type === 'control' && e.request === 'rekey' && e.accepted),
        `the device accepted the re-key request (it answered: ${JSON.stringify(answers)})`,
      );
      await until('a new session of move-1 stored', () => [...stored].some((k) => k !== toHex(kid)), 30_000);
    } finally {
      stop();
    }
    // Still sealed to the old key (the device has not been given the new certificate).
    await untilCounts(
      [
        [newKid, true, 0],
        [old.kidHex, false, 2],
      ],
      'move-1 still on the old key',
    );
  });

  test('the counts move as devices take the new certificate', async () => {
    const keys = loadCloudKeys(crypto, fixture.dataDir);
    const certificate = keys.get(newKid)!.certificate;
    const pub = await connectPublisher(broker.url, 'rotation-progress-pub');
    try {
      // What `cose-flow cloud rotate` does: the new certificate and a re-key request, both signed
      // by the old key, the re-key again every 3 s (the device rate-limits re-keys) until it moved.
      const move = async (deviceId: string, expected: [string, boolean, number][], what: string) => {
        const send = (m: Uint8Array) => pub.client.publishAsync(topic('control', deviceId), Buffer.from(m), { qos: 1 });
        const control = async (request: 'cloud-certificate' | 'rekey') => {
          const kid = await latestKid(deviceId);
          const issuedAt = Math.floor(Date.now() / 1000);
          await send(
            makeControlMessage(crypto, old.key, {
              deviceId,
              request,
              kid,
              issuedAt,
              ...(request === 'cloud-certificate' ? { cloudCertificate: certificate } : {}),
            }),
          );
        };
        await control('cloud-certificate');
        let sent = 0;
        let last: unknown;
        await until(
          what,
          async () => {
            if (Date.now() - sent >= 3000) {
              sent = Date.now();
              await control('rekey');
            }
            last = await counts();
            return JSON.stringify(last) === JSON.stringify(expected);
          },
          60_000,
        ).catch((e: Error) => {
          throw new Error(`${e.message}; /api/state cloudKeys were ${JSON.stringify(last)}`);
        });
      };
      await move(
        'move-1',
        [
          [newKid, true, 1],
          [old.kidHex, false, 1],
        ],
        'one device moved',
      );
      await move(
        'move-2',
        [
          [newKid, true, 2],
          [old.kidHex, false, 0],
        ],
        'both devices moved',
      );
    } finally {
      await pub.close();
    }
  });
});
