/**
 * `@target/crypto.js` on the ESP32: the CryptoProvider over the native modules (PSA Crypto,
 * ../native-crypto.ts). The desktop simulator's file of the same name is ../sim/crypto.ts.
 */
import type { CryptoProvider } from '../../crypto/provider.js';
import { nativeCrypto } from '../native-crypto.js';

export function platformCrypto(): CryptoProvider {
  return nativeCrypto();
}
