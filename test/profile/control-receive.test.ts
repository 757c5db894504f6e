/**
 * `receiveControlMessage` (src/profile/control.ts): a device's whole reading of a control message —
 * peek, the receiver's `admit` before any signature check, the signature, the announced cloud
 * certificate against the CA — with every refusal said, never thrown.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { nodeCrypto } from '../../node/crypto.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { makeControlMessage, receiveControlMessage } from '../../src/profile/control.js';
import { encodeKid } from '../../src/profile/counter.js';
import { makePki, type Pki } from '../fixtures/pki.js';

const crypto = nodeCrypto();
let pki: Pki;
let other: Pki;

before(async () => {
  pki = await makePki({ crypto, deviceIds: [] });
  other = await makePki({ crypto, deviceIds: [] }); // another CA, another cloud key
});

const base = { deviceId: 'dev-1', kid: encodeKid(3), issuedAt: 1_700_000_000 };

function receive(bytes: Uint8Array, options: Partial<Parameters<typeof receiveControlMessage>[2]> = {}, on = crypto) {
  return receiveControlMessage(on, bytes, {
    cloudPublicKeys: [pki.cloud.publicKey],
    deviceId: 'dev-1',
    caCertificate: pki.caDer,
    now: Date.now(),
    ...options,
  });
}

/** Counts signature verifications. */
function counting(): { crypto: CryptoProvider; verifications: () => number } {
  let n = 0;
  const wrapped = Object.create(crypto) as CryptoProvider;
  wrapped.ecdsaP256Verify = (...args: Parameters<CryptoProvider['ecdsaP256Verify']>) => {
    n++;
    return crypto.ecdsaP256Verify(...args);
  };
  return { crypto: wrapped, verifications: () => n };
}

describe('receiveControlMessage', () => {
  test('a re-key signed by the cloud key is opened; admit sees the claim and the signature checks it will cost', () => {
    const bytes = makeControlMessage(crypto, pki.cloud.key!, { ...base, request: 'rekey' });
    const seen: unknown[] = [];
    const received = receive(bytes, {
      cloudPublicKeys: [other.cloud.publicKey, pki.cloud.publicKey],
      admit: (claimed, checks) => {
        seen.push(claimed.request, [...claimed.kid], checks);
        return undefined;
      },
    });
    assert.ok(received.ok);
    assert.equal(received.message.signedBy, 1);
    assert.equal(received.announced, undefined);
    assert.deepEqual(seen, ['rekey', [3], 2]);
  });

  test('refusals, cheapest first: unreadable (no request), admit (no signature check), bad signature', () => {
    const unreadable = receive(Uint8Array.of(0xde, 0xad));
    assert.ok(!unreadable.ok && unreadable.request === '?');

    const forged = makeControlMessage(crypto, other.cloud.key!, { ...base, request: 'rekey' });
    const count = counting();
    const admitted = receive(
      forged,
      { admit: () => ({ request: 'rekey', reason: 'stale-kid', fields: { kid: '03' } }) },
      count.crypto,
    );
    assert.deepEqual(admitted, { ok: false, request: 'rekey', reason: 'stale-kid', fields: { kid: '03' } });
    assert.equal(count.verifications(), 0, 'refused by admit: no signature checked');

    const bad = receive(forged, {}, count.crypto);
    assert.ok(!bad.ok && bad.request === 'rekey' && bad.reason.startsWith('bad-signature'));
    assert.equal(count.verifications(), 1);
  });

  test('an announced cloud certificate is checked against the CA and its key returned', () => {
    const good = makeControlMessage(crypto, pki.cloud.key!, {
      ...base,
      request: 'cloud-certificate',
      cloudCertificate: pki.cloud.der,
    });
    const received = receive(good);
    assert.ok(received.ok && received.announced !== undefined);
    assert.deepEqual(received.announced.publicKey, pki.cloud.publicKey);
    assert.deepEqual(received.announced.certificate, pki.cloud.der);

    // Signed by the cloud key in use, but the certificate is from another CA.
    const foreign = makeControlMessage(crypto, pki.cloud.key!, {
      ...base,
      request: 'cloud-certificate',
      cloudCertificate: other.cloud.der,
    });
    const refused = receive(foreign);
    assert.ok(!refused.ok && refused.request === 'cloud-certificate', JSON.stringify(refused));
  });
});
