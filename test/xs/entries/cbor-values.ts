/**
 * Values whose CBOR encoding (src/cbor `encode`) must be byte-identical on Node and in XS. Shared by
 * the XS entry (test/xs/entries/cbor.ts) and the Node test (test/xs/cbor.test.ts), so both sides
 * build exactly the same values. Names are single words: the entry prints `name hex`.
 */
import { Tag } from '../../../src/cbor/index.js';

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** Strings with characters outside the BMP (surrogate pairs in UTF-16): the known cbor-x problem on XS. */
export const NON_BMP_STRINGS: [string, string][] = [
  ['emoji-1', '😀'],
  ['emoji-in-ascii', 'a😀b'],
  ['emoji-x3', '😀😁😂'],
  ['emoji-flag', '🇩🇪'],
  ['emoji-mixed', 'T=21.5°C 🌡️ ok'],
  ['emoji-23-units', `${'a'.repeat(21)}😀`],
  ['emoji-31-chars', `${'a'.repeat(30)}😀`],
  ['emoji-63-units', `${'a'.repeat(61)}😀`],
  ['emoji-63-chars', `${'a'.repeat(62)}😀`],
  ['emoji-64-units', `${'a'.repeat(62)}😀`],
  ['emoji-70', `${'a'.repeat(68)}😀`],
  ['emoji-300', `${'😀'.repeat(150)}`],
  ['math-bold-A', '𝐀'],
  ['cjk-ext-b', '𠀀'],
];

export function cborValues(): [string, unknown][] {
  const map = new Map<unknown, unknown>([
    [1, -7],
    [4, bytes(8)],
    [-1, new Map<number, unknown>([[1, 2]])],
    ['z', 'last'],
    [0, null],
    [33, bytes(3)],
    [-100, 'neg'],
    [24, true],
  ]);
  return [
    ['uint-0', 0],
    ['uint-23', 23],
    ['uint-24', 24],
    ['uint-255', 255],
    ['uint-256', 256],
    ['uint-65535', 65535],
    ['uint-65536', 65536],
    ['uint-2p32m1', 0xffffffff],
    ['uint-2p32', 0x100000000],
    ['uint-max-safe', Number.MAX_SAFE_INTEGER],
    ['uint-epoch-ms', 1_733_140_000_000],
    [
      'reading-epoch-ms',
      new Map<unknown, unknown>([
        ['t', 1_733_140_000_000],
        ['temp', 21.5],
        ['up', 60],
      ]),
    ],
    ['nint-1', -1],
    ['nint-24', -24],
    ['nint-25', -25],
    ['nint-256', -256],
    ['nint-257', -257],
    ['nint-2p32', -0x100000000],
    ['nint-min-safe', Number.MIN_SAFE_INTEGER],
    ['bigint-2p64m1', 2n ** 64n - 1n],
    ['bigint-neg-2p64', -(2n ** 64n)],
    ['float-1.5', 1.5],
    ['float-0.1', 0.1],
    ['float-minus-0', -0],
    ['float-1e300', 1e300],
    ['float-nan', Number.NaN],
    ['float-inf', Number.POSITIVE_INFINITY],
    ['float-neg-inf', Number.NEGATIVE_INFINITY],
    ['true', true],
    ['false', false],
    ['null', null],
    ['undefined', undefined],
    ['bstr-0', new Uint8Array(0)],
    ['bstr-1', bytes(1)],
    ['bstr-23', bytes(23)],
    ['bstr-24', bytes(24)],
    ['bstr-300', bytes(300)],
    ['bstr-70000', bytes(70000)],
    ['tstr-empty', ''],
    ['tstr-a', 'a'],
    ['tstr-latin1', 'Grüße, Señor'],
    ['tstr-euro', '€'],
    ['tstr-bmp-cjk', '温度センサー'],
    ['tstr-23', 'x'.repeat(23)],
    ['tstr-24', 'x'.repeat(24)],
    ['tstr-63', 'y'.repeat(63)],
    ['tstr-64', 'y'.repeat(64)],
    ['tstr-300', 'z'.repeat(300)],
    ['tstr-bmp-100', '€'.repeat(100)],
    ['tstr-nul', 'a\u0000b'],
    ['tstr-lone-surrogate', 'x\ud800y'],
    ['array-empty', []],
    ['array-nested', [1, [2, [3, [4]]], 'five', bytes(2)]],
    ['array-24', Array.from({ length: 24 }, (_, i) => i)],
    ['map-empty', new Map()],
    ['map-mixed-keys-sorted', map],
    [
      'map-text-keys',
      new Map([
        ['b', 1],
        ['a', 2],
        ['aa', 3],
      ]),
    ],
    [
      'map-nested',
      new Map<unknown, unknown>([
        [2, new Map([[1, bytes(4)]])],
        [1, [new Map([[3, 3]])]],
      ]),
    ],
    ['object-plain', { t: 21.5, h: 40, id: 'dev-1' }],
    ['tag-16', new Tag([bytes(5), new Map(), bytes(20)], 16)],
    ['tag-18', new Tag([bytes(5), new Map([[4, bytes(2)]]), null, bytes(64)], 18)],
    ['tag-big', new Tag('x', 0x10000)],
    [
      'cose-key',
      new Map<number, unknown>([
        [1, 4],
        [2, bytes(1)],
        [3, 1],
        [-1, bytes(16)],
        [-99, bytes(12)],
      ]),
    ],
    ...NON_BMP_STRINGS,
    ...NON_BMP_STRINGS.map(([name, s]): [string, unknown] => [`in-map-${name}`, new Map([[1, s]])]),
  ];
}
