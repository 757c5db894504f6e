/**
 * The device identity on the ESP32: derived in C from the hardware unique key (eFuse HMAC key, or
 * the NVS secret on the original ESP32) by native/crypto/cf_device_key.c; the private key never
 * leaves C. This is `@target/huk.js` on the ESP32; the desktop simulator's is ../sim/huk.ts.
 */
import type { CryptoProvider } from '../../crypto/provider.js';
import type { HukSource } from '../../platform/huk.js';
import type { KeyValueStore } from '../../platform/store.js';
import { deviceIdentity } from '../native-crypto.js';

export function platformHuk(_crypto: CryptoProvider, _store: KeyValueStore): HukSource {
  return {
    identity() {
      return deviceIdentity();
    },
  };
}
