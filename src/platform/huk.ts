/**
 * The device identity from the hardware unique key (HUK): the device's P-256 key and a stable
 * 16-byte id, the same after every reboot and firmware update.
 *
 * On the ESP32 the key is derived in C and never leaves it (src/moddable/native-crypto.ts
 * `deviceIdentity`, native/crypto/cf_device_key.h). Elsewhere the same derivation runs in
 * TypeScript from a 32-byte device secret (`deriveDeviceIdentity` in src/device/identity.ts):
 * a file or a seed in the host simulator, a stored random secret in the desktop simulator.
 */
import type { P256PrivateKey } from '../crypto/provider.js';

export interface DeviceIdentity {
  /** The device key: it signs key messages and the certification request. */
  key: P256PrivateKey;
  /** 16 bytes derived from the same secret; names the device when no device id is configured. */
  id: Uint8Array;
  /** Where the secret comes from: "efuse-hmac", "nvs", "file", "seed", "store", … (for logs). */
  source: string;
}

export interface HukSource {
  /** Derives the identity again; throws an Error when the secret is not available. */
  identity(): DeviceIdentity;
}
