/**
 * `cose-flow cloud rotate` (issue 12 §3): a simulated fleet (the real device application on the
 * host platform) against the real cloud service and a broker; the command makes the new key,
 * pushes it, reports each device that moved, and retires the old key once all have moved. After
 * that a session sealed to the retired key no longer opens.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../cli/main.js';
import { issueCertificate } from '../../cloud/pki/authority.js';
import { cloudKeygen, loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { type CloudService, startCloudService } from '../../cloud/service/service.js';
import { cloudKeyId } from '../../src/profile/session.js';
import { capturingIo } from '../fixtures/cli-io.js';
import { type RestartableBroker, startAedes } from '../host-sim/brokers.js';
import { type SimDevice, simDevice, type TestPki, until } from '../host-sim/harness.js';
import {
  type CloudFixture,
  captureLog,
  connectPublisher,
  crypto,
  makeCloudDataDir,
  makeDevice,
  until as untilAsync,
} from './service-fixture.js';

let tmp: string;
let fixture: CloudFixture;
let broker: RestartableBroker;
let service: CloudService;
const serviceLog = captureLog('info');
const devices: SimDevice[] = [];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cose-flow-rotate-'));
  fixture = await makeCloudDataDir(join(tmp, 'data'), 'rotation CA');
  broker = await startAedes();
  service = await startCloudService({
    brokerUrl: broker.url,
    dataDir: fixture.dataDir,
    logger: serviceLog.logger,
  });
});

after(async () => {
  for (const d of devices) await d.app.stop();
  await service?.stop();
  await broker?.close();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe('cose-flow cloud rotate', () => {
  test('moves a simulated fleet to a new cloud key, with progress, then retires the old key', async () => {
    const current = [...loadCloudKeys(crypto, fixture.dataDir).values()].find((k) => k.current)!;
    const pki: TestPki = {
      ca: fixture.ca,
      caDer: fixture.ca.der,
      cloud: {
        certificate: current.certificate,
        key: current.key,
        publicKey: current.publicKey,
        kid: cloudKeyId(crypto, current.publicKey),
      },
      newCloud: () => Promise.reject(new Error('not used')),
      deviceCertificate: async (deviceId, publicKey) =>
        (await issueCertificate(fixture.ca, { commonName: deviceId, publicKey, keyUsage: 'device' })).der,
    };
    const ids = ['fleet-1', 'fleet-2', 'fleet-3'];
    for (const deviceId of ids) {
      const d = await simDevice({ broker: broker.url, deviceId, pki, config: { intervalMs: 50 } });
      devices.push(d);
      await d.app.start();
    }
    await untilAsync(
      'a session of every device in the store',
      async () => (await Promise.all(ids.map((id) => service.store.getDevice(id)))).every((r) => r !== undefined),
      60_000,
    );

    const io = capturingIo();
    const status = await main(
      [
        'cloud',
        'rotate',
        '--broker',
        broker.url,
        '--data-dir',
        fixture.dataDir,
        '--deadline',
        '120',
        '--resend',
        '3',
        '--json',
      ],
      io,
    );
    assert.equal(status, 0, `exit 0 (stderr: ${io.err})`);
    const events = io.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const rotated = events.find((e) => e.type === 'rotated')!;
    assert.equal(rotated.oldKid, current.kidHex);
    assert.equal(rotated.devices, 3);
    assert.deepEqual(
      events
        .filter((e) => e.type === 'moved')
        .map((e) => e.deviceId)
        .sort(),
      ids,
    );
    const progress = events.filter((e) => e.type === 'progress');
    assert.deepEqual(
      progress.map((e) => e.moved),
      [0, 1, 2, 3],
      'one progress line at the start and one per device moved',
    );
    assert.equal(progress.at(-1)!.pending, 0);
    const retired = events.at(-1)!;
    assert.deepEqual([retired.type, retired.reason, retired.oldKid], ['retired', 'all-moved', current.kidHex]);

    // The old key is gone (only its certificate kept); the service opens only the new one.
    const keys = loadCloudKeys(crypto, fixture.dataDir);
    assert.deepEqual([...keys.keys()], [rotated.newKid]);
    assert.equal(existsSync(join(fixture.dataDir, 'cloud-keys', 'retired', `${current.kidHex}.key`)), false);
    assert.equal(existsSync(join(fixture.dataDir, 'cloud-keys', 'ended', `${current.kidHex}.pem`)), true);

    // The fleet keeps sending, under sessions sealed to the new key.
    const stored = await service.store.countPayloads('fleet-1');
    await untilAsync('more data from fleet-1', async () => (await service.store.countPayloads('fleet-1')) > stored + 3);
    for (const d of devices) assert.equal(d.app.state, 'sending');

    // A key message sealed to the retired key (its leaked private key, say) no longer opens.
    const refusals: string[] = [];
    const stop = service.onEvent((e) => {
      if (e.type === 'rejected') refusals.push(e.reason);
    });
    await until(
      () =>
        serviceLog
          .lines()
          .some(
            (l) => l.event === 'cloud-keys-reloaded' && Array.isArray(l.removed) && l.removed.includes(current.kidHex),
          ),
      'the service dropped the retired key',
      60_000,
    );
    const straggler = await makeDevice(fixture, 'straggler-1');
    const pub = await connectPublisher(broker.url, 'rotate-test-pub');
    try {
      await pub.key(straggler, straggler.keyMessage(1));
      await until(() => refusals.includes('unknown-recipient'), 'the retired key refused', 120_000);
    } finally {
      stop();
      await pub.close();
    }
  });

  test('a retired key is no longer loaded after its deadline', async () => {
    const dir = join(tmp, 'deadline');
    await makeCloudDataDir(dir, 'deadline CA');
    const before = [...loadCloudKeys(crypto, dir).keys()];
    const rotated = await cloudKeygen(crypto, dir, { rotate: true, retireAt: new Date(Date.now() + 60_000) });
    assert.deepEqual([...loadCloudKeys(crypto, dir).keys()].sort(), [...before, rotated.kidHex].sort());
    assert.deepEqual([...loadCloudKeys(crypto, dir, Date.now() + 61_000).keys()], [rotated.kidHex]);
    const keys = loadCloudKeys(crypto, dir);
    assert.ok(
      keys.get(rotated.kidHex)!.notBefore > keys.get(before[0]!)!.notBefore,
      'the new certificate is newer (notBefore) than the one it replaces',
    );
  });
});
