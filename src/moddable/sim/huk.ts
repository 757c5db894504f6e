/**
 * The device identity where there is no hardware HUK (the desktop simulator): a 32-byte random
 * secret from the platform RNG, made on first boot and kept in the store ("huk"), then the same
 * derivation as the device's C (src/device/identity.ts). Like the original ESP32's NVS secret it
 * is protected by nothing but the store: for development only. This is `@target/huk.js` on the
 * desktop simulator; the ESP32's is ../esp32/huk.ts (the hardware unique key).
 */
import type { CryptoProvider } from '../../crypto/provider.js';
import { HUK_BYTES, identityFromHuk } from '../../device/identity.js';
import type { HukSource } from '../../platform/huk.js';
import type { KeyValueStore } from '../../platform/store.js';

export function platformHuk(crypto: CryptoProvider, store: KeyValueStore): HukSource {
  return {
    identity() {
      let huk = store.get('huk');
      if (huk === undefined || huk.length !== HUK_BYTES) {
        huk = crypto.randomBytes(HUK_BYTES);
        store.set('huk', huk);
      }
      return identityFromHuk(crypto, huk, 'store');
    },
  };
}
