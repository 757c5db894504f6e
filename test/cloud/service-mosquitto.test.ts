/**
 * The cloud service through mosquitto (MQTT 5; test/fixtures/mosquitto.ts starts and stops it):
 * - one instance on each store: delivery, data before its key message, messages published while
 *   the service is down (its persistent session queues them), a broker restart;
 * - two and three instances in one shared subscription group ($share/…) on one PostgreSQL store:
 *   every payload stored and handed to a handler exactly once across the instances, also when
 *   a key message and its data go to different instances, and with duplicates published on top.
 * In CI a missing mosquitto fails these tests; locally they are skipped with a warning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CloudService, startCloudService } from '../../cloud/service/service.js';
import type { DeliveredPayload } from '../../cloud/telemetry/payload.js';
import { mosquittoAvailability, startMosquitto, type TestMosquitto } from '../fixtures/mosquitto.js';
import { startPostgres, type TestPostgres } from '../fixtures/postgres.js';
import {
  type CloudFixture,
  captureLog,
  connectPublisher,
  makeCloudDataDir,
  makeDevice,
  type TestDevice,
  until,
} from './service-fixture.js';

const availability = mosquittoAvailability('the cloud service tests through mosquitto');
const skip = availability.run ? false : availability.why;

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-service-mq-'));
let pg: TestPostgres | undefined;
let fixture: CloudFixture;
let broker: TestMosquitto;

before(async () => {
  if (skip) return;
  [pg, fixture, broker] = await Promise.all([startPostgres(), makeCloudDataDir(join(tmp, 'data')), startMosquitto()]);
});
after(async () => {
  await broker?.close();
  await pg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const key = (p: { deviceId: string; seq: number; kidHex: string }) => `${p.deviceId}/${p.kidHex}/${p.seq}`;

async function start(store: string, clientId: string, extra: { share?: string; windowSize?: number } = {}) {
  const log = captureLog('warn');
  const delivered: DeliveredPayload[] = [];
  const service = await startCloudService({
    brokerUrl: broker.url,
    dataDir: fixture.dataDir,
    store,
    clientId,
    logger: log.logger,
    onPayload: (p) => {
      delivered.push(p);
    },
    ...(extra.share === undefined ? {} : { shareGroup: extra.share }),
    ...(extra.windowSize === undefined ? {} : { windowSize: extra.windowSize }),
  });
  return { service, delivered, log };
}

describe('cloud service on mosquitto, one instance', { skip }, () => {
  for (const storeKind of ['sqlite', 'postgres'] as const) {
    test(`${storeKind}: MQTT 5, delivery, data before its key, a restart of the service and of the broker`, async () => {
      const store = storeKind === 'sqlite' ? `sqlite:${join(tmp, 'one.db')}` : await pg!.createDatabase();
      const clientId = `svc-one-${storeKind}`;
      let { service, delivered } = await start(store, clientId);
      const pub = await connectPublisher(broker.url, `pub-one-${storeKind}`);
      try {
        assert.equal(
          service.health().mqtt && (service.health().mqtt as { protocolVersion: number }).protocolVersion,
          5,
        );
        const device = await makeDevice(fixture, `mq-${storeKind}-1`);
        await pub.data(device, device.data(1, 0)); // before its key message
        await pub.key(device, device.keyMessage(1));
        for (let seq = 1; seq < 10; seq++) await pub.data(device, device.data(1, seq));
        await until('10 payloads', () => delivered.length === 10);

        // The service stops; what is published meanwhile waits in its broker session.
        await service.stop();
        for (let seq = 10; seq < 20; seq++) await pub.data(device, device.data(1, seq));
        ({ service, delivered } = await start(store, clientId));
        await until('the 10 queued payloads', () => delivered.length === 10);

        // The broker restarts (persistence on): the service reconnects and carries on.
        await broker.stop();
        await broker.start();
        await until('reconnected', () => service.health().status === 'ok', 120_000);
        for (let seq = 20; seq < 25; seq++) await pub.data(device, device.data(1, seq));
        await until('5 more', () => delivered.length === 15);
        assert.equal(await service.store.countPayloads(device.id), 25);
      } finally {
        await pub.close();
        await service.stop();
      }
    });
  }
});

describe('cloud service on mosquitto, graceful stop', { skip }, () => {
  test('stop() in the middle of a stream: in-flight messages finish, the rest wait in the broker', async () => {
    const store = `sqlite:${join(tmp, 'graceful.db')}`;
    const clientId = 'svc-graceful';
    let { service, delivered } = await start(store, clientId);
    const pub = await connectPublisher(broker.url, 'pub-graceful');
    const device = await makeDevice(fixture, 'graceful-1');
    const total = 2000;
    try {
      await pub.key(device, device.keyMessage(1));
      const sending = Promise.all([...Array(total).keys()].map((seq) => pub.data(device, device.data(1, seq))));
      await until('a first part', () => delivered.length >= 200);
      await service.stop();
      const before = delivered.length;
      assert.equal(service.health().status, 'stopping');
      await sending;
      ({ service, delivered } = await start(store, clientId));
      await until('the rest', () => before + delivered.length >= total, 120_000);
      assert.equal(before + delivered.length, total, 'nothing twice');
      assert.equal(await service.store.countPayloads(device.id), total);
    } finally {
      await pub.close();
      await service.stop();
    }
  });
});

describe('cloud service on mosquitto, a shared subscription over one PostgreSQL store', { skip }, () => {
  for (const instances of [2, 3]) {
    test(`${instances} instances: every payload exactly once`, async () => {
      const store = await pg!.createDatabase();
      const group = `cloud${instances}`;
      const started = await Promise.all(
        [...Array(instances).keys()].map((i) => start(store, `svc-${group}-${i}`, { share: group })),
      );
      const services: CloudService[] = started.map((s) => s.service);
      const pub = await connectPublisher(broker.url, `pub-${group}`);
      try {
        const devices: TestDevice[] = [];
        for (let d = 0; d < 6; d++) devices.push(await makeDevice(fixture, `${group}-dev-${d}`));
        // Bursts of one device's messages are split between the instances and committed out of
        // order: the shared-subscription default window (1024) absorbs that.
        const perDevice = 150;
        const sends: Promise<unknown>[] = [];
        for (const [d, device] of devices.entries()) {
          // Half the devices send some data before their key message: with the key on one instance
          // and the data on another, the data waits until the session shows up in the store.
          if (d % 2 === 1) for (let seq = 0; seq < 5; seq++) sends.push(pub.data(device, device.data(1, seq)));
          sends.push(pub.key(device, device.keyMessage(1)));
        }
        await Promise.all(sends);
        for (let seq = 0; seq < perDevice; seq++) {
          for (const [d, device] of devices.entries()) {
            if (d % 2 === 1 && seq < 5) continue;
            sends.push(pub.data(device, device.data(1, seq)));
            if (seq % 7 === 0) sends.push(pub.data(device, device.data(1, seq))); // a duplicate on top
          }
        }
        await Promise.all(sends);
        const total = devices.length * perDevice;
        const all = () => started.flatMap((s) => s.delivered);
        await until(`${total} payloads`, () => all().length >= total, 120_000).catch((e: Error) => {
          const seen = new Set(all().map(key));
          const missing = devices.flatMap((d) =>
            [...Array(perDevice).keys()].filter((seq) => !seen.has(`${d.id}/01/${seq}`)).map((seq) => `${d.id}/${seq}`),
          );
          const state = started.map((s) => ({
            delivered: s.delivered.length,
            health: s.service.health(),
            rejected: s.service.metrics.rejectedByReason(),
            log: s.log.text().slice(-2000),
          }));
          throw new Error(
            `${e.message}; missing ${missing.slice(0, 20).join(', ')}; ${JSON.stringify(state, null, 1)}`,
          );
        });
        await Promise.all(services.map((s) => s.idle()));
        const seen = new Map<string, number>();
        for (const p of all()) seen.set(key(p), (seen.get(key(p)) ?? 0) + 1);
        assert.equal(seen.size, total, 'every payload delivered');
        assert.deepEqual(
          [...seen.entries()].filter(([, n]) => n !== 1),
          [],
          'no payload delivered twice',
        );
        assert.equal(await services[0]!.store.countPayloads(), total, 'stored exactly once');
        for (const [i, s] of started.entries())
          assert.ok(
            s.delivered.length > 0,
            `instance ${i} took part (${started.map((x) => x.delivered.length).join(' / ')})`,
          );
        const dupes = services.reduce((n, s) => n + s.metrics.duplicates.get({ kind: 'data' }), 0);
        assert.ok(dupes > 0, 'the duplicates were seen (and dropped)');
        const rejected = services.map((s) => s.metrics.rejectedByReason());
        assert.deepEqual(
          rejected,
          services.map(() => ({})),
          'nothing refused',
        );
      } finally {
        await pub.close();
        await Promise.all(services.map((s) => s.stop()));
      }
    });
  }
});
