/**
 * The CryptoProvider of the platform the application runs on, chosen by the manifest, not by an
 * `if`: this file is the desktop simulator's (mac, lin, win): noble, with its randomness from the
 * platform RNG in C (./random.js). On the ESP32 the manifest maps this module's specifier to
 * ./native-crypto.js, which exports the same `platformCrypto`.
 */
import './random.js';
import { nobleCrypto } from '../crypto/noble.js';
import type { CryptoProvider } from '../crypto/provider.js';

export function platformCrypto(): CryptoProvider {
  return nobleCrypto();
}
