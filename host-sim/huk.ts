/**
 * Hardware unique keys for simulated devices, and the identity derived from them with the
 * device's own derivation (src/device/identity.ts, the same as native/crypto/cf_device_key.h):
 * - `fileHuk(path)`: 32 random bytes kept in a file (made on first use, mode 0600), like the
 *   original ESP32's secret in NVS;
 * - `seededHuk(seed, deviceId)`: HMAC-SHA-256(seed, "cose-flow sim huk " ‖ id), reproducible.
 */

import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../node/atomic-write.js';
import { utf8Encode } from '../src/bytes.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { HUK_BYTES, identityFromHuk } from '../src/device/identity.js';
import type { DeviceIdentity, HukSource } from '../src/platform/huk.js';

export function fileHuk(crypto: CryptoProvider, path: string, options: { sync?: boolean } = {}): HukSource {
  let huk: Uint8Array;
  try {
    const data = readFileSync(path);
    if (data.length !== HUK_BYTES) throw new Error(`${path} holds ${data.length} bytes, a HUK is ${HUK_BYTES}`);
    huk = new Uint8Array(data);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    huk = crypto.randomBytes(HUK_BYTES);
    writeFileAtomic(path, huk, 0o600, options);
  }
  return fixedHuk(crypto, huk, 'file');
}

export function seededHuk(crypto: CryptoProvider, seed: Uint8Array, deviceId: string): HukSource {
  return fixedHuk(crypto, crypto.hmacSha256(seed, utf8Encode(`cose-flow sim huk ${deviceId}`)), 'seed');
}

/** The identity is derived once and handed out again (a simulated device reboots often). */
function fixedHuk(crypto: CryptoProvider, huk: Uint8Array, source: string): HukSource {
  let identity: DeviceIdentity | undefined;
  return {
    identity() {
      identity ??= identityFromHuk(crypto, huk, source);
      return identity;
    },
  };
}
