/**
 * The device identity from a HUK in TypeScript (src/device/identity.ts) is the one the device's C
 * derives (native/crypto/cf_device_key.h): checked against the native work's reference model
 * (test/native/reference.ts, itself checked against the C), with both providers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededHuk } from '../../host-sim/huk.js';
import { nodeCrypto } from '../../node/crypto.js';
import { toHex, utf8Encode } from '../../src/bytes.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import { defaultDeviceId, hukSecret, identityFromHuk } from '../../src/device/identity.js';
import { deviceIdentityFromSecret, deviceSecret } from '../native/reference.js';

test('HUK → device key and id: the same derivation as the device C', () => {
  for (const crypto of [nobleCrypto(), nodeCrypto()]) {
    for (let i = 0; i < 8; i++) {
      const huk = crypto.sha256(utf8Encode(`huk ${i}`));
      assert.equal(toHex(hukSecret(crypto, huk)), toHex(deviceSecret(huk)));
      const ours = identityFromHuk(crypto, huk, 'test');
      const reference = deviceIdentityFromSecret(deviceSecret(huk));
      assert.equal(toHex(ours.key.publicKey), toHex(reference.publicKey), `${crypto.name} key ${i}`);
      assert.equal(toHex(ours.id), toHex(reference.id), `${crypto.name} id ${i}`);
    }
  }
});

test('seeded HUKs are reproducible per device id; the default device id comes from the identity', () => {
  const crypto = nobleCrypto();
  const seed = utf8Encode('seed');
  const a = seededHuk(crypto, seed, 'a').identity();
  assert.equal(toHex(seededHuk(crypto, seed, 'a').identity().key.publicKey), toHex(a.key.publicKey));
  assert.notEqual(toHex(seededHuk(crypto, seed, 'b').identity().key.publicKey), toHex(a.key.publicKey));
  assert.match(defaultDeviceId(a), /^cf-[0-9a-f]{16}$/);
  assert.throws(() => hukSecret(crypto, new Uint8Array(31)), /32 bytes/);
});
