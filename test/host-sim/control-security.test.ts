/**
 * Control messages under attack (issue 12 §3 and §4), the device application against an aedes
 * broker:
 * - rotation cannot be rolled back: a new cloud certificate is taken only when it is issued by the
 *   device's CA, newer (notBefore) than the one in use, and announced by the CURRENT cloud key —
 *   never by its own key; once the device moved to a new key the old one signs nothing it believes;
 * - a flood of bogus control messages costs the device a bounded number of signature checks: size,
 *   request and kid are checked first, verifications are capped per interval.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { parseCertificate } from '../../cloud/pki/certificate.js';
import { equal } from '../../src/bytes.js';
import { encode, Tag } from '../../src/cbor/index.js';
import { makeControlMessage } from '../../src/profile/control.js';
import { encodeKid } from '../../src/profile/counter.js';
import { topic } from '../../src/profile/topics.js';
import { type RestartableBroker, startAedes } from './brokers.js';
import {
  type CloudIdentity,
  CloudView,
  cloudIdentityAt,
  host,
  logged,
  makeTestPki,
  type SimDevice,
  simDevice,
  type TestPki,
  until,
} from './harness.js';

let pki: TestPki;
let broker: RestartableBroker;
let controller: MqttClient;
let cloud: CloudView;
const devices: SimDevice[] = [];

before(async () => {
  pki = await makeTestPki();
  broker = await startAedes();
  cloud = new CloudView(pki);
  broker.onPublish((name, payload) => cloud.receive(name, payload));
  controller = await mqtt.connectAsync(broker.url, { clientId: `controller-${Date.now()}` });
});

after(async () => {
  for (const d of devices) await d.app.stop();
  await controller.endAsync(true);
  await broker.close();
});

async function started(deviceId: string, config: Parameters<typeof simDevice>[0]['config'] = {}) {
  const d = await simDevice({ broker: broker.url, deviceId, pki, config });
  devices.push(d);
  await d.app.start();
  await until(() => d.app.state === 'sending', `${deviceId} sending`);
  return d;
}

const send = (d: SimDevice, payload: Uint8Array) =>
  controller.publishAsync(topic('control', d.deviceId), Buffer.from(payload), { qos: 1 });

/** The cloud key id the device's latest session was sealed to (as the cloud saw it). */
function sealedTo(d: SimDevice): Uint8Array | undefined {
  const session = cloud.sessions.get(`${d.deviceId}/${d.app.kid}`);
  if (session === undefined) return undefined;
  for (const key of [pki.cloud, ...extraKeys]) {
    if (cloud.sessions.has(`${d.deviceId}/${d.app.kid}`) && openedWith(session.keyMessages[0]!, key)) return key.kid;
  }
  return undefined;
}

const extraKeys: CloudIdentity[] = [];
function openedWith(keyMessage: Uint8Array, key: CloudIdentity): boolean {
  // The recipient's cloud key id is in clear in the key message: look for its 8 bytes.
  for (let i = 0; i + key.kid.length <= keyMessage.length; i++) {
    if (equal(keyMessage.subarray(i, i + key.kid.length), key.kid)) return true;
  }
  return false;
}

