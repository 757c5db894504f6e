/**
 * The device binding of the key message (docs/PROTOCOL.md §7 "Device binding"), end to end through
 * the real cloud service (SQLite, aedes): someone holding device B's private key takes device A's
 * captured key message, re-signs its COSE_Encrypt with B's key and certificate, and publishes it on
 * B's session topic, then copies A's data messages onto B's data topic. The recipient's KDF context
 * names the device (PartyU identity = certificate CN), so the session does not unwrap as B's:
 * `unwrap-failed`, nothing stored under B, and A's own session is untouched.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CloudService, startCloudService } from '../../cloud/service/service.js';
import type { DeliveredPayload } from '../../cloud/telemetry/payload.js';
import { decodeSign1, makeSign1 } from '../../src/cose/sign1.js';
import { startBroker, type TestBroker } from '../fixtures/broker.js';
import {
  type CloudFixture,
  captureLog,
  connectPublisher,
  crypto,
  makeCloudDataDir,
  makeDevice,
  type Publisher,
  type TestDevice,
  until,
} from './service-fixture.js';

const PENDING_TTL_MS = 1000;

/** `keyMessage`'s COSE_Encrypt, untouched, in a COSE_Sign1 made with `signer`'s key and certificate. */
function resignAs(signer: TestDevice, keyMessage: Uint8Array): Uint8Array {
  const sign1 = decodeSign1(keyMessage, { requireTag: true });
  const prot = new Map(sign1.protected as Map<number, unknown>);
  prot.set(33, signer.certificate);
  return makeSign1(crypto, signer.key, { protected: prot, payload: sign1.payload! });
}

describe('cloud service: a key message re-signed by another device', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-binding-'));
  let fixture: CloudFixture;
  let broker: TestBroker;
  let service: CloudService;
  let pub: Publisher;
  const delivered: DeliveredPayload[] = [];
  const log = captureLog('info');
  const rejected = (reason: string, kind: string) => service.metrics.rejected.get({ kind, reason });
  const deliveredFor = (id: string) => delivered.filter((p) => p.deviceId === id);

  before(async () => {
    [fixture, broker] = await Promise.all([makeCloudDataDir(join(tmp, 'data')), startBroker()]);
    service = await startCloudService({
      brokerUrl: broker.url,
      dataDir: fixture.dataDir,
      store: `sqlite:${join(tmp, 'service.db')}`,
      logger: log.logger,
      pending: { ttlMs: PENDING_TTL_MS },
      rekeyIntervalMs: 60_000,
      clientId: 'svc-binding',
      onPayload: (p) => {
        delivered.push(p);
      },
    });
    pub = await connectPublisher(broker.url, 'pub-binding');
  });
  after(async () => {
    await pub?.close();
    await service?.stop();
    await broker?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test("B's key re-signs A's key message on B's topic: unwrap-failed, A's data never stored as B's", async () => {
    const a = await makeDevice(fixture, 'bind-a');
    const b = await makeDevice(fixture, 'bind-b');
    await pub.key(a, a.keyMessage(1));
    await pub.data(a, a.data(1, 0));
    await until("A's seq 0", () => deliveredFor('bind-a').length === 1);

    const before = rejected('unwrap-failed', 'session');
    await pub.key(b, resignAs(b, a.keyMessage(1)));
    await until(
      "the re-signed key message refused as unwrap-failed (before the device binding it was stored as B's session)",
      () => rejected('unwrap-failed', 'session') > before,
      60_000,
    );
    const line = log.lines().find((l) => l.event === 'rejected' && l.reason === 'unwrap-failed');
    assert.equal(line?.deviceId, 'bind-b', JSON.stringify(line));
    assert.equal(line?.kind, 'session');

    // A's data copied onto B's topic: no session of B opens it; it waits, then expires as unknown-kid.
    const expired = rejected('unknown-kid', 'data');
    for (const seq of [1, 2, 3]) await pub.data(b, a.data(1, seq));
    await until('the copies expired as unknown-kid', () => rejected('unknown-kid', 'data') >= expired + 3, 120_000);
    assert.equal(deliveredFor('bind-b').length, 0, "nothing delivered as B's");
    assert.equal(await service.store.countPayloads('bind-b'), 0, "nothing stored as B's");
    assert.equal(await service.store.getDevice('bind-b'), undefined, 'B has no kid floor from A');

    // A's own session is untouched.
    for (const seq of [1, 2, 3]) await pub.data(a, a.data(1, seq));
    await until("A's seq 1-3", () => deliveredFor('bind-a').length === 4);
    assert.equal(await service.store.countPayloads('bind-a'), 4);
    assert.deepEqual(
      deliveredFor('bind-a').map((p) => p.seq),
      [0, 1, 2, 3],
    );
  });
});
