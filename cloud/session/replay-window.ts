/**
 * The per-session anti-replay window of docs/PROTOCOL.md §6.1/§6.3, as in RFC 8613 §7.4 (OSCORE)
 * and RFC 9147 §4.5.1 (DTLS 1.3): the highest sequence number accepted so far plus a bitmap of
 * the W numbers ending at it (default W = 64).
 *
 *   check(seq)  'new'       never accepted: seq > highest, or inside the window with its bit clear
 *               'duplicate' inside the window and already accepted
 *               'too-old'   seq ≤ highest − W: left of the window, the receiver cannot tell (`replay`)
 *   accept(seq) marks seq (only after the payload is committed); seq > highest slides the window
 *
 * Bit layout (also the stored form): bit i stands for sequence number `highest − i`, i = 0 … W − 1;
 * it lives in byte i >> 3 at bit i & 7 (least significant first). Bits at and past W are always 0.
 */

/** Sequence numbers are the Partial IV: 0 … 2^32 − 1 (PROTOCOL.md §4.1). */
export const MAX_SEQUENCE_NUMBER = 0xffffffff;
export const DEFAULT_WINDOW_SIZE = 64;
/** Largest window this implementation accepts (8 KiB of bitmap per session at most). */
export const MAX_WINDOW_SIZE = 65536;

export type WindowCheck = 'new' | 'duplicate' | 'too-old';

/** The compact stored form of a window. */
export interface WindowState {
  /** W, the number of sequence numbers the bitmap covers. */
  size: number;
  /** Highest sequence number accepted, or null before the first. */
  highest: number | null;
  /** ceil(W / 8) bytes; bit i = sequence number `highest − i` was accepted. */
  bitmap: Uint8Array;
}

function checkSize(size: number): number {
  if (!Number.isInteger(size) || size < 1 || size > MAX_WINDOW_SIZE)
    throw new RangeError(`replay window size must be an integer in 1 … ${MAX_WINDOW_SIZE}, got ${size}`);
  return size;
}

function checkSeq(seq: number): number {
  if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQUENCE_NUMBER)
    throw new RangeError(`sequence number must be an integer in 0 … ${MAX_SEQUENCE_NUMBER}, got ${seq}`);
  return seq;
}

export class ReplayWindow {
  readonly size: number;
  #highest: number | null = null;
  #bits: Uint8Array;

  constructor(size: number = DEFAULT_WINDOW_SIZE) {
    this.size = checkSize(size);
    this.#bits = new Uint8Array((size + 7) >> 3);
  }

  /** Highest sequence number accepted, or null before the first. */
  get highest(): number | null {
    return this.#highest;
  }

  /** Classifies seq without changing anything. */
  check(seq: number): WindowCheck {
    checkSeq(seq);
    const highest = this.#highest;
    if (highest === null || seq > highest) return 'new';
    const i = highest - seq;
    if (i >= this.size) return 'too-old';
    return this.#bit(i) ? 'duplicate' : 'new';
  }

  /** Marks seq as accepted; throws unless `check(seq)` is 'new'. */
  accept(seq: number): void {
    const verdict = this.check(seq);
    if (verdict !== 'new') throw new RangeError(`sequence number ${seq} is ${verdict}: it cannot be accepted`);
    const highest = this.#highest;
    if (highest === null) {
      this.#highest = seq;
      this.#bits[0] = 1;
    } else if (seq > highest) {
      this.#shift(seq - highest);
      this.#highest = seq;
      this.#bits[0]! |= 1;
    } else {
      const i = highest - seq;
      this.#bits[i >> 3]! |= 1 << (i & 7);
    }
  }

  /** A copy of the state for storage. */
  serialize(): WindowState {
    return { size: this.size, highest: this.#highest, bitmap: this.#bits.slice() };
  }

  /**
   * A window from its stored form, with `size` (default: the stored size). A window read with a
   * larger size than it was stored with counts the positions it did not cover as already accepted
   * ('duplicate'), because it cannot tell; with a smaller size it forgets the oldest positions.
   */
  static deserialize(state: WindowState, size: number = state.size): ReplayWindow {
    const stored = checkSize(state.size);
    const window = new ReplayWindow(size);
    if (state.highest === null) return window;
    window.#highest = checkSeq(state.highest);
    if (state.bitmap.length !== (stored + 7) >> 3)
      throw new RangeError(
        `a window of ${stored} needs a ${(stored + 7) >> 3}-byte bitmap, got ${state.bitmap.length}`,
      );
    for (let i = 0; i < size && i <= state.highest; i++) {
      const seen = i < stored ? (state.bitmap[i >> 3]! >> (i & 7)) & 1 : 1;
      if (seen) window.#bits[i >> 3]! |= 1 << (i & 7);
    }
    if (!window.#bit(0)) throw new RangeError('stored window does not mark its highest sequence number');
    return window;
  }

  #bit(i: number): boolean {
    return ((this.#bits[i >> 3]! >> (i & 7)) & 1) === 1;
  }

  /** Moves every bit d positions older (bit i → i + d), dropping those that fall off the window. */
  #shift(d: number): void {
    const bits = this.#bits;
    if (d >= this.size) {
      bits.fill(0);
      return;
    }
    const bytes = d >> 3;
    const rest = d & 7;
    for (let j = bits.length - 1; j >= 0; j--) {
      const hi = j - bytes >= 0 ? bits[j - bytes]! : 0;
      const lo = j - bytes - 1 >= 0 ? bits[j - bytes - 1]! : 0;
      bits[j] = rest === 0 ? hi : ((hi << rest) | (lo >> (8 - rest))) & 0xff;
    }
    const tail = this.size & 7; // clear the bits at and past W in the last byte
    if (tail !== 0) bits[bits.length - 1]! &= (1 << tail) - 1;
  }
}
