/**
 * Control messages inside the real XS engine, with each XS provider (noble, native): the device
 * application refuses a rotation rollback — a retired (older) cloud certificate, one announced by
 * its own key — and takes a newer one announced by the cloud key in use; a flood of bogus control
 * messages costs at most the capped number of signature checks (issue 12 §3, §4). The messages
 * are made in Node; test/host-sim/control-security.test.ts is the same on a broker.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { generateKeyPair, issueCertificate } from '../../cloud/pki/authority.js';
import { parseCertificate } from '../../cloud/pki/certificate.js';
import { toHex } from '../../src/bytes.js';
import { encode, Tag } from '../../src/cbor/index.js';
import type { P256PrivateKey } from '../../src/crypto/provider.js';
import { identityFromHuk } from '../../src/device/identity.js';
import { pemEncode, toBase64 } from '../../src/pki/pem.js';
import { makeControlMessage } from '../../src/profile/control.js';
import { encodeKid } from '../../src/profile/counter.js';
import { host, makeTestPki, type TestPki } from '../host-sim/harness.js';
import { runInXs } from './run.js';

const DEVICE_ID = 'xs-control-1';
const huk = host.randomBytes(32);
const publicKey = identityFromHuk(host, huk, 'test').key.publicKey;
const pem = (der: Uint8Array) => pemEncode(der, 'CERTIFICATE');

let pki: TestPki;
let input: Record<string, unknown>;

before(async () => {
  pki = await makeTestPki();
  const current = parseCertificate(pki.cloud.certificate).notBefore.getTime();
  const cloudAt = async (notBefore: number) => {
    const pair = generateKeyPair();
    const issued = await issueCertificate(pki.ca, {
      commonName: 'cose-flow test cloud',
      publicKey: pair.publicKey,
      keyUsage: 'cloud',
      notBefore: new Date(notBefore),
      notAfter: new Date(notBefore + 365 * 86_400_000),
    });
    return { key: host.p256Import(pair.privateScalar), certificate: issued.der };
  };
  const retired = await cloudAt(current - 86_400_000);
  const next = await cloudAt(current + 1000);
  const kid = encodeKid(1);
  const announce = (signer: P256PrivateKey, certificate: Uint8Array) =>
    toHex(
      makeControlMessage(host, signer, {
        deviceId: DEVICE_ID,
        request: 'cloud-certificate',
        kid,
        issuedAt: 1,
        cloudCertificate: certificate,
      }),
    );
  const bogus = (k: Uint8Array) =>
    toHex(
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
            new Uint8Array(64).fill(7),
          ],
          18,
        ),
      ),
    );
  input = {
    hukBase64: toBase64(huk),
    deviceId: DEVICE_ID,
    settings: {
      broker: 'mqtt://127.0.0.1:1',
      deviceId: DEVICE_ID,
      deviceCertificate: pem(await pki.deviceCertificate(DEVICE_ID, publicKey)),
      caCertificate: pem(pki.caDer),
      cloudCertificate: pem(pki.cloud.certificate),
    },
    messages: [
      { name: 'retired-self-signed', hex: announce(retired.key, retired.certificate) },
      { name: 'retired-by-current', hex: announce(pki.cloud.key, retired.certificate) },
      { name: 'newer-self-signed', hex: announce(next.key, next.certificate) },
      { name: 'newer-by-current', hex: announce(pki.cloud.key, next.certificate) },
      { name: 'newer-again', hex: announce(pki.cloud.key, next.certificate) },
    ],
    flood: [bogus(kid), bogus(encodeKid(2))],
    floodCount: 200,
  };
});

for (const provider of ['noble', 'native']) {
  describe(`control messages in XS with the ${provider} provider`, () => {
    test('no rotation rollback; a flood costs at most the capped signature checks', async () => {
      const run = await runInXs('test/xs/entries/control.ts', {
        inputs: { XS_INPUT: input },
        args: [provider],
        stackSlots: 2048, // one bundle holds the whole application (see offline-provisioning.test.ts)
        timeoutMs: 120_000,
      });
      assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
      const lines = run.stdout.split('\n');
      assert.ok(lines.includes('session 1 session'), run.stdout);
      const control = new Map(
        lines
          .filter((l) => l.startsWith('control '))
          .map((l) => {
            const [, name, ...rest] = l.split(' ');
            return [name!, rest.join(' ')] as const;
          }),
      );
      assert.match(control.get('retired-self-signed')!, /^ignored .*no cloud key verifies/);
      assert.match(control.get('retired-by-current')!, /^ignored not newer than the cloud certificate in use/);
      assert.match(control.get('newer-self-signed')!, /^ignored .*no cloud key verifies/);
      assert.equal(control.get('newer-by-current'), 'accepted used from the next session on');
      assert.equal(control.get('newer-again'), 'accepted already announced');
      // Six signature checks so far (the last message tried both the key in use and the announced
      // one), of the default 8 per minute: the flood gets at most 2.
      const flood = lines.find((l) => l.startsWith('flood '))!.split(' ');
      const [handled, verifications] = [Number(flood[1]), Number(flood[2])];
      const reasons = Object.fromEntries(
        flood
          .slice(3)
          .map((r) => r.split('='))
          .map(([r, n]) => [r, Number(n)]),
      );
      assert.equal(handled, 200);
      assert.ok(verifications <= 2, `at most 2 signature checks for 200 bogus messages, got ${verifications}`);
      assert.equal(reasons['stale-kid'], 100, run.stdout);
      assert.ok(reasons['verification-limit']! >= 99, run.stdout);
      assert.ok(lines.includes('after 1 session'), 'no re-key from the flood');
    });
  });
}
