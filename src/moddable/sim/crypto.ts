/**
 * `@target/crypto.js` on the desktop simulator (mac, lin, win): the CryptoProvider is noble, with
 * its randomness from the platform RNG in C (../random.js). The ESP32's file of the same name
 * (../esp32/crypto.ts) exports the same `platformCrypto` over the native modules; the bundler
 * (scripts/bundle-moddable.js) links one or the other, not an `if`.
 */
import '../random.js';
import { nobleCrypto } from '../../crypto/noble.js';
import type { CryptoProvider } from '../../crypto/provider.js';

export function platformCrypto(): CryptoProvider {
  return nobleCrypto();
}
