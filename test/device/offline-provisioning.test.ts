/**
 * Offline provisioning: a device given its certificate, the CA's and the cloud's in its
 * configuration (the factory's way, instead of enrollment).
 * - the config keys (src/device/config.ts readSettings) and the PEM reader (src/pki/pem.ts);
 * - the device application at boot (src/device/app.ts): configured certificates go straight to
 *   a session; wrong ones (a certificate for another key or id, a cloud certificate from another
 *   CA, an expired certificate, a CA that is not the pinned one) are refused with one clear error
 *   line, nothing is published and the device never enrolls instead;
 * - the factory's path end to end with the CLI: `cose-flow sim --print-csr`, `cose-flow ca issue`,
 *   `cose-flow sim --device-certificate …`, and the real cloud service storing what the devices send.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../cli/main.js';
import { type CertificateAuthority, createCa, issueCertificate } from '../../cloud/pki/authority.js';
import { checkCsr } from '../../cloud/pki/csr.js';
import { type CloudService, startCloudService } from '../../cloud/service/service.js';
import { equal, toHex } from '../../src/bytes.js';
import { readSettings } from '../../src/device/config.js';
import { CredentialStore, type Credentials } from '../../src/device/credentials.js';
import { fromBase64, pemDecode, pemEncode, toBase64 } from '../../src/pki/pem.js';
import { captureLog, makeCloudDataDir, until as untilAsync } from '../cloud/service-fixture.js';
import { capturingIo } from '../fixtures/cli-io.js';
import { type RestartableBroker, startAedes } from '../host-sim/brokers.js';
import {
  CloudView,
  host,
  logged,
  makeTestPki,
  type SimDevice,
  simDevice,
  type TestPki,
  until,
} from '../host-sim/harness.js';

const DAY = 86_400_000;

describe('configuration: PEM certificates', () => {
  test('base64 agrees with Node for every length and leftover', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = host.randomBytes(n);
      const b64 = Buffer.from(bytes).toString('base64');
      assert.equal(toBase64(bytes), b64, `length ${n}`);
      if (n > 0) assert.deepEqual([...fromBase64(b64)], [...bytes], `length ${n}`);
    }
  });

  test('a PEM block, its base64 body alone, and either on one line read the same', async () => {
    const pki = await makeTestPki();
    const der = pki.caDer;
    const pem = pemEncode(der, 'CERTIFICATE');
    assert.match(
      pem,
      /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{64}\n)+[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/,
    );
    const body = pem.split('\n').slice(1, -2).join('');
    for (const text of [pem, body, pem.replaceAll('\n', ''), ` \n${pem}\n `, pem.replaceAll('\n', '\r\n')]) {
      assert.ok(equal(pemDecode(text, 'CERTIFICATE'), der), JSON.stringify(text.slice(0, 40)));
    }
  });

  test('anything else is refused, saying what is wrong', () => {
    const pem = pemEncode(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x05), 'CERTIFICATE');
    const bad: [string, RegExp][] = [
      [
        pem.replace(/CERTIFICATE/g, 'PRIVATE KEY'),
        /expected a PEM "CERTIFICATE" block, found "-----BEGIN PRIVATE KEY-----"/,
      ],
      [pem.replace('-----END CERTIFICATE-----', ''), /no "-----END CERTIFICATE-----" line/],
      [`${pem}${pem}`, /text after the PEM/],
      [`${pem}trailing`, /text after the PEM/],
      [pem.replace('MAMC', 'MA*C'), /not base64: "\*" at offset/],
      ['MAMCAQU', /not a multiple of 4/],
      ['MAMCAQV=', /not canonical/],
      ['MA=CAQU=', /not base64: "="/],
      ['', /no base64 data/],
    ];
    for (const [text, why] of bad) assert.throws(() => pemDecode(text, 'CERTIFICATE'), why, JSON.stringify(text));
  });

  test('readSettings: the three keys together become config.provisioned (DER); alone, or unreadable, they are refused', async () => {
    const pki = await makeTestPki();
    const device = await pki.deviceCertificate('dev-1', host.p256Generate().publicKey);
    const settings = {
      broker: 'mqtt://127.0.0.1:1883',
      deviceCertificate: pemEncode(device, 'CERTIFICATE'),
      caCertificate: toBase64(pki.caDer), // the base64 body alone, as on one line of a manifest
      cloudCertificate: pemEncode(pki.cloud.certificate, 'CERTIFICATE').replaceAll('\n', ''),
    };
    const { config } = readSettings(settings);
    assert.ok(config.provisioned !== undefined);
    assert.ok(equal(config.provisioned.deviceCertificate, device));
    assert.ok(equal(config.provisioned.caCertificate, pki.caDer));
    assert.ok(equal(config.provisioned.cloudCertificate, pki.cloud.certificate));
    assert.equal(readSettings({ broker: settings.broker }).config.provisioned, undefined);

    const { cloudCertificate: _, ...twoOfThree } = settings;
    assert.throws(() => readSettings(twoOfThree), /deviceCertificate, caCertificate and cloudCertificate go together/);
    assert.throws(
      () => readSettings({ ...settings, caCertificate: 'not base64!' }),
      /setting caCertificate: not a PEM certificate \(not base64/,
    );
    assert.equal(readSettings({ broker: settings.broker, printCsr: true }).config.printCsr, true);
    assert.equal(readSettings({ broker: settings.broker, printCsr: 'false' }).config.printCsr, false);
    assert.throws(() => readSettings({ broker: settings.broker, printCsr: 'yes' }), /printCsr is true or false/);
  });
});

describe('the device application with configured certificates', () => {
  let pki: TestPki;
  /** Another CA, as another factory's or an attacker's. */
  let otherCa: CertificateAuthority;
  let broker: RestartableBroker;
  let cloud: CloudView;
  const published: string[] = [];
  const devices: SimDevice[] = [];

  before(async () => {
    [pki, otherCa, broker] = await Promise.all([makeTestPki(), createCa({ name: 'another CA' }), startAedes()]);
    cloud = new CloudView(pki);
    broker.onPublish((name, payload) => {
      published.push(name);
      cloud.receive(name, payload);
    });
  });
  after(async () => {
    for (const d of devices) await d.app.stop();
    await broker.close();
  });

  /** A device whose configuration holds `certificates(its public key)`; nothing in its store. */
  async function provisionedDevice(
    deviceId: string,
    certificates: (publicKey: Uint8Array) => Promise<Credentials>,
    config: Parameters<typeof simDevice>[0]['config'] = {},
  ): Promise<SimDevice> {
    // The HUK (and so the key) depends only on the device id: a first device object tells the key.
    const probe = await simDevice({ broker: broker.url, deviceId, pki, provision: false });
    const provisioned = await certificates(probe.platform.huk.identity().key.publicKey);
    const d = await simDevice({
      broker: broker.url,
      deviceId,
      pki,
      provision: false,
      config: { provisioned, ...config },
    });
    devices.push(d);
    return d;
  }

  const good = (deviceId: string) => async (publicKey: Uint8Array) => ({
    deviceCertificate: await pki.deviceCertificate(deviceId, publicKey),
    caCertificate: pki.caDer,
    cloudCertificate: pki.cloud.certificate,
  });

  test('valid certificates: straight to a session, no enrollment; data opens with the cloud key; stored', async () => {
    const d = await provisionedDevice('offline-good', good('offline-good'));
    await d.app.start();
    await until(() => cloud.distinct(d.deviceId).size >= 3, 'three data messages from the provisioned device', 120_000);
    assert.ok(!d.events.some((e) => e.type === 'state' && e.state === 'enrolling'), 'never enrolling');
    assert.ok(!published.some((t) => t.includes('offline-good/enroll')), 'no enrollment request');
    assert.deepEqual(
      logged(d.log.entries, 'provisioned').map((e) => e.fields),
      [{ device: 'offline-good', source: 'configuration', stored: 'saved' }],
    );
    assert.equal(d.app.stats.errors, 0);
    const stored = new CredentialStore(d.store).load();
    assert.ok(stored !== undefined && equal(stored.deviceCertificate, d.app.config.provisioned!.deviceCertificate));
    await d.app.stop();
  });

  /** Boots a device with `certificates` and expects one `provisioning-refused` error matching `why`. */
  async function refused(
    deviceId: string,
    certificates: (publicKey: Uint8Array) => Promise<Credentials>,
    why: RegExp,
    config: Parameters<typeof simDevice>[0]['config'] = {},
  ): Promise<void> {
    const d = await provisionedDevice(deviceId, certificates, config);
    await d.app.start(); // resolves: a refusal is no crash
    assert.equal(d.app.state, 'untrusted');
    const errors = logged(d.log.entries, 'provisioning-refused');
    assert.equal(errors.length, 1, JSON.stringify(d.log.entries));
    assert.equal(errors[0]!.level, 'error');
    assert.match(String(errors[0]!.fields.error), why);
    assert.match(String(errors[0]!.fields.action), /not enrolling/);
    assert.equal(d.app.stats.errors, 1);
    assert.equal(d.app.connected, false, 'no connection is even made');
    assert.ok(!d.events.some((e) => e.type === 'state' && e.state === 'enrolling'), 'never falls back to enrollment');
    assert.equal(new CredentialStore(d.store).load(), undefined, 'nothing is stored');
    await d.app.stop();
    assert.ok(!published.some((t) => t.includes(`/${deviceId}/`)), `${deviceId} published nothing`);
  }

  test('a device certificate for another key is refused', async () => {
    await refused(
      'offline-other-key',
      async () => ({ ...(await good('offline-other-key')(host.p256Generate().publicKey)) }),
      /^device certificate: it certifies another key \(SHA-256 [0-9a-f]{16}…\), not this device's \(SHA-256 [0-9a-f]{16}…, derived from its HUK\)$/,
    );
  });

  test('a device certificate for another device id is refused', async () => {
    await refused(
      'offline-other-id',
      good('someone-else'),
      /^device certificate: it is for "someone-else", not offline-other-id$/,
    );
  });

  test('a cloud certificate from another CA is refused', async () => {
    const otherCloud = await issueCertificate(otherCa, {
      commonName: 'other cloud',
      publicKey: host.p256Generate().publicKey,
      keyUsage: 'cloud',
    });
    await refused(
      'offline-other-cloud-ca',
      async (publicKey) => ({ ...(await good('offline-other-cloud-ca')(publicKey)), cloudCertificate: otherCloud.der }),
      /^cloud certificate: bad-certificate: certificate CN=other cloud \(serial [0-9a-f]+\) is issued by CN=another CA, not by CN=cose-flow device tests CA$/,
    );
  });

  test('a device certificate from another CA is refused', async () => {
    await refused(
      'offline-other-device-ca',
      async (publicKey) => ({
        ...(await good('offline-other-device-ca')(publicKey)),
        deviceCertificate: (
          await issueCertificate(otherCa, { commonName: 'offline-other-device-ca', publicKey, keyUsage: 'device' })
        ).der,
      }),
      /^device certificate: bad-certificate: certificate CN=offline-other-device-ca \(serial [0-9a-f]+\) is issued by CN=another CA, which is not a trust anchor$/,
    );
  });

  test('an expired device certificate is refused', async () => {
    await refused(
      'offline-expired',
      async (publicKey) => ({
        ...(await good('offline-expired')(publicKey)),
        deviceCertificate: (
          await issueCertificate(pki.ca, {
            commonName: 'offline-expired',
            publicKey,
            keyUsage: 'device',
            notBefore: new Date(Date.now() - 30 * DAY),
            notAfter: new Date(Date.now() - DAY),
          })
        ).der,
      }),
      /^device certificate: bad-certificate: certificate CN=offline-expired \(serial [0-9a-f]+\) has expired: notAfter \d{4}-.*Z is before \d{4}-.*Z$/,
    );
  });

  test('an expired cloud certificate is refused', async () => {
    const cloudKey = host.p256Generate();
    const expiredCloud = await issueCertificate(pki.ca, {
      commonName: 'expired cloud',
      publicKey: cloudKey.publicKey,
      keyUsage: 'cloud',
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    await refused(
      'offline-expired-cloud',
      async (publicKey) => ({
        ...(await good('offline-expired-cloud')(publicKey)),
        cloudCertificate: expiredCloud.der,
      }),
      /^cloud certificate: bad-certificate: certificate CN=expired cloud \(serial [0-9a-f]+\) has expired/,
    );
  });

  test('a CA that is not the pinned one is refused (ca or caFingerprint in the configuration)', async () => {
    await refused('offline-pin', good('offline-pin'), /^CA certificate: it is not the pinned CA$/, {
      enroll: { ca: otherCa.der },
    });
    const pinned = toHex(host.sha256(otherCa.der));
    await refused(
      'offline-fingerprint',
      good('offline-fingerprint'),
      new RegExp(`^CA certificate: its SHA-256 [0-9a-f]{64} is not the pinned fingerprint ${pinned}$`),
      { enroll: { caFingerprint: host.sha256(otherCa.der) } },
    );
  });

  test('stored certificates: replaced when others are configured, kept when the same (a newer cloud certificate stays)', async () => {
    const deviceId = 'offline-reflashed';
    const d = await provisionedDevice(deviceId, good(deviceId));
    const publicKey = d.platform.huk.identity().key.publicKey;
    // A CredentialStore reads the store once: a fresh one each time sees what the device wrote.
    const stored = () => new CredentialStore(d.store).load()!;
    // Enrolled before with another certificate (the same key): the configured one replaces it.
    new CredentialStore(d.store).save({
      deviceCertificate: await pki.deviceCertificate(deviceId, publicKey),
      caCertificate: pki.caDer,
      cloudCertificate: pki.cloud.certificate,
    });
    await d.app.start();
    assert.equal(logged(d.log.entries, 'provisioned')[0]?.fields.stored, 'replaced');
    assert.ok(equal(stored().deviceCertificate, d.app.config.provisioned!.deviceCertificate));
    await d.app.stop();

    // A newer cloud certificate arrived later (a control message): the next boot keeps it.
    const newer = await issueCertificate(pki.ca, {
      commonName: 'cose-flow newer cloud',
      publicKey: host.p256Generate().publicKey,
      keyUsage: 'cloud',
      notBefore: new Date(Date.now() - 60_000), // the configured one's is an hour back
    });
    new CredentialStore(d.store).save({ ...stored(), cloudCertificate: newer.der });
    const again = await simDevice({
      broker: broker.url,
      deviceId,
      pki,
      store: d.store,
      provision: false,
      config: d.app.config,
    });
    devices.push(again);
    await again.app.start();
    assert.equal(logged(again.log.entries, 'provisioned')[0]?.fields.stored, 'kept');
    assert.ok(equal(stored().cloudCertificate, newer.der));
    assert.ok(
      ['session', 'sending'].includes(again.app.state),
      `the kept cloud certificate verifies: ${again.app.state}`,
    );
    await again.app.stop();
  });

  test('printCsr: logs the CSR (base64 DER, CN = device id, for this key) and stops without connecting', async () => {
    const d = await simDevice({
      broker: broker.url,
      deviceId: 'offline-csr',
      pki,
      provision: false,
      config: { printCsr: true },
    });
    devices.push(d);
    await d.app.start();
    assert.equal(d.app.state, 'stopped');
    const line = logged(d.log.entries, 'csr')[0];
    assert.ok(line !== undefined, JSON.stringify(d.log.entries));
    const csr = await checkCsr(pemEncode(fromBase64(String(line.fields.csr)), 'CERTIFICATE REQUEST'));
    assert.equal(csr.deviceId, 'offline-csr');
    assert.ok(equal(csr.publicKey, d.platform.huk.identity().key.publicKey));
    assert.ok(!published.some((t) => t.includes('/offline-csr/')));
  });
});

