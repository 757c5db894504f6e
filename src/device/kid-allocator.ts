/**
 * Session kids that are never reused, whatever moment the power fails.
 *
 * The kid counter is reserved ahead, in blocks (as OSCORE's Appendix B.1.1 does for sequence
 * numbers): before the device uses kid k it makes sure the stored reservation R is ≥ k, writing
 * R' = k + block − 1 when it is not. Every kid ≤ R may have been used; no kid > R has been. After a
 * reboot the device continues at R + 1 (the rest of the last block is skipped, never reused).
 *
 * R is kept in a `DurableRecord` (two slots and a generation number), because the ESP32's
 * Preference.set erases before it writes: a power cut inside the write leaves the other slot, and
 * with it the previous reservation, intact. Since that write finishes before any kid above the
 * previous reservation is used, the previous reservation still covers every kid used so far.
 *
 * One store write per `block` sessions (and one per boot); runtime-neutral.
 */
import type { KeyValueStore } from '../platform/store.js';
import { DurableRecord } from './durable.js';

export const DEFAULT_KID_BLOCK = 16;
/** Kids are kept below 2^53 (exact JavaScript numbers); cose-flow/1 allows up to 2^64 − 1. */
export const MAX_KID_COUNTER = Number.MAX_SAFE_INTEGER;
const RECORD = 'kid';

export class KidAllocator {
  readonly #record: DurableRecord;
  readonly #block: number;
  /** The highest kid that may have been used (loaded lazily from the reservation). */
  #used: number | undefined;
  #reserved = 0;

  constructor(store: KeyValueStore, options: { block?: number } = {}) {
    const block = options.block ?? DEFAULT_KID_BLOCK;
    if (!Number.isInteger(block) || block < 1 || block > 1_000_000)
      throw new RangeError(`kid block ${block}: 1-1000000`);
    this.#record = new DurableRecord(store, RECORD);
    this.#block = block;
  }

  /** The stored reservation: every kid up to it may have been used (0 for a new device). */
  reservation(): number {
    this.#load();
    return this.#reserved;
  }

  /**
   * The next kid counter, ≥ 1. When it is past the reservation, a new reservation is written
   * first; if that write throws, no kid is handed out (and the error propagates).
   */
  next(): number {
    this.#load();
    const kid = this.#used! + 1;
    if (kid > MAX_KID_COUNTER) throw new RangeError('the session kid counter is exhausted');
    if (kid > this.#reserved) {
      const reserved = Math.min(MAX_KID_COUNTER, kid + this.#block - 1);
      this.#record.write(encodeCounter(reserved));
      this.#reserved = reserved;
    }
    this.#used = kid;
    return kid;
  }

  #load(): void {
    if (this.#used !== undefined) return;
    const stored = this.#record.read();
    const reserved = stored === undefined ? 0 : decodeCounter(stored.value);
    this.#reserved = reserved;
    this.#used = reserved;
  }
}

function encodeCounter(n: number): Uint8Array {
  const out = new Uint8Array(8);
  const high = Math.floor(n / 0x100000000);
  const low = n >>> 0;
  for (let i = 0; i < 4; i++) {
    out[3 - i] = (high >>> (8 * i)) & 0xff;
    out[7 - i] = (low >>> (8 * i)) & 0xff;
  }
  return out;
}

function decodeCounter(bytes: Uint8Array): number {
  if (bytes.length !== 8) throw new Error(`the kid reservation record is ${bytes.length} bytes, expected 8`);
  let high = 0;
  let low = 0;
  for (let i = 0; i < 4; i++) {
    high = high * 256 + bytes[i]!;
    low = low * 256 + bytes[4 + i]!;
  }
  const n = high * 0x100000000 + low;
  if (!Number.isSafeInteger(n)) throw new Error('the kid reservation record is out of range');
  return n;
}
