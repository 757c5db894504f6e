/**
 * The device link over TLS (mqtts://) in the host simulator: the device application on the host
 * platform connects to mosquitto's TLS listener (a server certificate for 127.0.0.1 made here by
 * the test PKI) trusting only the broker CA it is configured with (`brokerCa`), and its key and
 * data messages arrive and open with the cloud key. With another CA, or none, the connection
 * fails and the device's log line says that the broker's certificate does not verify.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TLSSocket } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { main } from '../../cli/main.js';
import { x509 } from '../../cloud/pki/x509.js';
import type { DeviceApp } from '../../src/device/app.js';
import { decodeReading } from '../../src/device/reading.js';
import { capturingIo } from '../fixtures/cli-io.js';
import { mosquittoAvailability, startMosquitto, type TestMosquitto } from '../fixtures/mosquitto.js';
import { issueCertificate, makeCa, type TestCa } from '../fixtures/pki.js';
import { CloudView, logged, makeTestPki, simDevice, type TestPki, until } from './harness.js';

const available = mosquittoAvailability('the TLS (mqtts://) device tests');

describe('device link over TLS (mqtts://) to mosquitto', { skip: available.run ? false : available.why }, () => {
  let broker: TestMosquitto;
  let brokerCa: TestCa;
  let otherCa: TestCa;
  let pki: TestPki;
  let cloud: CloudView;
  let observer: MqttClient;
  const apps: DeviceApp[] = [];

  before(async () => {
    pki = await makeTestPki();
    brokerCa = await makeCa({ name: 'cose-flow test broker CA' });
    otherCa = await makeCa({ name: 'some other CA' });
    const server = await issueCertificate(brokerCa, {
      commonName: '127.0.0.1',
      keyUsage: x509.KeyUsageFlags.digitalSignature,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }]),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    });
    broker = await startMosquitto({
      tls: { certificate: `${server.pem.trim()}\n${brokerCa.pem.trim()}\n`, key: server.keyPem },
    });
    cloud = new CloudView(pki);
    // The cloud side watches on the plain listener of the same broker.
    observer = await mqtt.connectAsync(broker.url, { clientId: `tls-observer-${process.pid}` });
    observer.on('message', (name, payload) => cloud.receive(name, new Uint8Array(payload)));
    await observer.subscribeAsync('cose-flow/v1/#', { qos: 1 });
  });

  after(async () => {
    for (const app of apps) await app.stop();
    await observer?.endAsync(true);
    await broker?.close();
  });

  async function device(deviceId: string, ca: Uint8Array | undefined) {
    const device = await simDevice({
      broker: broker.tlsUrl!,
      deviceId,
      pki,
      ...(ca === undefined ? {} : { brokerCa: ca }),
    });
    apps.push(device.app);
    return device;
  }

  test('a device trusting the broker CA connects over TLS; its key and data messages open at the cloud', async () => {
    const { app, link } = await device('tls-dev-1', brokerCa.der);
    await app.start();
    await until(
      () =>
        [...cloud.sessions.values()].some((s) => s.deviceId === 'tls-dev-1') &&
        cloud.data.filter((d) => d.deviceId === 'tls-dev-1' && d.payload !== undefined).length >= 5,
      'the key message and five data messages from the TLS device',
      30_000,
    );
    const socket = link.client?.stream;
    assert.ok(socket instanceof TLSSocket, 'the link runs over a TLS socket');
    assert.equal(socket.authorized, true, 'the broker certificate verified against brokerCa');
    assert.equal(socket.getPeerCertificate().subject.CN, '127.0.0.1');
    for (const d of cloud.data.filter((m) => m.deviceId === 'tls-dev-1')) {
      assert.ok(d.payload !== undefined, `data ${d.kid}/${d.seq} opens with the session key`);
      assert.ok(decodeReading(d.payload).uptime >= 0);
    }
    assert.equal(cloud.refused.length, 0, JSON.stringify(cloud.refused));
    await app.stop();
  });

  for (const [name, ca, trust] of [
    ['another CA', () => otherCa.der, /against brokerCa \(/],
    ['no brokerCa (the default trust store)', () => undefined, /against Node's default trust store/],
  ] as const) {
    test(`with ${name} the connection fails, and the log line says the certificate does not verify`, async () => {
      const deviceId = `tls-dev-${name.startsWith('another') ? 'wrong' : 'none'}`;
      const { app, log } = await device(deviceId, ca());
      await app.start();
      await until(() => logged(log.entries, 'reconnect').length >= 2, 'two failed connection attempts', 30_000);
      await app.stop();
      const reason = String(logged(log.entries, 'reconnect')[0]!.fields.reason);
      assert.match(
        reason,
        new RegExp(`^connection to ${broker.tlsUrl!.replace(/[.]/g, '\\.')} failed in the TLS handshake`),
      );
      assert.match(reason, /the broker's certificate does not verify/);
      assert.match(reason, trust);
      assert.match(
        reason,
        /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE/,
      );
      assert.equal(app.stats.connects, 0, 'never connected');
      assert.ok(
        !cloud.data.some((d) => d.deviceId === deviceId) &&
          ![...cloud.sessions.values()].some((s) => s.deviceId === deviceId),
      );
    });
  }
  test('cose-flow sim --broker-ca: a fleet enrolls and sends over TLS; --broker-ca is refused for mqtt:// and an unreadable file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cf-sim-tls-'));
    const io = capturingIo();
    try {
      const caFile = join(dir, 'broker-ca.pem');
      writeFileSync(caFile, brokerCa.pem);
      const args = ['sim', '--broker', broker.tlsUrl!, '--broker-ca', caFile, '--data-dir', join(dir, 'data')];
      const run = [...args, '--devices', '2', '--rate', '20', '--messages', '5', '--duration', '120', '--json'];
      assert.equal(await main(run, io), 0, io.err);
      const summary = JSON.parse(io.out) as Record<string, number>;
      assert.equal(summary.sessions, 2, io.out);
      assert.ok(summary.acknowledged! >= 10, io.out);
      assert.equal(summary.errors, 0, io.err);

      io.clear();
      assert.equal(await main(['sim', '--broker', broker.url, '--broker-ca', caFile], io), 2);
      assert.match(io.err, /--broker-ca is for an mqtts:\/\/ broker/);
      io.clear();
      assert.equal(await main(['sim', '--broker', broker.tlsUrl!, '--broker-ca', join(dir, 'missing.pem')], io), 2);
      assert.match(io.err, /cannot read the broker CA certificate .*missing\.pem: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
