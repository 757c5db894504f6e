/**
 * The device store (src/platform/store.ts) on the SDK's Preference: NVS on the ESP32 (its `set`
 * erases, then writes: see src/device/durable.ts), one JSON file on a desktop. Values are kept as
 * ArrayBuffers in one domain.
 */
import Preference from 'preference';
import { checkStoreEntry, type KeyValueStore } from '../../platform/store.js';

export class PreferenceStore implements KeyValueStore {
  readonly #domain: string;

  /** `domain`: at most 15 characters (NVS namespace). */
  constructor(domain = 'cose-flow') {
    if (domain.length === 0 || domain.length > 15) throw new RangeError('a Preference domain is 1-15 characters');
    this.#domain = domain;
  }

  get(key: string): Uint8Array | undefined {
    checkStoreEntry(key);
    const value = Preference.get(this.#domain, key);
    if (value === undefined) return undefined;
    if (!(value instanceof ArrayBuffer)) throw new Error(`preference ${key} is not binary`);
    return new Uint8Array(value.slice(0));
  }

  set(key: string, value: Uint8Array): void {
    checkStoreEntry(key, value);
    Preference.set(this.#domain, key, value.slice().buffer);
  }

  delete(key: string): void {
    checkStoreEntry(key);
    Preference.delete(this.#domain, key);
  }
}