describe('the factory path with the CLI, and the cloud service storing what arrives', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'cf-offline-'));
  const caDir = join(tmp, 'ca'); // the CA host
  const simDir = join(tmp, 'sim'); // the devices (no CA here: they never enroll)
  const certs = join(tmp, 'certs');
  let broker: RestartableBroker;
  let service: CloudService;
  const log = captureLog('info');

  before(async () => {
    [broker] = await Promise.all([startAedes(), makeCloudDataDir(caDir, 'factory CA')]);
    service = await startCloudService({
      brokerUrl: broker.url,
      dataDir: caDir,
      store: `sqlite:${join(tmp, 'cloud.db')}`,
      logger: log.logger,
      clientId: 'offline-provisioning-cloud',
    });
    mkdirSync(certs);
  });
  after(async () => {
    await service?.stop();
    await broker?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  function cli() {
    const io = capturingIo();
    return {
      io,
      out: {
        get stdout() {
          return io.out;
        },
        get stderr() {
          return io.err;
        },
      },
    };
  }

  const ids = ['factory-0001', 'factory-0002'];
  const simFlags = ['--data-dir', simDir, '--devices', '2', '--id-prefix', 'factory-'];

  test('sim --print-csr, ca issue, sim with the certificates: the cloud stores every device’s data', async () => {
    const csrs = cli();
    assert.equal(await main(['sim', '--print-csr', ...simFlags], csrs.io), 0, csrs.out.stderr);
    const blocks = csrs.out.stdout.match(
      /-----BEGIN CERTIFICATE REQUEST-----\n[^-]+-----END CERTIFICATE REQUEST-----\n/g,
    );
    assert.equal(blocks?.length, 2, csrs.out.stdout);
    // The same device prints the same request for the same key: its key is kept (derived from its HUK).
    const again = cli();
    await main(['sim', '--print-csr', ...simFlags], again.io);
    const keysOf = async (text: string) =>
      Promise.all(
        (text.match(/-----BEGIN CERTIFICATE REQUEST-----\n[^-]+-----END CERTIFICATE REQUEST-----\n/g) ?? []).map(
          async (b) => toHex((await checkCsr(b)).publicKey),
        ),
      );
    assert.deepEqual(await keysOf(again.out.stdout), await keysOf(csrs.out.stdout));

    for (const [i, id] of ids.entries()) {
      const csrFile = join(certs, `${id}.csr`);
      writeFileSync(csrFile, blocks![i]!);
      const issued = cli();
      const code = await main(
        ['ca', 'issue', '--data-dir', caDir, '--csr', csrFile, '--out', join(certs, `${id}.pem`)],
        issued.io,
      );
      assert.equal(code, 0, issued.out.stderr);
      assert.match(issued.out.stdout, new RegExp(`device ${id}: certificate issued`));
    }

    const run = cli();
    const code = await main(
      [
        'sim',
        '--broker',
        broker.url,
        ...simFlags,
        '--device-certificate',
        join(certs, '{id}.pem'),
        '--ca-certificate',
        join(caDir, 'ca.pem'),
        '--cloud-certificate',
        join(caDir, 'cloud.pem'),
        '--rate',
        '10',
        '--duration',
        '5',
        '--json',
      ],
      run.io,
    );
    assert.equal(code, 0, run.out.stderr);
    const summary = JSON.parse(run.out.stdout) as Record<string, number>;
    assert.equal(summary.errors, 0, run.out.stderr);
    assert.equal(summary.sessions, 2, run.out.stdout);
    assert.ok(summary.acknowledged! > 0, run.out.stdout);
    assert.doesNotMatch(run.out.stderr, /made a CA|serving enrollments|enrollment batch/);
    assert.throws(() => readFileSync(join(simDir, 'ca.pem')), /ENOENT/, 'the device side has no CA of its own');

    // Acknowledged at QoS 1 by the broker: the cloud service verifies, opens and stores each.
    await untilAsync(
      'the cloud service to store what the devices sent',
      async () => {
        let total = 0;
        for (const id of ids) {
          const n = await service.store.countPayloads(id);
          if (n === 0) return false;
          total += n;
        }
        return total >= summary.acknowledged!;
      },
      30_000,
    );
    assert.equal(service.metrics.rejectedByReason()['bad-certificate'] ?? 0, 0);
  });

  test('sim with a certificate for another device: refused with the reason on stderr, exit status 1', async () => {
    const run = cli();
    const code = await main(
      [
        'sim',
        '--broker',
        broker.url,
        '--data-dir',
        simDir,
        '--id-prefix',
        'factory-',
        '--device-certificate',
        join(certs, 'factory-0002.pem'), // device 0001 is given 0002's certificate
        '--ca-certificate',
        join(caDir, 'ca.pem'),
        '--cloud-certificate',
        join(caDir, 'cloud.pem'),
        '--duration',
        '1',
        '--json',
      ],
      run.io,
    );
    assert.equal(code, 1, run.out.stderr);
    assert.match(
      run.out.stderr,
      /factory-0001: refused its configured certificates: device certificate: it is for "factory-0002", not factory-0001/,
    );
    assert.equal((JSON.parse(run.out.stdout) as Record<string, number>).errors, 1);
  });

  test('sim flags: the three go together, {id} is needed for a fleet, a missing file is named', async () => {
    const flags = ['sim', '--broker', broker.url, '--data-dir', simDir];
    const usage = async (args: string[], why: RegExp) => {
      const run = cli();
      assert.equal(await main([...flags, ...args], run.io), 2, run.out.stderr);
      assert.match(run.out.stderr, why);
    };
    await usage(['--device-certificate', join(certs, 'x.pem')], /go together/);
    const rest = ['--ca-certificate', join(caDir, 'ca.pem'), '--cloud-certificate', join(caDir, 'cloud.pem')];
    await usage(
      ['--devices', '2', '--device-certificate', join(certs, 'factory-0001.pem'), ...rest],
      /put \{id\} in the device certificate path/,
    );
    await usage(
      ['--device-certificate', join(certs, 'missing-{id}.pem'), ...rest],
      /cannot read the device certificate of sim-0001 .*missing-sim-0001\.pem: ENOENT/,
    );
  });
});
