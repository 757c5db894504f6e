/**
 * The cloud service (cloud/service) end to end through a real broker (aedes, in this process),
 * the same suite on both stores (SQLite in a temporary file, PostgreSQL from
 * test/fixtures/postgres.ts): devices' real key and data messages (src/profile) from a data
 * directory made as `ca init` + `cloud keygen` leave it; delivery to handlers, the store and
 * --out; duplicates, replays, stale and rolled-back key messages and the operator's kid reset;
 * data before its key message; re-key requests for unknown kids; every forgery and malformed
 * message refused with its reason while the service keeps serving; /metrics and /health.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { main } from '../../cli/main.js';
import { cloudKeygen, loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { addRevocation } from '../../cloud/pki/revocation.js';
import { initCa } from '../../cloud/pki/setup.js';
import { type CloudService, startCloudService } from '../../cloud/service/service.js';
import type { DeliveredPayload } from '../../cloud/telemetry/payload.js';
import { toHex } from '../../src/bytes.js';
import { decode, encode, Tag } from '../../src/cbor/index.js';
import { decodeSign1, makeSign1 } from '../../src/cose/sign1.js';
import { openControlMessage } from '../../src/profile/control.js';
import { encodeKid, encodePartialIv } from '../../src/profile/counter.js';
import { topic } from '../../src/profile/topics.js';
import { startBroker, type TestBroker } from '../fixtures/broker.js';
import { startPostgres, type TestPostgres } from '../fixtures/postgres.js';
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

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-service-'));
let pg: TestPostgres | undefined;
let fixture: CloudFixture;
/** A second CA (another data directory): its certificates are not trusted by the service. */
let otherCa: Awaited<ReturnType<typeof initCa>>['ca'];

