/**
 * The device application (src/device/app.ts) on the host platform against a real broker: an
 * in-process aedes broker always, and mosquitto when it is installed (required in CI). What the
 * device publishes is taken from the broker and opened the way the cloud does (node crypto).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { equal } from '../../src/bytes.js';
import { encode, Tag } from '../../src/cbor/index.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import { CredentialStore } from '../../src/device/credentials.js';
import { decodeReading } from '../../src/device/reading.js';
import { makeControlMessage } from '../../src/profile/control.js';
import { encodeKid } from '../../src/profile/counter.js';
import { sealData } from '../../src/profile/data-message.js';
import { makeKeyMessage } from '../../src/profile/key-message.js';
import { topic } from '../../src/profile/topics.js';
import { mosquittoAvailability } from '../fixtures/mosquitto.js';
import { type BrokerKind, type RestartableBroker, startAedes, startMosquitto } from './brokers.js';
import {
  CloudView,
  host,
  logged,
  makeTestPki,
  type SimDevice,
  simDevice,
  sleep,
  type TestPki,
  until,
} from './harness.js';

let pki: TestPki;
before(async () => {
  pki = await makeTestPki();
});

const mosquitto = mosquittoAvailability('the mosquitto variant of the device tests');
const kinds: { kind: BrokerKind; skip: string | false }[] = [
  { kind: 'aedes', skip: false },
  { kind: 'mosquitto', skip: mosquitto.run ? false : mosquitto.why },
];

for (const { kind, skip } of kinds) {
  describe(`device application against ${kind}`, { skip }, () => {
    let broker: RestartableBroker;
    let cloud: CloudView;
    const devices: SimDevice[] = [];
    const clients: MqttClient[] = [];

    before(async () => {
      broker = kind === 'aedes' ? await startAedes() : await startMosquitto();
      cloud = new CloudView(pki);
      broker.onPublish((name, payload) => cloud.receive(name, payload));
    });

    after(async () => {
      for (const d of devices) await d.app.stop();
      for (const c of clients) await c.endAsync(true);
      await broker.close();
    });

    async function device(deviceId: string, options: Partial<Parameters<typeof simDevice>[0]> = {}) {
      const d = await simDevice({ broker: broker.url, deviceId, pki, ...options });
      devices.push(d);
      return d;
    }

    test('key message and data arrive, byte for byte what the protocol library makes, and open with the cloud key', async () => {
      const d = await device(`${kind}-bytes`, { recordRandom: `${kind}-bytes`, config: { dataQos: 1 } });
      await d.app.start();
      await until(
        () =>
          cloud.distinct(d.deviceId).size >= 5 && [...cloud.sessions.values()].some((x) => x.deviceId === d.deviceId),
        'the key message and five data messages at the cloud',
      );
      await d.app.stop();

      const sessions = [...cloud.sessions.values()].filter((s) => s.deviceId === d.deviceId);
      assert.equal(sessions.length, 1, 'one session after boot');
      const session = sessions[0]!;
      assert.equal(session.kid, 1n, 'a new device starts at kid 1');
      // The key message, rebuilt from the same random draws with the protocol library.
      const random = d.random!;
      const at = random.draws.findIndex(
        (draw, i) =>
          equal(draw, session.session.key) && equal(random.draws[i + 1] ?? new Uint8Array(), session.session.baseIv),
      );
      assert.ok(at >= 0, 'the session key and Base IV come from the platform RNG');
      const identity = d.platform.huk.identity();
      const expected = makeKeyMessage(nobleCrypto(random.replayFrom(at + 2)), {
        deviceId: d.deviceId,
        deviceKey: identity.key,
        deviceCertificate: new CredentialStore(d.store).load()!.deviceCertificate,
        cloudPublicKey: pki.cloud.publicKey,
        session: session.session,
      });
      for (const bytes of session.keyMessages) {
        const diff = bytes.findIndex((b, i) => b !== expected[i]);
        assert.ok(
          equal(bytes, expected),
          `key message bytes differ from byte ${diff} (draws ${random.draws.map((x) => x.length)}, at ${at})`,
        );
      }
      // Every data message: what sealData makes from its payload, and a reading.
      const data = cloud.data.filter((m) => m.deviceId === d.deviceId);
      assert.ok(data.length >= 5);
      for (const m of data) {
        assert.ok(m.payload !== undefined, `data ${m.kid}/${m.seq} opens with the session key`);
        assert.ok(equal(m.bytes, sealData(host, session.session, m.seq, m.payload)), `data ${m.seq} bytes`);
        const reading = decodeReading(m.payload);
        assert.equal(typeof reading.temperature, 'number');
        assert.ok(reading.uptime >= 0);
      }
      const seqs = [...new Set(data.map((m) => m.seq))].sort((a, b) => a - b);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i),
        'sequence numbers 0, 1, 2, … without gaps at QoS 1',
      );
      assert.equal(cloud.refused.length, 0, JSON.stringify(cloud.refused));
    });

    test('broker restart during QoS 1 traffic loses nothing', async () => {
      const d = await device(`${kind}-restart`, { config: { dataQos: 1, intervalMs: 10 } });
      await d.app.start();
      await until(() => cloud.distinct(d.deviceId).size >= 10, 'data before the restart');
      await broker.stop();
      const count = (type: string) => d.events.filter((e) => e.type === type).length;
      await until(() => !d.link.connected, 'the device saw the broker go');
      // Readings go on into the offline queue: waited for, not a fixed wait (timers run late under load).
      const sealedOffline = count('sealed');
      await until(
        () => count('sealed') >= Math.max(sealedOffline + 10, 31),
        'readings sealed into the offline queue while the broker is down',
      );
      assert.ok(!d.link.connected);
      await broker.start();
      await until(() => d.app.stats.connects >= 2, 'the device reconnected', 120_000);
      const ackedAtReconnect = count('acknowledged');
      await until(() => count('acknowledged') > ackedAtReconnect, 'a message acknowledged after the reconnect');
      await d.app.stop();
      const sealed = count('sealed');
      assert.ok(sealed > 30, `readings went on (${sealed})`);
      // Every message the broker acknowledged or the device still queued is accounted for; none lost.
      const acknowledged = d.events.filter((e) => e.type === 'acknowledged');
      const missing = () => {
        const arrived = cloud.distinct(d.deviceId);
        return acknowledged.filter((e) => e.type === 'acknowledged' && !arrived.has(`${e.kid}/${e.seq}`));
      };
      await until(
        () => missing().length === 0,
        'every acknowledged message at the cloud',
        60_000, // the observer reconnects to the restarted broker with backoff; generous under a loaded CI
      ).catch((e: Error) => {
        const order = d.events.map((e) =>
          e.type === 'acknowledged' ? `a${e.seq}` : e.type === 'sealed' ? '' : e.type,
        );
        throw new Error(
          `${e.message}: missing ${JSON.stringify(missing())}; events ${order.filter(Boolean).join(' ')}`,
        );
      });
      const arrived = cloud.distinct(d.deviceId);
      for (const e of acknowledged) {
        if (e.type === 'acknowledged') assert.ok(arrived.has(`${e.kid}/${e.seq}`), `message ${e.kid}/${e.seq} arrived`);
      }
      assert.equal(acknowledged.length + d.app.queued, sealed, 'sealed = acknowledged + still queued');
      assert.ok(d.app.stats.disconnects >= 1);
    });

    test('the QoS 2 key message completes after a reconnect', async () => {
      await broker.stop();
      const d = await device(`${kind}-qos2`);
      const started = d.app.start();
      await until(() => d.app.state === 'session', 'the device in its session, waiting for its key message');
      assert.equal(d.app.stats.keyAcked, 0);
      await broker.start();
      await started;
      await until(() => d.app.state === 'sending', 'the key message acknowledged after the broker came back', 120_000);
      // (mosquitto's observer may see data before the key message: different QoS flows to it)
      const known = () => [...cloud.sessions.values()].find((s) => s.deviceId === d.deviceId);
      await until(() => cloud.distinct(d.deviceId).size >= 3 && known() !== undefined, 'data after the key message');
      const session = known();
      assert.ok(session !== undefined, 'the key message reached the cloud');
      // The observer can see a data message before the device has its PUBACK: wait for the device's side too.
      await until(() => d.events.some((e) => e.type === 'acknowledged'), 'a data message acknowledged to the device');
      const keyAcked = d.events.findIndex((e) => e.type === 'key-acked');
      const firstSent = d.events.findIndex((e) => e.type === 'acknowledged');
      assert.ok(keyAcked >= 0 && keyAcked < firstSent, 'no data before the key message completed');
      if (kind === 'aedes') {
        // aedes shows the order in which the broker accepted them; mosquitto's observer does not.
        const first = cloud.data.findIndex((m) => m.deviceId === d.deviceId);
        assert.ok(first >= 0 && cloud.data[first]!.payload !== undefined, 'the session key reached the broker first');
      }
      await d.app.stop();
    });

    test('bad control messages are ignored with a log line; the device keeps running', async () => {
      const d = await device(`${kind}-control`, {
        config: { rekey: { afterMessages: 0, afterMs: 0, seqLimit: 0xffffffff, minIntervalMs: 300 } },
      });
      await d.app.start();
      await until(() => d.app.state === 'sending', 'sending');
      const controller = await mqtt.connectAsync(broker.url, { clientId: `${kind}-controller` });
      clients.push(controller);
      const controlTopic = topic('control', d.deviceId);
      const send = async (payload: Uint8Array, name = controlTopic) => {
        await controller.publishAsync(name, Buffer.from(payload), { qos: 1 });
      };
      const kid = () => encodeKid(d.app.kid!);
      const issuedAt = Math.floor(Date.now() / 1000);
      const other = host.p256Generate();
      const ignoredBefore = d.app.stats.controlIgnored;
      await send(new Uint8Array([0xde, 0xad, 0xbe, 0xef])); // garbage
      await send(
        encode(
          new Map<number, unknown>([
            [1, 'rekey'],
            [2, kid()],
            [3, issuedAt],
          ]),
        ),
      ); // unsigned payload
      await send(
        encode(
          new Tag(
            [
              encode(
                new Map([
                  [1, -7],
                  [3, 60],
                ]),
              ),
              new Map(),
              encode(
                new Map<number, unknown>([
                  [1, 'rekey'],
                  [2, kid()],
                  [3, issuedAt],
                ]),
              ),
              new Uint8Array(64),
            ],
            18,
          ),
        ),
      ); // zero signature
      await send(makeControlMessage(host, other, { deviceId: d.deviceId, request: 'rekey', kid: kid(), issuedAt })); // another key
      await send(
        makeControlMessage(host, pki.cloud.key, { deviceId: 'someone-else', request: 'rekey', kid: kid(), issuedAt }),
      ); // for another device
      await send(
        makeControlMessage(host, pki.cloud.key, {
          deviceId: d.deviceId,
          request: 'rekey',
          kid: encodeKid(d.app.kid! + 7),
          issuedAt,
        }),
      ); // stale / wrong kid
      await until(() => d.app.stats.controlIgnored - ignoredBefore >= 6, 'six control messages ignored');
      assert.equal(d.app.stats.controlAccepted, 0);
      const ignored = logged(d.log.entries, 'control-ignored');
      assert.ok(ignored.length >= 6);
      assert.ok(logged(d.log.entries, 'control-ignored', 'stale-kid').length >= 1, 'the stale kid is named in the log');
      assert.ok(logged(d.log.entries, 'control-ignored', 'bad-signature').length >= 3, 'bad signatures are named');
      assert.equal(d.app.stats.rekeys, 0, 'no re-key from a bad message');
      const before = d.app.stats.acknowledged;
      await until(() => d.app.stats.acknowledged > before + 3, 'data still flows');

      // A valid request for the current kid re-keys; the same request again does nothing (new kid); a
      // second valid one at once is rate-limited.
      const firstKid = d.app.kid!;
      const rekey = makeControlMessage(host, pki.cloud.key, {
        deviceId: d.deviceId,
        request: 'rekey',
        kid: kid(),
        issuedAt,
      });
      await send(rekey);
      await until(() => d.app.kid === firstKid + 1, 'a re-key on request');
      await send(rekey); // replayed: names the old kid
      await send(
        makeControlMessage(host, pki.cloud.key, { deviceId: d.deviceId, request: 'rekey', kid: kid(), issuedAt }),
      );
      await until(() => logged(d.log.entries, 'control-ignored', 'rate-limited').length >= 1, 'rate-limited');
      assert.ok(logged(d.log.entries, 'control-ignored', 'stale-kid').length >= 2, 'the replay is ignored as stale');
      assert.equal(d.app.kid, firstKid + 1);

      // A new cloud certificate, announced by the current cloud key: checked against the CA, newer
      // than the one in use, used from the next session.
      const next = await pki.newCloud();
      cloud.addKey(next);
      await send(
        makeControlMessage(host, pki.cloud.key, {
          deviceId: d.deviceId,
          request: 'cloud-certificate',
          kid: kid(),
          issuedAt,
          cloudCertificate: next.certificate,
        }),
      );
      await until(() => d.app.stats.controlAccepted >= 2, 'the certificate accepted');
      await sleep(350); // past the re-key rate limit
      const kidBefore = d.app.kid!;
      await send(makeControlMessage(host, next.key, { deviceId: d.deviceId, request: 'rekey', kid: kid(), issuedAt }));
      await until(
        () => d.app.kid === kidBefore + 1 && d.app.state === 'sending',
        'a session sealed to the new cloud key',
      );
      await until(
        () => cloud.sessions.has(`${d.deviceId}/${kidBefore + 1}`),
        'the cloud opened the new session with the new cloud key',
      );
      // A certificate that is not from the CA is refused.
      const rogue = host.p256Generate();
      await send(
        makeControlMessage(host, rogue, {
          deviceId: d.deviceId,
          request: 'cloud-certificate',
          kid: kid(),
          issuedAt,
          cloudCertificate: pki.caDer,
        }),
      );
      await until(
        () => d.log.entries.some((e) => e.event === 'control-ignored' && e.fields.request === 'cloud-certificate'),
        'the rogue certificate ignored',
      );
      assert.equal(d.app.state, 'sending');
      await controller.endAsync();
      await d.app.stop();
    });
  });
}
