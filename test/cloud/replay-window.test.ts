/**
 * ReplayWindow (cloud/session/replay-window.ts): the rules of PROTOCOL.md §6.3 case by case, the
 * stored form, and a property test against a naive model that remembers every number in a Set.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_WINDOW_SIZE,
  MAX_SEQUENCE_NUMBER,
  ReplayWindow,
  type WindowCheck,
} from '../../cloud/session/replay-window.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Accepts each number (each must be 'new'). */
function acceptAll(w: ReplayWindow, seqs: number[]): ReplayWindow {
  for (const s of seqs) {
    assert.equal(w.check(s), 'new', `seq ${s}`);
    w.accept(s);
  }
  return w;
}

/** The model: every accepted number, and the same window arithmetic. */
class SetModel {
  readonly seen = new Set<number>();
  highest: number | null = null;
  constructor(readonly size: number) {}
  check(seq: number): WindowCheck {
    if (this.highest === null || seq > this.highest) return 'new';
    if (seq <= this.highest - this.size) return 'too-old';
    return this.seen.has(seq) ? 'duplicate' : 'new';
  }
  accept(seq: number): void {
    this.seen.add(seq);
    if (this.highest === null || seq > this.highest) this.highest = seq;
  }
}

describe('ReplayWindow', () => {
  test('a fresh window takes any number, including 0 and 2^32 − 1', () => {
    const w = new ReplayWindow();
    assert.equal(w.size, DEFAULT_WINDOW_SIZE);
    assert.equal(w.highest, null);
    for (const s of [0, 1, 63, 64, 1000, MAX_SEQUENCE_NUMBER]) assert.equal(w.check(s), 'new');
    assert.deepEqual(w.serialize(), { size: 64, highest: null, bitmap: new Uint8Array(8) });
  });

  test('seq 0 first, then in order: each is new once, then duplicate', () => {
    const w = new ReplayWindow();
    for (let s = 0; s < 200; s++) {
      assert.equal(w.check(s), 'new');
      w.accept(s);
      assert.equal(w.check(s), 'duplicate');
      assert.equal(w.highest, s);
    }
    // the last 64 are duplicates, older ones are left of the window
    for (let s = 199; s > 135; s--) assert.equal(w.check(s), 'duplicate', `seq ${s}`);
    for (let s = 135; s >= 0; s--) assert.equal(w.check(s), 'too-old', `seq ${s}`);
  });

  test('the window edge: highest − W + 1 is inside, highest − W is too old', () => {
    const w = acceptAll(new ReplayWindow(64), [100]);
    assert.equal(w.check(37), 'new'); // 100 − 63
    assert.equal(w.check(36), 'too-old'); // 100 − 64
    w.accept(37);
    assert.equal(w.check(37), 'duplicate');
    w.accept(101); // 37 falls off the window
    assert.equal(w.check(37), 'too-old');
    assert.equal(w.check(38), 'new');
  });

  test('out of order within the window', () => {
    const w = acceptAll(new ReplayWindow(64), [10, 5, 12, 11, 0, 7]);
    assert.equal(w.highest, 12);
    for (const s of [0, 5, 7, 10, 11, 12]) assert.equal(w.check(s), 'duplicate');
    for (const s of [1, 2, 3, 4, 6, 8, 9, 13, 76]) assert.equal(w.check(s), 'new');
    w.accept(70); // 12 − 64 < 6 ≤ 70 − 64: 0 … 6 now too old, 7 … 12 still remembered
    for (let s = 0; s <= 6; s++) assert.equal(w.check(s), 'too-old');
    for (const s of [7, 10, 11, 12]) assert.equal(w.check(s), 'duplicate');
    for (const s of [8, 9, 13, 69]) assert.equal(w.check(s), 'new');
  });

  test('a jump larger than the window forgets everything before it', () => {
    const w = acceptAll(new ReplayWindow(64), [0, 1, 2, 3]);
    w.accept(1000);
    assert.deepEqual(
      [...w.serialize().bitmap],
      [1, 0, 0, 0, 0, 0, 0, 0],
      'only the highest is marked after a jump past W',
    );
    for (let s = 0; s <= 936; s++) assert.equal(w.check(s), 'too-old');
    for (let s = 937; s < 1000; s++) assert.equal(w.check(s), 'new');
    // exactly W: the old highest falls off; W − 1: it stays
    const a = acceptAll(new ReplayWindow(64), [5]);
    a.accept(69);
    assert.equal(a.check(5), 'too-old');
    const b = acceptAll(new ReplayWindow(64), [5]);
    b.accept(68);
    assert.equal(b.check(5), 'duplicate');
  });

  test('shifts by every distance keep the right bits (window of 100: not a multiple of 8)', () => {
    for (let d = 1; d <= 110; d++) {
      const w = acceptAll(new ReplayWindow(100), [200, 199, 190, 150, 120, 101]);
      w.accept(200 + d);
      for (const s of [200, 199, 190, 150, 120, 101]) {
        const expected = 200 + d - s >= 100 ? 'too-old' : 'duplicate';
        assert.equal(w.check(s), expected, `shift ${d}, seq ${s}`);
      }
      const last = w.serialize().bitmap.at(-1)!;
      assert.equal(last >> 4, 0, 'no bit past W is set');
    }
  });

  test('2^32 − 1, the last sequence number of a session', () => {
    const w = acceptAll(new ReplayWindow(64), [MAX_SEQUENCE_NUMBER - 1, MAX_SEQUENCE_NUMBER]);
    assert.equal(w.highest, MAX_SEQUENCE_NUMBER);
    assert.equal(w.check(MAX_SEQUENCE_NUMBER), 'duplicate');
    assert.equal(w.check(MAX_SEQUENCE_NUMBER - 2), 'new');
    assert.equal(w.check(MAX_SEQUENCE_NUMBER - 64), 'too-old');
    const back = ReplayWindow.deserialize(w.serialize());
    assert.equal(back.highest, MAX_SEQUENCE_NUMBER);
    assert.equal(back.check(MAX_SEQUENCE_NUMBER - 1), 'duplicate');
    assert.throws(() => w.check(MAX_SEQUENCE_NUMBER + 1), RangeError);
  });

  test('window of 1 and of 1024', () => {
    const one = acceptAll(new ReplayWindow(1), [5]);
    assert.equal(one.check(5), 'duplicate');
    assert.equal(one.check(4), 'too-old');
    assert.equal(one.check(6), 'new');
    assert.equal(one.serialize().bitmap.length, 1);
    const big = acceptAll(new ReplayWindow(1024), [2000, 977, 1500]);
    assert.equal(big.check(976), 'too-old');
    assert.equal(big.check(977), 'duplicate');
    assert.equal(big.check(978), 'new');
    assert.equal(big.serialize().bitmap.length, 128);
  });

  test('refuses bad input', () => {
    for (const size of [0, -1, 1.5, Number.NaN, 65537]) assert.throws(() => new ReplayWindow(size), RangeError);
    const w = new ReplayWindow();
    for (const s of [-1, 0.5, Number.NaN, 2 ** 32]) assert.throws(() => w.check(s), RangeError);
    w.accept(3);
    assert.throws(() => w.accept(3), /duplicate/);
    w.accept(100);
    assert.throws(() => w.accept(3), /too-old/);
    assert.equal(w.highest, 100, 'a refused accept changes nothing');
    assert.throws(() => ReplayWindow.deserialize({ size: 64, highest: 3, bitmap: new Uint8Array(4) }), /8-byte bitmap/);
    assert.throws(
      () => ReplayWindow.deserialize({ size: 64, highest: 3, bitmap: new Uint8Array(8) }),
      /does not mark its highest/,
    );
  });

  test('serialize / deserialize round trip, and the stored layout', () => {
    const w = acceptAll(new ReplayWindow(16), [20, 19, 12, 5]);
    const state = w.serialize();
    assert.deepEqual(state, { size: 16, highest: 20, bitmap: Uint8Array.of(0b0000_0011, 0b1000_0001) });
    state.bitmap[0] = 0xff; // a copy: changing it leaves the window alone
    assert.equal(w.check(18), 'new');
    const back = ReplayWindow.deserialize(w.serialize());
    for (let s = 0; s < 40; s++) assert.equal(back.check(s), w.check(s), `seq ${s}`);
  });

  test('resizing on deserialize: smaller forgets, larger counts the unknown positions as seen', () => {
    const w = acceptAll(new ReplayWindow(16), [20, 10, 8]);
    const small = ReplayWindow.deserialize(w.serialize(), 8);
    assert.equal(small.size, 8);
    assert.equal(small.check(10), 'too-old');
    assert.equal(small.check(13), 'new');
    const large = ReplayWindow.deserialize(w.serialize(), 64);
    assert.equal(large.check(8), 'duplicate');
    assert.equal(large.check(9), 'new');
    assert.equal(large.check(4), 'duplicate', 'outside the stored window: cannot tell, so not new');
    assert.equal(large.check(0), 'duplicate');
    const early = ReplayWindow.deserialize(acceptAll(new ReplayWindow(8), [3]).serialize(), 64);
    assert.equal(early.check(3), 'duplicate');
    assert.equal(early.check(0), 'new', 'positions below 0 do not exist: the stored window covered 0 … 3');
  });

  test('property: agrees with a Set of every accepted number, through serialize/deserialize', () => {
    const step = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ kind: fc.constant('near' as const), delta: fc.integer({ min: -80, max: 10 }) }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('jump' as const), delta: fc.integer({ min: 1, max: 5000 }) }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('abs' as const), seq: fc.integer({ min: 0, max: 300 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('top' as const), back: fc.integer({ min: 0, max: 70 }) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'roundtrip' as const }) },
    );
    fc.assert(
      fc.property(fc.constantFrom(1, 7, 8, 9, 32, 64, 100, 1024), fc.array(step, { maxLength: 200 }), (size, steps) => {
        let w = new ReplayWindow(size);
        const model = new SetModel(size);
        for (const s of steps) {
          if (s.kind === 'roundtrip') {
            w = ReplayWindow.deserialize(w.serialize());
            continue;
          }
          const base = model.highest ?? 0;
          let seq: number;
          if (s.kind === 'near') seq = base + s.delta;
          else if (s.kind === 'jump') seq = base + s.delta;
          else if (s.kind === 'abs') seq = s.seq;
          else seq = MAX_SEQUENCE_NUMBER - s.back;
          seq = Math.min(Math.max(seq, 0), MAX_SEQUENCE_NUMBER);
          const expected = model.check(seq);
          assert.equal(w.check(seq), expected, `seq ${seq}`);
          if (expected === 'new') {
            w.accept(seq);
            model.accept(seq);
          } else {
            assert.throws(() => w.accept(seq), RangeError);
          }
          assert.equal(w.highest, model.highest);
        }
        // every number near the top agrees at the end
        const top = model.highest ?? 0;
        for (let seq = Math.max(0, top - size - 3); seq <= Math.min(top + 3, MAX_SEQUENCE_NUMBER); seq++)
          assert.equal(w.check(seq), model.check(seq), `final seq ${seq}`);
      }),
      { numRuns: RUNS },
    );
  });
});
