/**
 * XS side of test/native/xs-random.test.ts: `crypto.getRandomValues` (native/moddable/
 * xs_cf_random.c) given hostile views. The test runs each case in its own sanitized host run,
 * selected by scriptArgs[0], so that a case that corrupts memory or crashes cannot hide the others.
 *
 * Each case prints `case NAME ok` or `case NAME fail WHY`, and last `done NAME`.
 */
import { emit, host, runMain } from './host.js';

type View = ArrayBufferView & { length?: number };
const getRandomValues = (view: unknown): unknown =>
  (globalThis as unknown as { crypto: { getRandomValues(v: unknown): unknown } }).crypto.getRandomValues(view);

/** Bytes of `buffer` from `start` to `end` that are not zero. */
function nonZero(buffer: ArrayBuffer, start = 0, end = buffer.byteLength): number {
  const bytes = new Uint8Array(buffer, start, end - start);
  let count = 0;
  for (const b of bytes) if (b !== 0) count++;
  return count;
}

/** The error's constructor name, or `none` when `f` returned. */
function thrown(f: () => unknown): string {
  try {
    f();
    return 'none';
  } catch (e) {
    return e instanceof Error ? e.constructor.name : typeof e;
  }
}

function check(name: string, ok: boolean, why: string): void {
  emit('case', name, ok ? 'ok' : `fail ${why}`);
}

const INTEGER_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
];

