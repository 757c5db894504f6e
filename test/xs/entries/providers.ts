/**
 * The CryptoProvider an XS entry runs with, named by the test: `noble` (pure JavaScript, the
 * desktop simulator's) or `native` (the C over PSA Crypto, the ESP32's; linked into the XS test
 * host). Both are in every bundle, so the same entry runs the same code with either.
 */
import { nobleCrypto } from '../../../src/crypto/noble.js';
import type { CryptoProvider } from '../../../src/crypto/provider.js';
import { nativeCrypto } from '../../../src/moddable/native-crypto.js';

export function providerNamed(name: string | undefined): CryptoProvider {
  if (name === undefined || name === 'noble') return nobleCrypto(); // randomness: the host's crypto.getRandomValues
  if (name === 'native') return nativeCrypto();
  throw new Error(`no provider named ${name} (expected noble or native)`);
}
