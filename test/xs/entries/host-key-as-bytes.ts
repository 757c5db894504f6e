/**
 * XS side of test/xs/device-like-host.test.ts: the native provider's P-256 key (a host object whose
 * host data is the C key: scalar and public key, 97 bytes) handed to everything in XS that takes
 * bytes. The Moddable SDK's XS accepts a host object as bytes only when C made it a host buffer
 * (xsSetHostBuffer); anything else is refused with a TypeError, whatever `byteLength` it claims.
 * Prints one line per attempt (parsed by the Node test):
 *
 *   case VARIANT CONSUMER refused ERROR-NAME MESSAGE
 *   case VARIANT CONSUMER accepted HEX          what came back, as hex (bytes, or a string's code units)
 *   control CONSUMER HEX                        the same consumer with genuine bytes
 *   done COUNT
 */
import { fromHex, toHex } from '../../../src/bytes.js';
import { nativeCrypto } from '../../../src/moddable/native-crypto.js';
import { emit, runMain } from './host.js';

declare const XS_INPUT: string;
const { d } = JSON.parse(XS_INPUT) as { d: string };

/** The C key struct's size: the 32-byte scalar and the 65-byte public key. */
const KEY_STRUCT_BYTES = 97;

function hexOf(value: unknown): string {
  if (value instanceof ArrayBuffer) return toHex(new Uint8Array(value));
  if (ArrayBuffer.isView(value)) {
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    const out = new Uint8Array(view.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getUint8(i);
    return toHex(out);
  }
  if (typeof value === 'string') {
    let hex = '';
    for (let i = 0; i < value.length; i++) hex += value.charCodeAt(i).toString(16).padStart(4, '0');
    return hex === '' ? '(empty string)' : hex;
  }
  return JSON.stringify(value) ?? String(value);
}

runMain(() => {
  const provider = nativeCrypto();
  const sha256 = native<(data: unknown) => ArrayBuffer>('xs_cf_sha256');
  const freshKey = (): object => provider.p256Import(fromHex(d));
  const withByteLength = (key: object): object =>
    Object.defineProperty(key, 'byteLength', { value: KEY_STRUCT_BYTES, enumerable: true });

  const variants: [string, () => object][] = [
    ['key', freshKey],
    // What XS 13.3 read as the length of a host object that is not a host buffer.
    ['key+byteLength', () => withByteLength(freshKey())],
    // Also passes the bindings' own check (an instance of %TypedArray%.prototype).
    [
      'key+byteLength+Uint8Array.prototype',
      () => Object.setPrototypeOf(withByteLength(freshKey()), Uint8Array.prototype),
    ],
  ];
  // Each consumer, and the genuine bytes it takes ("hi").
  const hi = () => new Uint8Array([0x68, 0x69]);
  const consumers: [string, (bytes: unknown) => unknown, () => unknown][] = [
    ['TextDecoder.decode', (bytes) => new TextDecoder().decode(bytes as Uint8Array), hi],
    ['TextEncoder.encodeInto', (bytes) => new TextEncoder().encodeInto('abc', bytes as Uint8Array), hi],
    ['new-Uint8Array', (bytes) => new Uint8Array(bytes as ArrayBuffer), () => hi().buffer],
    ['new-DataView', (bytes) => new DataView(bytes as ArrayBuffer), () => hi().buffer],
    ['native-xs_cf_sha256', (bytes) => sha256(bytes), hi],
  ];

  let count = 0;
  for (const [consumer, consume, genuine] of consumers) {
    emit('control', consumer, hexOf(consume(genuine())));
    for (const [variant, make] of variants) {
      const key = make();
      count++;
      let result: unknown;
      try {
        result = consume(key);
      } catch (e) {
        const error = e as Error;
        emit('case', variant, consumer, 'refused', error.name, String(error.message));
        continue;
      }
      emit('case', variant, consumer, 'accepted', hexOf(result));
    }
  }
  emit('done', count);
});
