/**
 * XS side of test/native/xs-make-key.test.ts: the C key of a NativeP256Key is made only after its
 * input was read, so an input that throws while being read leaks nothing.
 *
 * The input is a host object posing as a 32-byte Uint8Array (its prototype), whose `byteLength`
 * answers 32 once and throws after: XS 13.3 (this host's engine) reads a plain host object's
 * `byteLength` each time it is taken as a buffer, so the binding's size check passes and its
 * second read of the data throws. Before the fix that second read came after the key's malloc.
 * (An engine that refuses host objects as buffers, as the Moddable SDK's does, throws at the
 * first read; the run must be clean either way.)
 *
 * Prints `case NAME RESULT…` lines and last `done`.
 */
import { emit, host, runMain } from './host.js';

const keyImport = host.native('xs_cf_p256_key_import');
const NativeKey = Native('xs_cf_p256_key_destructor');

function attempt(name: string, f: () => unknown): void {
  try {
    const result = f();
    emit('case', name, 'returned', result instanceof ArrayBuffer ? result.byteLength : String(result));
  } catch (e) {
    emit('case', name, 'threw', e instanceof Error ? e.constructor.name : typeof e, String(e).replace(/\s+/g, '_'));
  }
}

runMain(() => {
  for (let round = 0; round < 3; round++) {
    const input = new NativeKey();
    Object.setPrototypeOf(input, Uint8Array.prototype);
    let reads = 0;
    Object.defineProperty(input, 'byteLength', {
      get() {
        reads++;
        if (reads === 1) return 32;
        throw new Error('the input throws on its second read');
      },
    });
    const key = new NativeKey();
    attempt(`import-throwing-input-${round}`, () => keyImport.call(key, input));
    // The key was not made: it can still be made, once, with a real scalar.
    const d = new Uint8Array(32);
    d[31] = 7;
    attempt(`import-after-${round}`, () => keyImport.call(key, d));
    attempt(`import-again-${round}`, () => keyImport.call(key, d));
  }
  host.gc();
  emit('done');
});
