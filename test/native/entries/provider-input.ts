/**
 * What test/native/xs-provider.test.ts gives the XS entry test/native/entries/provider.ts (the
 * JSON string `XS_INPUT`): Wycheproof groups and what Node's provider made, all bytes in hex.
 */
import type { VectorGroup } from '../../crypto/wycheproof-suites.js';

export interface NativeProviderInput {
  /** The selected groups of each Wycheproof suite (test/crypto/wycheproof-suites.ts). */
  wycheproof: { file: string; groups: VectorGroup[] }[];
  /** Made by the node provider, for the native provider to accept or reproduce. */
  node: {
    key: { d: string; publicKey: string };
    signatures: { message: string; signature: string }[];
    gcm: { key: string; iv: string; plaintext: string; aad: string; sealed: string }[];
    wrap: { kek: string; data: string; wrapped: string }[];
    hkdf: { ikm: string; salt: string; info: string; length: number; okm: string }[];
    hmac: { key: string; data: string; mac: string }[];
  };
  /** The device identity the HUK file gives (COSE_FLOW_HUK_FILE), derived on Node. */
  device: { id: string; publicKey: string };
}