const cases: Record<string, () => void> = {
  /** Every integer array type, in the middle of a larger buffer: exactly its bytes are filled. */
  genuine() {
    for (const Type of INTEGER_ARRAYS) {
      const size = Type.BYTES_PER_ELEMENT;
      const buffer = new ArrayBuffer(64 * size);
      const view = new Type(buffer, 16 * size, 32);
      const result = getRandomValues(view);
      check(`genuine-${Type.name}-returns-view`, result === view, 'did not return its argument');
      check(
        `genuine-${Type.name}-guards`,
        nonZero(buffer, 0, 16 * size) === 0 && nonZero(buffer, 48 * size) === 0,
        'bytes outside the view were written',
      );
      check(`genuine-${Type.name}-filled`, nonZero(buffer, 16 * size, 48 * size) > 32 * size * 0.8, 'not filled');
    }
    const empty = new Uint8Array(0);
    check('genuine-empty', getRandomValues(empty) === empty, 'an empty array is not returned');
    check('genuine-65536', thrown(() => getRandomValues(new Uint8Array(65536))) === 'none', '65536 bytes refused');
    check('quota', thrown(() => getRandomValues(new Uint8Array(65537))) === 'RangeError', '65537 bytes accepted');
    const wide = new Uint32Array(16385);
    check('quota-wide', thrown(() => getRandomValues(wide)) === 'RangeError', '65540 bytes accepted');
  },

  /*
   * Own properties that lie about the view are ignored: the view's real bytes are filled, and
   * nothing else (before the fix, the C read these properties and wrote where they said).
   */

  /** An own `byteLength` larger than the view: the neighbouring view of the same buffer stays zero. */
  'byte-length-override'() {
    const buffer = new ArrayBuffer(64);
    const view = new Uint8Array(buffer, 0, 16);
    Object.defineProperty(view, 'byteLength', { value: 64 });
    const error = thrown(() => getRandomValues(view));
    check('byte-length-override-neighbour', nonZero(buffer, 16) === 0, `wrote past the view (threw ${error})`);
    check('byte-length-override-filled', error === 'none' && nonZero(buffer, 0, 16) > 8, `not filled (threw ${error})`);
  },

  /** The same against a separate allocation: before the fix, a write past the buffer into XS's heap. */
  'byte-length-override-heap'() {
    const first = new Uint8Array(16);
    const second = new Uint8Array(4096);
    Object.defineProperty(first, 'byteLength', { value: 4096 });
    const error = thrown(() => getRandomValues(first));
    host.gc();
    check('byte-length-override-heap', nonZero(second.buffer) === 0, `another array was written (threw ${error})`);
    check(
      'byte-length-override-heap-filled',
      error === 'none' && nonZero(first.buffer) > 8,
      `not filled (threw ${error})`,
    );
  },

  /** `byteLength` -1: before the fix, a write of SIZE_MAX bytes. */
  'byte-length-negative'() {
    const buffer = new ArrayBuffer(16);
    const view = new Uint8Array(buffer);
    Object.defineProperty(view, 'byteLength', { value: -1 });
    const error = thrown(() => getRandomValues(view));
    check('byte-length-negative', error === 'none' && nonZero(buffer) > 8, `not filled (threw ${error})`);
  },

  /** An own `byteOffset` beyond the view: the rest of the buffer stays zero. */
  'byte-offset-override'() {
    const buffer = new ArrayBuffer(64);
    const view = new Uint8Array(buffer, 0, 16);
    Object.defineProperty(view, 'byteOffset', { value: 32 });
    const error = thrown(() => getRandomValues(view));
    check('byte-offset-override', nonZero(buffer, 16) === 0, `wrote outside the view (threw ${error})`);
    check('byte-offset-override-filled', error === 'none' && nonZero(buffer, 0, 16) > 8, `not filled (threw ${error})`);
  },

  /** An own `byteOffset` of 2^31 - 1: before the fix, a write far outside the buffer. */
  'byte-offset-huge'() {
    const buffer = new ArrayBuffer(16);
    const view = new Uint8Array(buffer);
    Object.defineProperty(view, 'byteOffset', { value: 0x7fffffff });
    const error = thrown(() => getRandomValues(view));
    check('byte-offset-huge', error === 'none' && nonZero(buffer) > 8, `not filled (threw ${error})`);
  },

  /** An own `buffer` naming another ArrayBuffer: that buffer stays zero. */
  'buffer-override'() {
    const buffer = new ArrayBuffer(16);
    const view = new Uint8Array(buffer);
    const other = new ArrayBuffer(16);
    Object.defineProperty(view, 'buffer', { value: other });
    const error = thrown(() => getRandomValues(view));
    check('buffer-override', nonZero(other) === 0, `another buffer was written (threw ${error})`);
    check('buffer-override-filled', error === 'none' && nonZero(buffer) > 8, `not filled (threw ${error})`);
  },

  /** Not typed arrays, whatever their prototype says: refused with a TypeError, nothing written. */
  fakes() {
    const buffer = new ArrayBuffer(16);
    const fake = Object.create(Uint8Array.prototype, {
      buffer: { value: buffer },
      byteOffset: { value: 0 },
      byteLength: { value: 16 },
      length: { value: 16 },
    }) as View;
    check('fake-object', thrown(() => getRandomValues(fake)) === 'TypeError', 'a plain object was accepted');
    check('fake-object-buffer', nonZero(buffer) === 0, "the fake's buffer was written");

    const dataViewBuffer = new ArrayBuffer(16);
    const dataView = new DataView(dataViewBuffer);
    check('data-view', thrown(() => getRandomValues(dataView)) === 'TypeError', 'a DataView was accepted');
    Object.setPrototypeOf(dataView, Uint8Array.prototype);
    check('data-view-as-uint8', thrown(() => getRandomValues(dataView)) === 'TypeError', 'a DataView was accepted');
    check('data-view-as-uint8-buffer', nonZero(dataViewBuffer) === 0, "the DataView's buffer was written");

    const arrayBuffer = new ArrayBuffer(16);
    check('array-buffer', thrown(() => getRandomValues(arrayBuffer)) === 'TypeError', 'an ArrayBuffer was accepted');
    Object.setPrototypeOf(arrayBuffer, Uint8Array.prototype);
    check(
      'array-buffer-as-uint8',
      thrown(() => getRandomValues(arrayBuffer)) === 'TypeError',
      'an ArrayBuffer was accepted',
    );
    Object.setPrototypeOf(arrayBuffer, ArrayBuffer.prototype);
    check('array-buffer-as-uint8-data', nonZero(arrayBuffer) === 0, 'the ArrayBuffer was written');

    const floatsBuffer = new ArrayBuffer(16);
    const floats = new Float32Array(floatsBuffer);
    check('float32', thrown(() => getRandomValues(floats)) === 'TypeError', 'a Float32Array was accepted');
    Object.setPrototypeOf(floats, Uint32Array.prototype);
    check('float32-as-uint32', thrown(() => getRandomValues(floats)) === 'TypeError', 'a Float32Array was accepted');
    check('float32-as-uint32-data', nonZero(floatsBuffer) === 0, 'the Float32Array was written');

    const key = new (Native('xs_cf_p256_key_destructor'))();
    Object.setPrototypeOf(key, Uint8Array.prototype);
    Object.defineProperty(key, 'byteLength', { value: 16 });
    check('host-object', thrown(() => getRandomValues(key)) === 'TypeError', 'a host object was accepted');

    for (const value of [undefined, null, 16, 'sixteen', [1, 2, 3]]) {
      check(`not-object-${String(value)}`, thrown(() => getRandomValues(value)) === 'TypeError', 'accepted');
    }
    check('no-argument', thrown(() => getRandomValues(undefined)) === 'TypeError', 'accepted');
  },

  /**
   * Were the built-ins not frozen (the device and the simulator freeze them; this host can be
   * told not to), a script could replace the accessors of %TypedArray%.prototype or Reflect.get
   * themselves: the C still writes only within a real ArrayBuffer's real length.
   */
  'intrinsics-replaced'() {
    const proto = Object.getPrototypeOf(Uint8Array.prototype) as object;
    const first = new Uint8Array(16);
    const second = new Uint8Array(4096);
    const secondBuffer = second.buffer;
    const replaced = (key: string, get: () => unknown, f: () => unknown): string => {
      const real = Object.getOwnPropertyDescriptor(proto, key)!;
      Object.defineProperty(proto, key, { get, configurable: true });
      try {
        return thrown(f);
      } finally {
        Object.defineProperty(proto, key, real);
      }
    };
    let error = replaced(
      'byteLength',
      () => 4096,
      () => getRandomValues(first),
    );
    check('replaced-byte-length', error === 'RangeError', `threw ${error}`);
    error = replaced(
      'byteOffset',
      () => 4000,
      () => getRandomValues(first),
    );
    check('replaced-byte-offset', error === 'RangeError', `threw ${error}`);
    error = replaced(
      'buffer',
      () => new DataView(secondBuffer),
      () => getRandomValues(first),
    );
    check('replaced-buffer', error === 'TypeError', `threw ${error}`);
    const reflect = Reflect as { get: (target: object, key: PropertyKey, receiver?: unknown) => unknown };
    const realGet = reflect.get;
    reflect.get = (target, key, receiver) => (key === 'byteLength' ? 65536 : realGet(target, key, receiver));
    try {
      error = thrown(() => getRandomValues(first));
    } finally {
      reflect.get = realGet;
    }
    check('replaced-reflect-get', error === 'RangeError', `threw ${error}`);
    check('replaced-neighbour', nonZero(secondBuffer) === 0, 'another array was written');
    check('replaced-then-restored', thrown(() => getRandomValues(first)) === 'none', 'refused once restored');
  },

  /** Views whose buffer shrank or went away: nothing to fill, and nothing written outside. */
  'resized-buffer'() {
    const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer;
    let buffer: ArrayBuffer & { resize?: (n: number) => void };
    try {
      buffer = new Resizable(64, { maxByteLength: 128 });
    } catch {
      check('resized-buffer', true, '');
      return;
    }
    if (typeof buffer.resize !== 'function') {
      check('resized-buffer', true, '');
      return;
    }
    const tracking = new Uint8Array(buffer, 16);
    const fixed = new Uint8Array(buffer, 32, 32);
    buffer.resize(24);
    check('resized-tracking', thrown(() => getRandomValues(tracking)) !== 'RangeError', 'a shrunk view failed');
    check('resized-tracking-guard', nonZero(buffer, 0, 16) === 0, 'bytes before the view were written');
    const error = thrown(() => getRandomValues(fixed));
    buffer.resize(128);
    check('resized-out-of-bounds', nonZero(buffer, 24) === 0, `wrote beyond the buffer (threw ${error})`);
  },
};

runMain(() => {
  const name = host.scriptArgs[0] ?? '';
  const run = cases[name];
  if (!run) throw new Error(`no case ${name}; cases: ${Object.keys(cases).join(', ')}`);
  run();
  emit('done', name);
});
