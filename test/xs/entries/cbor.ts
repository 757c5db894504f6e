/**
 * XS side of test/xs/cbor.test.ts. Prints:
 *   cbor NAME HEX              src/cbor `encode` of each value of cbor-values.ts
 *   cbor-error NAME MESSAGE    when encode throws instead
 *   string NAME LENGTH HEX     for each non-BMP string: XS's `length` and its TextEncoder bytes
 *   utf8 NAME HEX              src/bytes `utf8Encode` of each non-BMP string
 *   decoded NAME ok|differs    src/cbor `decode` of the correct encoding of each non-BMP string
 */
import { concat, toHex, utf8Encode } from '../../../src/bytes.js';
import { decode, encode } from '../../../src/cbor/index.js';
import { cborValues, NON_BMP_STRINGS } from './cbor-values.js';
import { emit, runMain } from './host.js';

/** A CBOR text string head for `length` bytes. */
function textHead(length: number): Uint8Array {
  if (length < 24) return Uint8Array.of(0x60 | length);
  if (length < 256) return Uint8Array.of(0x78, length);
  return Uint8Array.of(0x79, length >> 8, length & 0xff);
}

runMain(() => {
  for (const [name, value] of cborValues()) {
    try {
      emit('cbor', name, toHex(encode(value)));
    } catch (e) {
      emit('cbor-error', name, String((e as Error)?.message ?? e).replace(/\s+/g, '_'));
    }
  }
  for (const [name, s] of NON_BMP_STRINGS) {
    const utf8 = new TextEncoder().encode(s);
    emit('string', name, s.length, toHex(utf8));
    emit('utf8', name, toHex(utf8Encode(s)));
    emit('decoded', name, decode(concat(textHead(utf8.length), utf8)) === s ? 'ok' : 'differs');
  }
});
