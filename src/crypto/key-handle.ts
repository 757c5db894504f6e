import type { P256PrivateKey } from './provider.js';

/**
 * The public half every provider's P-256 key handle shares: its provider name and a public key
 * that no caller can alter (a fresh copy on every read). Each provider keeps the private half
 * where only it can reach it (a WeakMap, a KeyObject, a C key slot).
 */
export class P256KeyHandle implements P256PrivateKey {
  readonly provider: string;
  readonly #publicKey: Uint8Array;

  constructor(provider: string, publicKey: Uint8Array) {
    this.provider = provider;
    this.#publicKey = publicKey;
  }

  get publicKey(): Uint8Array {
    return this.#publicKey.slice();
  }

  toJSON(): object {
    return { provider: this.provider, publicKey: this.#publicKey.slice() };
  }
}