before(async () => {
  [pg, fixture] = await Promise.all([startPostgres(), makeCloudDataDir(join(tmp, 'data'))]);
  otherCa = (await initCa(crypto, join(tmp, 'other-ca'), { name: 'another CA' })).ca;
});
after(async () => {
  await pg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const PENDING_TTL_MS = 1500;

interface Backend {
  name: 'sqlite' | 'postgres';
  url(): Promise<string>;
}
let files = 0;
const backends: Backend[] = [
  { name: 'sqlite', url: async () => `sqlite:${join(tmp, `service-${++files}.db`)}` },
  { name: 'postgres', url: () => pg!.createDatabase() },
];

/** Re-signs a key message after changing its COSE_Encrypt (or its protected header) with the device key. */
function resign(
  device: TestDevice,
  keyMessage: Uint8Array,
  change: { encrypt?: (e: unknown[]) => void; protected?: (p: Map<number, unknown>) => void },
): Uint8Array {
  const sign1 = decodeSign1(keyMessage, { requireTag: true });
  let payload = sign1.payload!;
  if (change.encrypt) {
    const tag = decode(payload, { allowTags: 'any' }) as Tag;
    change.encrypt(tag.value as unknown[]);
    payload = encode(tag);
  }
  const prot = new Map(sign1.protected as Map<number, unknown>);
  change.protected?.(prot);
  return makeSign1(crypto, device.key, { protected: prot, payload });
}

for (const backend of backends) {
  describe(`cloud service with ${backend.name} on aedes`, () => {
    let broker: TestBroker;
    let service: CloudService;
    let pub: Publisher;
    let control: MqttClient;
    const controls: { topic: string; bytes: Uint8Array }[] = [];
    const delivered: DeliveredPayload[] = [];
    const log = captureLog('info');
    const out = join(tmp, `out-${backend.name}.jsonl`);
    let storeUrl: string;

    const rejected = (reason: string, kind?: string) =>
      kind === undefined
        ? (service.metrics.rejectedByReason()[reason] ?? 0)
        : service.metrics.rejected.get({ kind, reason });
    const deliveredFor = (id: string) => delivered.filter((p) => p.deviceId === id);
    async function expectRejected(reason: string, kind: string, send: () => Promise<unknown>): Promise<void> {
      const before = rejected(reason, kind);
      await send();
      await until(`a ${kind} message rejected as ${reason}`, () => rejected(reason, kind) > before);
    }
    /**
     * Gets a re-key request sent to a new device (data under a kid below its kid floor) and waits
     * for it on the control topic: whatever the service published before it has arrived.
     */
    async function controlProbe(tag: string): Promise<void> {
      const device = await makeDevice(fixture, `probe-${tag}`);
      await pub.key(device, device.keyMessage(2));
      await pub.data(device, device.data(2, 0));
      await until(`a payload from probe-${tag}`, () => deliveredFor(device.id).length === 1);
      await pub.data(device, device.data(1, 0));
      await until(`the re-key request to probe-${tag}`, () =>
        controls.some((c) => c.topic === topic('control', device.id)),
      );
    }
    /** Sends one good message through and waits for it: the service still serves. */
    async function stillServing(tag: string): Promise<void> {
      const device = await makeDevice(fixture, `alive-${tag}`);
      await pub.key(device, device.keyMessage(1));
      await pub.data(device, device.data(1, 0));
      await until(`a payload from alive-${tag}`, () => deliveredFor(device.id).length === 1);
    }

    before(async () => {
      broker = await startBroker();
      storeUrl = await backend.url();
      service = await startCloudService({
        brokerUrl: broker.url,
        dataDir: fixture.dataDir,
        store: storeUrl,
        out,
        http: { port: 0 },
        logger: log.logger,
        pending: { ttlMs: PENDING_TTL_MS },
        rekeyIntervalMs: 60_000,
        clientId: `svc-${backend.name}`,
        onPayload: (p) => {
          delivered.push(p);
        },
      });
      pub = await connectPublisher(broker.url, `pub-${backend.name}`);
      control = await mqtt.connectAsync(broker.url, { clientId: `ctl-${backend.name}`, protocolVersion: 4 });
      await control.subscribeAsync(`cose-flow/v1/+/control`, { qos: 1 });
      control.on('message', (name, bytes) => controls.push({ topic: name, bytes: new Uint8Array(bytes) }));
    });
    after(async () => {
      await control?.endAsync();
      await pub?.close();
      await service?.stop();
      await broker?.close();
    });

    test('delivers each payload once: to handlers, the store and --out, decoded', async () => {
      const device = await makeDevice(fixture, 'sensor-1');
      await pub.key(device, device.keyMessage(1));
      for (let seq = 0; seq < 20; seq++) {
        await pub.data(
          device,
          device.data(
            1,
            seq,
            new Map<string, unknown>([
              ['t', 20 + seq / 10],
              ['seq', seq],
            ]),
          ),
        );
      }
      await until('20 payloads', () => deliveredFor('sensor-1').length === 20);
      const got = deliveredFor('sensor-1');
      assert.deepEqual(
        got.map((p) => p.seq).sort((a, b) => a - b),
        [...Array(20).keys()],
      );
      assert.equal(got[0]!.kidHex, '01');
      assert.ok(got[0]!.receivedAt instanceof Date);
      assert.equal(await service.store.countPayloads('sensor-1'), 20);
      assert.equal((await service.store.getDevice('sensor-1'))?.kidFloor?.[0], 1);

      await service.outFile!.flush();
      const lines = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.deviceId === 'sensor-1');
      assert.equal(lines.length, 20);
      const line = lines.find((l) => l.seq === 3)!;
      assert.deepEqual(Object.keys(line), ['deviceId', 'kid', 'seq', 'receivedAt', 'payloadHex', 'payload']);
      assert.equal(line.kid, '01');
      assert.match(line.receivedAt as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.deepEqual(line.payload, { t: 20.3, seq: 3 });
      assert.equal(
        line.payloadHex,
        toHex(
          encode(
            new Map<string, unknown>([
              ['t', 20.3],
              ['seq', 3],
            ]),
          ),
        ),
      );

      // One structured line for the new session; never key material.
      const session = log.lines().find((l) => l.event === 'session' && l.deviceId === 'sensor-1');
      assert.equal(session?.kid, '01');
      const secret = device.session(1);
      for (const s of [toHex(secret.key), toHex(secret.baseIv)])
        assert.ok(!log.text().toLowerCase().includes(s), 'the log never holds a session key or Base IV');
    });

    test('duplicates (a re-sent key message, QoS 1 redelivery) are acknowledged, not delivered again', async () => {
      const device = await makeDevice(fixture, 'dup-1');
      await pub.key(device, device.keyMessage(1));
      for (let seq = 0; seq < 5; seq++) await pub.data(device, device.data(1, seq));
      await until('5 payloads', () => deliveredFor('dup-1').length === 5);
      const keyDupes = service.metrics.duplicates.get({ kind: 'session' });
      const dataDupes = service.metrics.duplicates.get({ kind: 'data' });
      await pub.key(device, device.keyMessage(1)); // byte-identical
      await pub.data(device, device.data(1, 2)); // the same seq again (GCM is deterministic: same bytes)
      await pub.data(device, device.data(1, 4));
      await until('3 duplicates', () => {
        return (
          service.metrics.duplicates.get({ kind: 'session' }) === keyDupes + 1 &&
          service.metrics.duplicates.get({ kind: 'data' }) === dataDupes + 2
        );
      });
      // A re-sent key message whose unsigned parts changed (the unprotected bucket) is still a duplicate.
      const sign1 = decodeSign1(device.keyMessage(1), { requireTag: true });
      const altered = encode(
        new Tag([sign1.protectedBytes, new Map([[99, 'added by a broker']]), sign1.payload, sign1.signature], 18),
      );
      await pub.key(device, altered);
      await until(
        'the altered copy counted as a duplicate',
        () => service.metrics.duplicates.get({ kind: 'session' }) === keyDupes + 2,
      );
      await pub.data(device, device.data(1, 5));
      await until('seq 5', () => deliveredFor('dup-1').length === 6);
      assert.equal(await service.store.countPayloads('dup-1'), 6);
    });

    test('a replay older than the window is refused; duplicates and reordering inside it are not', async () => {
      const device = await makeDevice(fixture, 'replay-1');
      await pub.key(device, device.keyMessage(1));
      for (let seq = 0; seq < 70; seq++) await pub.data(device, device.data(1, seq));
      await until('70 payloads', () => deliveredFor('replay-1').length === 70);
      await expectRejected('replay', 'data', () => pub.data(device, device.data(1, 3)));
      const dataDupes = service.metrics.duplicates.get({ kind: 'data' });
      await pub.data(device, device.data(1, 69)); // inside the window: a duplicate, not a replay
      await pub.data(device, device.data(1, 60));
      // Both decided (not a fixed wait): then none of them was delivered again.
      await until(
        '69 and 60 taken as duplicates',
        () => service.metrics.duplicates.get({ kind: 'data' }) >= dataDupes + 2,
      );
      assert.equal(deliveredFor('replay-1').length, 70);
      // Out of order but inside the window: accepted.
      await pub.data(device, device.data(1, 75));
      await pub.data(device, device.data(1, 72));
      await until('72 and 75', () => deliveredFor('replay-1').length === 72);
    });

    test('key messages: kid-rollback, kid-reused, and the operator reset for a re-flashed device', async () => {
      const device = await makeDevice(fixture, 'reflash-1');
      await pub.key(device, device.keyMessage(2));
      await pub.data(device, device.data(2, 0));
      await until('kid 2 data', () => deliveredFor('reflash-1').length === 1);
      await expectRejected('kid-rollback', 'session', () => pub.key(device, device.keyMessage(1)));
      await expectRejected('kid-reused', 'session', () => pub.key(device, device.otherKeyMessage(2)));
      const line = log.lines().find((l) => l.reason === 'kid-rollback' && l.deviceId === 'reflash-1');
      assert.equal(line?.kid, '01');
      assert.equal(line?.kind, 'session');

      // The device is re-flashed: its kid counter starts at 1 again. The operator resets the floor.
      const io = { out: '', err: '' };
      const code = await main(['cloud', 'reset-kid', 'reflash-1', '--store', storeUrl, '--data-dir', fixture.dataDir], {
        stdout: (t) => {
          io.out += t;
        },
        stderr: (t) => {
          io.err += t;
        },
        stdin: () => (async function* () {})(),
      });
      assert.equal(code, 0, io.err);
      assert.match(io.out, /reflash-1/);
      const fresh = await makeDevice(fixture, 'reflash-1');
      await pub.key(fresh, fresh.keyMessage(1));
      await pub.data(fresh, fresh.data(1, 0));
      await pub.data(fresh, fresh.data(1, 1));
      await until('kid 1 after the reset', () => deliveredFor('reflash-1').length === 3);
      assert.equal((await service.store.getDevice('reflash-1'))?.epoch, 1);
    });

    test('data before its key message is held and delivered once the key message arrives', async () => {
      const device = await makeDevice(fixture, 'early-1');
      for (let seq = 0; seq < 5; seq++) await pub.data(device, device.data(1, seq));
      await until('5 held', () => service.pendingCount() === 5);
      assert.equal(deliveredFor('early-1').length, 0);
      await pub.key(device, device.keyMessage(1));
      await until('5 payloads', () => deliveredFor('early-1').length === 5);
      assert.equal(service.pendingCount(), 0);
      assert.deepEqual(
        deliveredFor('early-1').map((p) => p.seq),
        [0, 1, 2, 3, 4],
        'held data runs in sequence-number order',
      );
    });

    test('an unknown kid gets a signed re-key request on the control topic, rate-limited per device', async () => {
      const device = await makeDevice(fixture, 'lost-1');
      await pub.key(device, device.keyMessage(3));
      await pub.data(device, device.data(3, 0));
      await until('kid 3 data', () => deliveredFor('lost-1').length === 1);
      // kid 2 is below the floor and has no session: unknown-kid at once.
      await expectRejected('unknown-kid', 'data', () => pub.data(device, device.data(2, 0)));
      await until('a control message', () => controls.some((c) => c.topic === topic('control', 'lost-1')));
      const request = controls.find((c) => c.topic === topic('control', 'lost-1'))!;
      const opened = openControlMessage(crypto, request.bytes, {
        cloudPublicKeys: [fixture.cloudPublicKey],
        deviceId: 'lost-1',
      });
      assert.equal(opened.request, 'rekey');
      assert.deepEqual([...opened.kid], [2]);
      assert.ok(Math.abs(opened.issuedAt - Date.now() / 1000) < 60);
      assert.throws(() =>
        openControlMessage(crypto, request.bytes, { cloudPublicKeys: [fixture.cloudPublicKey], deviceId: 'lost-2' }),
      );
      // More unknown-kid data within the interval: refused, no second request. The requester's
      // decision for it (rate-limited) is waited for, not a fixed wait: no second request was made.
      const limited = service.metrics.rekeyRequests.get({ outcome: 'rate-limited' });
      await expectRejected('unknown-kid', 'data', () => pub.data(device, device.data(2, 1)));
      await until(
        'the second request rate-limited',
        () => service.metrics.rekeyRequests.get({ outcome: 'rate-limited' }) > limited,
      );
      assert.equal(controls.filter((c) => c.topic === topic('control', 'lost-1')).length, 1);
    });

    test('data whose key message never comes expires from the pending buffer as unknown-kid, with no re-key request', async () => {
      const device = await makeDevice(fixture, 'never-1');
      await pub.data(device, device.data(5, 0));
      await until('held', () => service.pendingCount() >= 1);
      await until(
        'expired',
        () => rejected('unknown-kid', 'data') > 0 && service.pendingCount() === 0,
        PENDING_TTL_MS + 3000,
      );
      // Nothing authenticated kid 5 nor the device: the cloud signs nothing for it (issue 12 §4).
      // Not a fixed wait: a re-key request the service makes after this expiry comes on the control
      // topic through the same connection, so a request for never-1 would arrive before the probe's.
      await controlProbe('never');
      assert.equal(controls.filter((c) => c.topic === topic('control', 'never-1')).length, 0);
    });

    test("certificates: another CA, expired, revoked, another device's; the service keeps serving", async () => {
      const foreign = await makeDevice(fixture, 'foreign-1', { ca: otherCa });
      await expectRejected('bad-certificate', 'session', () => pub.key(foreign, foreign.keyMessage(1)));
      const day = 24 * 3600_000;
      const expired = await makeDevice(fixture, 'expired-1', {
        notBefore: new Date(Date.now() - 3 * day),
        notAfter: new Date(Date.now() - day),
      });
      await expectRejected('bad-certificate', 'session', () => pub.key(expired, expired.keyMessage(1)));
      const revoked = await makeDevice(fixture, 'revoked-1');
      await pub.key(revoked, revoked.keyMessage(1));
      await pub.data(revoked, revoked.data(1, 0));
      await until('accepted before the revocation', () => deliveredFor('revoked-1').length === 1);
      await addRevocation(fixture.dataDir, fixture.ca, {
        serial: revoked.serialHex,
        deviceId: 'revoked-1',
        reason: 'keyCompromise',
      });
      await expectRejected('bad-certificate', 'session', () => pub.key(revoked, revoked.keyMessage(2)));
      const a = await makeDevice(fixture, 'dev-a');
      await expectRejected('device-mismatch', 'session', () => pub.key('dev-b', a.keyMessage(1)));
      const lines = log.lines().filter((l) => l.event === 'rejected' && l.reason === 'bad-certificate');
      assert.ok(lines.some((l) => l.deviceId === 'revoked-1' && /revoked/.test(String(l.detail))));
      assert.ok(lines.some((l) => l.deviceId === 'expired-1' && /expired/.test(String(l.detail))));
      await stillServing('certs');
    });

    test('forged and malformed messages: each refused with its reason, and the service keeps serving', async () => {
      const device = await makeDevice(fixture, 'forge-1');
      await pub.key(device, device.keyMessage(1));
      await pub.data(device, device.data(1, 0));
      await until('seq 0', () => deliveredFor('forge-1').length === 1);

      // An ephemeral key that is not on P-256 (invalid-curve attack), correctly signed by the device.
      const invalidCurve = resign(device, device.keyMessage(2), {
        encrypt: (e) => {
          const recipient = (e[3] as unknown[][])[0]!;
          const ephemeral = (recipient[1] as Map<number, Map<number, unknown>>).get(-1)!;
          const y = new Uint8Array(ephemeral.get(-3) as Uint8Array);
          y[31]! ^= 0x01;
          ephemeral.set(-3, y);
        },
      });
      await expectRejected('bad-key', 'session', () => pub.key(device, invalidCurve));
      // alg substitution: ES384 named in the Sign1, A256GCM in a data message.
      const es384 = resign(device, device.keyMessage(2), { protected: (p) => p.set(1, -35) });
      await expectRejected('unsupported-alg', 'session', () => pub.key(device, es384));
      const a256 = encode(
        new Tag(
          [
            encode(
              new Map<number, unknown>([
                [1, 3],
                [4, encodeKid(1)],
                [6, encodePartialIv(1)],
              ]),
            ),
            new Map(),
            crypto.randomBytes(40),
          ],
          16,
        ),
      );
      await expectRejected('unsupported-alg', 'data', () => pub.data(device, a256));
      // A flipped ciphertext byte, and a valid message moved to another device's topic.
      const flipped = device.data(1, 1);
      flipped[flipped.length - 1]! ^= 0x80;
      await expectRejected('decrypt-failed', 'data', () => pub.data(device, flipped));
      // A signature over other content.
      const badSig = device.keyMessage(3).slice();
      badSig[badSig.length - 5]! ^= 0x01;
      await expectRejected('bad-signature', 'session', () => pub.key(device, badSig));
      // Truncated, oversized, garbage, an empty message, a tag in the wrong place.
      const key = device.keyMessage(4);
      await expectRejected('bad-cbor', 'session', () => pub.key(device, key.subarray(0, key.length - 10)));
      await expectRejected('too-large', 'data', () => pub.data(device, new Uint8Array(70_000)));
      await expectRejected('too-large', 'session', () => pub.key(device, new Uint8Array(70_000)));
      await expectRejected('bad-cbor', 'data', () => pub.data(device, new TextEncoder().encode('hello world')));
      await expectRejected('bad-cbor', 'data', () => pub.data(device, new Uint8Array(0)));
      await expectRejected('bad-tag', 'data', () => pub.data(device, device.keyMessage(1)));
      await expectRejected('bad-tag', 'session', () => pub.key(device, device.data(1, 2)));
      // Not a cose-flow topic device id.
      await expectRejected('bad-topic', 'other', () => pub.raw('cose-flow/v1/bad id!/data', device.data(1, 3)));

      // Nothing of that reached the store or the handlers; the session still works.
      await pub.data(device, device.data(1, 1));
      await until('seq 1', () => deliveredFor('forge-1').length === 2);
      assert.equal(await service.store.countPayloads('forge-1'), 2);
      const lines = log.lines().filter((l) => l.event === 'rejected' && l.deviceId === 'forge-1');
      for (const l of lines) {
        assert.equal(typeof l.reason, 'string');
        assert.equal(typeof l.kind, 'string');
      }
      assert.ok(lines.some((l) => l.reason === 'decrypt-failed' && l.kid === '01' && l.seq === 1));
      await stillServing('forgeries');
    });

    test('/metrics and /health', async () => {
      const http = service.http!;
      // A reading time-stamped 2 s ago: the reading-age histogram (sampled) sees it.
      const aged = await makeDevice(fixture, 'aged-1');
      await pub.key(aged, aged.keyMessage(1));
      await pub.data(aged, aged.data(1, 0, new Map<string, unknown>([['t', Date.now() - 2000]])));
      await until('the aged reading', () => deliveredFor('aged-1').length === 1);
      const metrics = await (await fetch(`${http.url}/metrics`)).text();
      assert.match(metrics, /^cose_flow_reading_age_seconds_bucket\{le="1"\} 0$/m);
      assert.match(metrics, /^cose_flow_reading_age_seconds_bucket\{le="\+Inf"\} 1$/m);
      const ageSum = Number(/^cose_flow_reading_age_seconds_sum (\S+)$/m.exec(metrics)?.[1]);
      assert.ok(ageSum >= 2 && ageSum < 60, `reading age ${ageSum} s`);
      assert.match(metrics, /^# TYPE cose_flow_accepted_total counter$/m);
      assert.match(metrics, /^cose_flow_accepted_total\{kind="data"\} \d+$/m);
      assert.match(metrics, /^cose_flow_rejected_total\{kind="data",reason="replay"\} [1-9]\d*$/m);
      assert.match(metrics, /^cose_flow_delivery_latency_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
      assert.match(metrics, /^cose_flow_pending_messages 0$/m);
      assert.match(metrics, /^cose_flow_store_sessions [1-9]\d*$/m);
      const health = await fetch(`${http.url}/health`);
      assert.equal(health.status, 200);
      const body = (await health.json()) as { status: string; mqtt: { connected: boolean } };
      assert.equal(body.status, 'ok');
      assert.equal(body.mqtt.connected, true);
      assert.equal((await fetch(`${http.url}/nope`)).status, 404);
    });

    test('the dashboard on the same endpoint follows what the service stored and refused', async () => {
      const http = service.http!;
      const page = await fetch(`${http.url}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<title>cose-flow — live<\/title>/);
      const state = (await (await fetch(`${http.url}/api/state`)).json()) as {
        totals: { accepted: number; rejected: number };
        devices: { deviceId: string; kid: string | null }[];
        rejections: Record<string, number>;
      };
      assert.equal(state.totals.accepted, service.metrics.accepted.get({ kind: 'data' }));
      assert.ok(state.rejections.replay! >= 1 && state.rejections['decrypt-failed']! >= 1, JSON.stringify(state));
      assert.ok(state.devices.some((d) => d.deviceId === 'forge-1' && d.kid !== null));
    });
  });
}

describe('cloud service: key rotation while running, and a wrong storage key', () => {
  test('a rotated cloud key is picked up; a session that does not open is left for redelivery', async () => {
    const own = await makeCloudDataDir(join(tmp, 'rotation-data'), 'rotation test CA');
    const broker = await startBroker();
    const store = `sqlite:${join(tmp, 'rotation.db')}`;
    const delivered: DeliveredPayload[] = [];
    const start = (clientId: string, storageKey?: Uint8Array) =>
      startCloudService({
        brokerUrl: broker.url,
        dataDir: own.dataDir,
        store,
        clientId,
        logger: captureLog('warn').logger,
        onPayload: (p) => {
          delivered.push(p);
        },
        ...(storageKey === undefined ? {} : { storageKey }),
      });
    let service = await start('svc-rotation');
    const pub = await connectPublisher(broker.url, 'pub-rotation');
    try {
      const old = await makeDevice(own, 'rot-old');
      await pub.key(old, old.keyMessage(1));
      await pub.data(old, old.data(1, 0));
      await until('the first payload', () => delivered.length === 1);

      const rotated = await cloudKeygen(crypto, own.dataDir, { rotate: true });
      const current = [...loadCloudKeys(crypto, own.dataDir).values()].find((k) => k.current)!;
      assert.equal(current.kidHex, rotated.kidHex);
      const fresh = await makeDevice({ ...own, cloudPublicKey: current.publicKey }, 'rot-new');
      await pub.key(fresh, fresh.keyMessage(1)); // sealed to a key the service did not load at start
      await pub.data(fresh, fresh.data(1, 0));
      await pub.key(old, old.keyMessage(2)); // the retired key still opens sessions
      await pub.data(old, old.data(2, 0));
      await until('both', () => delivered.length === 3);
      assert.equal(service.metrics.rejected.entries().length, 0);
      await service.stop();

      // An instance with another storage key cannot open the stored sessions: it leaves their
      // messages unacknowledged (and says so) instead of dropping them.
      service = await start('svc-rotation-2', crypto.randomBytes(32));
      await pub.data(old, old.data(2, 1));
      await until('degraded', () => service.health().status === 'degraded');
      assert.equal((service.health().store as { unreadableSessions: number }).unreadableSessions, 1);
      assert.equal(service.metrics.rejected.entries().length, 0, 'not refused');
      await service.stop();
      // The same client id with the right key: the broker redelivers it.
      service = await start('svc-rotation-2');
      await until('redelivered and stored', () => delivered.length === 4);
      assert.equal(delivered[3]!.seq, 1);
    } finally {
      await pub.close();
      await service.stop();
      await broker.close();
    }
  });
});