describe('rotation cannot be rolled back', () => {
  test('a retired, self-signed or older cloud certificate is refused; the current key announces a newer one', async () => {
    const current = parseCertificate(pki.cloud.certificate);
    // The retired cloud key: CA-issued, older than the one in use, and leaked.
    const retired = await cloudIdentityAt(pki.ca, new Date(current.notBefore.getTime() - 86_400_000));
    // A genuine newer key (the rotation), and another genuine newer one.
    const next = await cloudIdentityAt(pki.ca, new Date(current.notBefore.getTime() + 1000));
    extraKeys.push(retired, next);
    cloud.addKey(retired);
    cloud.addKey(next);
    const d = await started('rollback-1');
    const kid = () => encodeKid(d.app.kid!);
    const issuedAt = Math.floor(Date.now() / 1000);
    const announce = (signer: CloudIdentity, certificate: CloudIdentity) =>
      makeControlMessage(host, signer.key, {
        deviceId: d.deviceId,
        request: 'cloud-certificate',
        kid: kid(),
        issuedAt,
        cloudCertificate: certificate.certificate,
      });
    const rekeyBy = (signer: CloudIdentity) =>
      makeControlMessage(host, signer.key, { deviceId: d.deviceId, request: 'rekey', kid: kid(), issuedAt });

    // 1. The attack of the review: the retired certificate, signed by its own (leaked) key, then a
    //    re-key signed by it.
    let ignored = d.app.stats.controlIgnored;
    await send(d, announce(retired, retired));
    await until(() => d.app.stats.controlIgnored > ignored, 'the self-signed retired certificate ignored');
    ignored = d.app.stats.controlIgnored;
    await send(d, rekeyBy(retired));
    await until(() => d.app.stats.controlIgnored > ignored, 'the re-key by the retired key ignored');
    // 2. The retired certificate announced by the current key: older than the one in use.
    ignored = d.app.stats.controlIgnored;
    await send(d, announce(pki.cloud, retired));
    await until(() => d.app.stats.controlIgnored > ignored, 'the older certificate ignored');
    // 3. A newer certificate announced by its own key only.
    ignored = d.app.stats.controlIgnored;
    await send(d, announce(next, next));
    await until(() => d.app.stats.controlIgnored > ignored, 'the self-signed newer certificate ignored');
    assert.equal(d.app.stats.controlAccepted, 0, 'nothing accepted');
    const kidBefore = d.app.kid!;
    d.app.rekey('cloud'); // the device's next session: still sealed to the current key
    await until(() => d.app.state === 'sending' && d.app.kid === kidBefore + 1, 'a new session');
    await until(() => sealedTo(d) !== undefined, 'the cloud opened the new session');
    assert.ok(equal(sealedTo(d)!, pki.cloud.kid), 'sealed to the current cloud key, not the retired one');
    assert.ok(logged(d.log.entries, 'control-ignored', 'not newer').length >= 1, 'the rollback is named');

    // The real rotation: the newer certificate announced by the current key, then a re-key.
    await send(d, announce(pki.cloud, next));
    await until(() => d.app.stats.controlAccepted === 1, 'the newer certificate accepted');
    const kidMoved = d.app.kid!;
    await send(d, rekeyBy(pki.cloud));
    await until(() => d.app.kid === kidMoved + 1 && d.app.state === 'sending', 'moved to the new key');
    await until(() => sealedTo(d) !== undefined && equal(sealedTo(d)!, next.kid), 'sealed to the new key');

    // The key it moved away from is retired for it: neither its re-key nor the retired
    // certificate, nor the old current certificate (older than the one in use), is taken.
    ignored = d.app.stats.controlIgnored;
    const accepted = d.app.stats.controlAccepted;
    await send(d, rekeyBy(pki.cloud));
    await send(d, announce(pki.cloud, pki.cloud));
    await send(d, announce(next, retired));
    await until(() => d.app.stats.controlIgnored >= ignored + 3, 'three ignored');
    assert.equal(d.app.stats.controlAccepted, accepted);
    assert.equal(d.app.kid, kidMoved + 1);
  });
});

describe('a flood of bogus control messages', () => {
  test('costs at most the capped number of signature checks, and data keeps flowing', async () => {
    const d = await started('flood-1', { control: { maxVerifications: 3, intervalMs: 60_000 } });
    let verifications = 0;
    const crypto = d.platform.crypto;
    const verify = crypto.ecdsaP256Verify.bind(crypto);
    (crypto as { ecdsaP256Verify: typeof verify }).ecdsaP256Verify = (...args) => {
      verifications++;
      return verify(...args);
    };
    const kid = encodeKid(d.app.kid!);
    const sign1 = (k: Uint8Array, sig: Uint8Array) =>
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
                [2, k],
                [3, 1],
              ]),
            ),
            sig,
          ],
          18,
        ),
      );
    const forged = [
      sign1(kid, new Uint8Array(64).fill(7)), // the right kid, a bad signature
      sign1(encodeKid(d.app.kid! + 1), new Uint8Array(64).fill(7)), // a kid that is not the current one
      makeControlMessage(host, host.p256Generate(), {
        deviceId: d.deviceId,
        request: 'rekey',
        kid,
        issuedAt: 1,
      }), // signed by another key
    ];
    const ignoredBefore = d.app.stats.controlIgnored;
    const sealedBefore = d.app.stats.sealed;
    // Flood until the device has handled 1500 bogus messages AND sealed 25 more readings: the
    // window is bounded by events, not time.
    let stop = false;
    let sent = 0;
    const flood = (async () => {
      while (!stop) {
        const batch: Promise<unknown>[] = [];
        for (let i = 0; i < 50; i++) batch.push(send(d, forged[sent++ % forged.length]!));
        await Promise.all(batch);
      }
    })();
    await until(
      () => d.app.stats.controlIgnored - ignoredBefore >= 1500 && d.app.stats.sealed - sealedBefore >= 25,
      '1500 bogus control messages handled and 25 readings sealed',
      60_000,
    );
    stop = true;
    await flood;
    const handled = d.app.stats.controlIgnored - ignoredBefore;
    const sealed = d.app.stats.sealed - sealedBefore;
    console.log(
      `# control flood: ${handled} bogus messages handled, ${sealed} readings sealed, ${verifications} signature checks`,
    );
    assert.equal(d.app.stats.controlAccepted, 0);
    assert.equal(d.app.stats.rekeys, 0, 'no re-key from the flood');
    assert.ok(
      verifications <= 3,
      `at most 3 signature checks per interval, got ${verifications} for ${handled} messages`,
    );
    assert.ok(logged(d.log.entries, 'control-ignored', 'stale-kid').length > 0);
  });
});
