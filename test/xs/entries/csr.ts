/**
 * XS side of test/xs/csr.test.ts: the device code makes its key and PKCS#10 CSR inside XS, as the
 * firmware does before enrolling, and prints `csr DEVICE-ID HEX` for each device id given.
 */
import { toHex } from '../../../src/bytes.js';
import { nobleCrypto } from '../../../src/crypto/noble.js';
import { makeCsr } from '../../../src/pki/csr.js';
import { emit, host, runMain } from './host.js';

runMain(() => {
  const crypto = nobleCrypto();
  for (const deviceId of host.scriptArgs) {
    const key = crypto.p256Generate();
    emit('csr', deviceId, toHex(makeCsr(crypto, key, deviceId)));
  }
});
