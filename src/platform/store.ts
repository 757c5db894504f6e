/**
 * The device's persistent key-value store: Preference (NVS) on the ESP32, a JSON file in the
 * Moddable desktop simulator, files in the host simulator. Synchronous, like Preference.
 *
 * What the device code may assume, and no more (the weakest of the implementations, ESP32 NVS):
 * - keys are at most 15 ASCII characters; values are byte strings of at most 4000 bytes;
 * - `set` is NOT atomic: it may erase the old value first and then write the new one, so a power
 *   cut inside `set` can leave the key absent (never a mix of old and new bytes, but code that
 *   checks its records with a checksum does not have to rely on that either);
 * - a `set` that returned has been written; a `set` that throws may have erased the old value.
 * Records that must survive a power cut at any moment use two keys (src/device/durable.ts).
 */
export interface KeyValueStore {
  /** The value of `key`, or undefined when there is none. Returns a fresh copy. */
  get(key: string): Uint8Array | undefined;
  set(key: string, value: Uint8Array): void;
  delete(key: string): void;
}

/** Longest key (NVS: 15 characters) and value (Preference on ESP32: 4000 bytes). */
export const MAX_STORE_KEY_LENGTH = 15;
export const MAX_STORE_VALUE_BYTES = 4000;

/** Throws a RangeError for a key or value that would not fit the ESP32's store. */
export function checkStoreEntry(key: string, value?: Uint8Array): void {
  if (key.length === 0 || key.length > MAX_STORE_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw new RangeError(
      `store key ${JSON.stringify(key)} must be 1-${MAX_STORE_KEY_LENGTH} printable ASCII characters`,
    );
  }
  if (value !== undefined && value.length > MAX_STORE_VALUE_BYTES) {
    throw new RangeError(`store value for ${key} is ${value.length} bytes, at most ${MAX_STORE_VALUE_BYTES}`);
  }
}
