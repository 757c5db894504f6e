/**
 * Offline provisioning inside the real XS engine, with each XS provider (noble, the desktop
 * simulator's; native, the ESP32's C over PSA): the device application reads its certificates
 * from PEM settings (readSettings, as from the manifest's config), checks them at boot and starts
 * a session whose key message the cloud opens in Node; a certificate for another key, a cloud
 * certificate from another CA and an expired certificate are refused there with their reason,
 * and `printCsr` prints a request the CA accepts.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { createCa, issueCertificate } from '../../cloud/pki/authority.js';
import { checkCsr } from '../../cloud/pki/csr.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { equal, fromHex } from '../../src/bytes.js';
import { identityFromHuk } from '../../src/device/identity.js';
import { fromBase64, pemEncode, toBase64 } from '../../src/pki/pem.js';
import { cloudKeyId, openKeyMessage } from '../../src/profile/index.js';
import { host, makeTestPki, type TestPki } from '../host-sim/harness.js';
import { runInXs } from './run.js';

const DAY = 86_400_000;
const DEVICE_ID = 'xs-offline-1';
const huk = host.randomBytes(32);
const publicKey = identityFromHuk(host, huk, 'test').key.publicKey;
const pem = (der: Uint8Array) => pemEncode(der, 'CERTIFICATE');

let pki: TestPki;
let cases: { name: string; settings: Record<string, string | boolean> }[];

before(async () => {
  pki = await makeTestPki();
  const otherCa = await createCa({ name: 'another CA' });
  const base = {
    broker: 'mqtt://127.0.0.1:1',
    deviceId: DEVICE_ID,
    deviceCertificate: pem(await pki.deviceCertificate(DEVICE_ID, publicKey)),
    caCertificate: toBase64(pki.caDer), // the one-line form
    cloudCertificate: pem(pki.cloud.certificate),
  };
  const expired = await issueCertificate(pki.ca, {
    commonName: DEVICE_ID,
    publicKey,
    keyUsage: 'device',
    notBefore: new Date(Date.now() - 30 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  const otherCloud = await issueCertificate(otherCa, {
    commonName: 'other cloud',
    publicKey: host.p256Generate().publicKey,
    keyUsage: 'cloud',
  });
  cases = [
    { name: 'good', settings: base },
    {
      name: 'other-key',
      settings: {
        ...base,
        deviceCertificate: pem(await pki.deviceCertificate(DEVICE_ID, host.p256Generate().publicKey)),
      },
    },
    { name: 'other-ca-cloud', settings: { ...base, cloudCertificate: pem(otherCloud.der) } },
    { name: 'expired', settings: { ...base, deviceCertificate: pem(expired.der) } },
    { name: 'csr', settings: { broker: base.broker, deviceId: DEVICE_ID, printCsr: true } },
  ];
});

for (const provider of ['noble', 'native']) {
  describe(`offline provisioning in XS with the ${provider} provider`, () => {
    test('configured certificates: a session the cloud opens; wrong ones refused with their reason; the CSR', async () => {
      const run = await runInXs('test/xs/entries/offline-provisioning.ts', {
        inputs: { XS_INPUT: { hukBase64: toBase64(huk), cases } },
        args: [provider],
        // One bundle holds the whole application, and its module body runs on the machine's stack
        // with every top-level binding of it: more than 1024 slots. On the device each module
        // loads on its own, and the manifest gives the machine 2048 ("creation": {"stack"}).
        stackSlots: 2048,
        timeoutMs: 120_000,
      });
      assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
      const results = new Map(
        run.stdout
          .split('\n')
          .filter((l) => l.startsWith('case '))
          .map((l) => {
            const [, name, state, bytes, ...error] = l.split(' ');
            return [name!, { state: state!, bytes: bytes!, error: error.join(' ') }] as const;
          }),
      );
      assert.deepEqual([...results.keys()], ['good', 'other-key', 'other-ca-cloud', 'expired', 'csr'], run.stdout);

      const good = results.get('good')!;
      assert.deepEqual([good.state, good.error], ['session', 'none']);
      const opened = openKeyMessage(host, fromHex(good.bytes), {
        cloudKey: (kid) => (equal(kid, cloudKeyId(host, pki.cloud.publicKey)) ? pki.cloud.key : undefined),
        verifyCertificate: deviceCertificateVerifier({ crypto: host, trustAnchors: [pki.caDer], cacheSize: 0 }),
        topicDeviceId: DEVICE_ID,
      });
      assert.equal(opened.deviceId, DEVICE_ID);

      const refused = (name: string, why: RegExp) => {
        const r = results.get(name)!;
        assert.equal(r.state, 'untrusted', name);
        assert.equal(r.bytes, 'none', `${name}: no key message`);
        assert.match(r.error, why, name);
      };
      refused('other-key', /^device certificate: it certifies another key/);
      refused(
        'other-ca-cloud',
        /^cloud certificate: bad-certificate: .* is issued by CN=another CA, not by CN=cose-flow device tests CA$/,
      );
      refused('expired', /^device certificate: bad-certificate: .* has expired: notAfter/);

      const csr = results.get('csr')!;
      assert.equal(csr.state, 'stopped');
      const checked = await checkCsr(pemEncode(fromBase64(csr.bytes), 'CERTIFICATE REQUEST'));
      assert.equal(checked.deviceId, DEVICE_ID);
      assert.ok(equal(checked.publicKey, publicKey), 'the CSR is for the key derived from the HUK in XS');
    });
  });
}
