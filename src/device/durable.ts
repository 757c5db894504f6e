/**
 * A record that survives a power cut at any moment, on a store whose `set` erases the old value
 * before it writes the new one (ESP32 Preference/NVS; see src/platform/store.ts).
 *
 * The record lives in two keys ("slots"), `<name>.a` and `<name>.b`. Each slot holds
 *
 *   version (1 byte, 1) ‖ generation (4 bytes, big-endian) ‖ value ‖ CRC-32 of all before it (4 bytes)
 *
 * Reading takes the valid slot with the highest generation (a missing, short or corrupt slot is
 * not valid). Writing puts generation + 1 into the OTHER slot: the slot holding the current value
 * is never touched, so a power cut during the write leaves it intact, and a read after the cut
 * returns either the old value (the write did not finish) or the new one (it did). Never a value
 * older than the last completed write, and never nothing once one write has completed.
 *
 * Runtime-neutral: no Node or Moddable APIs.
 */
import type { KeyValueStore } from '../platform/store.js';

const VERSION = 1;
const HEADER = 5;
const TRAILER = 4;
const MAX_GENERATION = 0xffffffff;

export interface DurableValue {
  value: Uint8Array;
  generation: number;
  /** Which slot it came from. */
  slot: 'a' | 'b';
}

export class DurableRecord {
  readonly #store: KeyValueStore;
  readonly #keys: { a: string; b: string };
  #current: DurableValue | undefined;
  #loaded = false;

  /** `name`: at most 13 characters, so that both keys fit NVS's 15. */
  constructor(store: KeyValueStore, name: string) {
    if (name.length === 0 || name.length > 13)
      throw new RangeError(`record name ${JSON.stringify(name)}: 1-13 characters`);
    this.#store = store;
    this.#keys = { a: `${name}.a`, b: `${name}.b` };
  }

  /** The newest valid value, or undefined when neither slot holds one. Read from the store once. */
  read(): DurableValue | undefined {
    if (!this.#loaded) {
      this.#current = newest(this.#readSlot('a'), this.#readSlot('b'));
      this.#loaded = true;
    }
    return this.#current === undefined ? undefined : { ...this.#current, value: this.#current.value.slice() };
  }

  /**
   * Writes `value` as the next generation into the slot that does not hold the current value.
   * When this returns, a read (after any power cut) gives `value`; when it throws (or the power
   * fails inside), a read gives `value` or the previous value.
   */
  write(value: Uint8Array): void {
    const current = this.read();
    const generation = current === undefined ? 1 : current.generation + 1;
    if (generation > MAX_GENERATION) throw new RangeError('the record has used every generation');
    const slot: 'a' | 'b' = current?.slot === 'a' ? 'b' : 'a';
    // Forget the cached value first: if the write throws, the next read looks at the store again.
    this.#loaded = false;
    this.#store.set(this.#keys[slot], encodeSlot(generation, value));
    this.#current = { value: value.slice(), generation, slot };
    this.#loaded = true;
  }

  #readSlot(slot: 'a' | 'b'): DurableValue | undefined {
    const bytes = this.#store.get(this.#keys[slot]);
    if (bytes === undefined) return undefined;
    const decoded = decodeSlot(bytes);
    return decoded === undefined ? undefined : { ...decoded, slot };
  }
}

function newest(a: DurableValue | undefined, b: DurableValue | undefined): DurableValue | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.generation > a.generation ? b : a;
}

export function encodeSlot(generation: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + value.length + TRAILER);
  out[0] = VERSION;
  writeU32(out, 1, generation);
  out.set(value, HEADER);
  writeU32(out, HEADER + value.length, crc32(out.subarray(0, HEADER + value.length)));
  return out;
}

export function decodeSlot(bytes: Uint8Array): { generation: number; value: Uint8Array } | undefined {
  if (bytes.length < HEADER + TRAILER || bytes[0] !== VERSION) return undefined;
  const end = bytes.length - TRAILER;
  if (readU32(bytes, end) !== crc32(bytes.subarray(0, end))) return undefined;
  const generation = readU32(bytes, 1);
  if (generation === 0) return undefined;
  return { generation, value: bytes.slice(HEADER, end) };
}

function writeU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, as zlib): guards a slot against a torn or corrupted write. */
export function crc32(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
