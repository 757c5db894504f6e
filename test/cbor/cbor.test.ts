import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHex, toHex } from '../../src/bytes.js';
import { CborError, checkWellFormed, decode, encode, encodeAsGiven, Tag } from '../../src/cbor/index.js';

const rejects = (hex: string, pattern: RegExp, options = {}) =>
  assert.throws(
    () => decode(fromHex(hex), options),
    (e: unknown) => e instanceof CborError && pattern.test(e.message),
    hex,
  );

test('deterministic encoding sorts map keys by their encoded bytes (RFC 8949 §4.2.1)', () => {
  // 1, 3, 33 (0x1821), then -1 (0x20), -2, -3; text keys after integers.
  const m = new Map<unknown, unknown>([
    ['a', 0],
    [-3, 0],
    [33, 0],
    [-1, 0],
    [1, 0],
    [-2, 0],
    [3, 0],
  ]);
  assert.equal(toHex(encode(m)), 'a7010003001821002000210022006161' + '00');
  // nested maps too, and as-given keeps the caller's order
  assert.equal(
    toHex(
      encode([
        new Map([
          [4, 1],
          [-1, 2],
        ]),
      ]),
    ),
    '81a204012002',
  );
  assert.equal(
    toHex(
      encodeAsGiven([
        new Map([
          [-1, 2],
          [4, 1],
        ]),
      ]),
    ),
    '81a220020401',
  );
});

test('encoding uses shortest forms and plain byte strings', () => {
  assert.equal(toHex(encode(23)), '17');
  assert.equal(toHex(encode(24)), '1818');
  assert.equal(toHex(encode(-25)), '3818');
  assert.equal(toHex(encode(0xffffffff)), '1affffffff');
  assert.equal(toHex(encode(new Uint8Array([1, 2]))), '420102'); // no tag 64
  assert.equal(toHex(encode(new Map([[1, 2]]))), 'a10102'); // no tag 259
  assert.equal(toHex(encode(new Tag([], 16))), 'd080');
  const out = encode([1, 2, 3]);
  assert.equal(out.constructor, Uint8Array);
  assert.equal(out.buffer.byteLength, out.length, 'the result owns its buffer (not a view into cbor-x scratch space)');
});

test('strict decoding refuses what the profile forbids', () => {
  rejects('9f0102ff', /indefinite/);
  rejects('5f4101ff', /indefinite/);
  rejects('a2010201 03'.replace(' ', ''), /duplicate map key/);
  rejects('a20102180103', /duplicate map key/); // 1 and 24-encoded 1 are the same key
  rejects('a2616101616102', /duplicate map key/);
  rejects('0102', /trailing/);
  rejects('82', /truncated/);
  rejects('5a0000ffff00', /truncated string/);
  rejects('9affffffff', /truncated array/);
  rejects('c1190102', /tag 1 is not allowed/);
  rejects('1c', /reserved/);
  rejects('ff', /break/);
  rejects('f800', /simple value/);
  rejects('', /truncated/);
  rejects('818181818181818181818181818181818181', /nested too deeply/);
});

test('strict decoding accepts any valid key order and allowed tags', () => {
  const m = decode(fromHex('a220020401')) as Map<number, number>;
  assert.deepEqual(
    [...m.entries()],
    [
      [-1, 2],
      [4, 1],
    ],
  );
  const t = decode(fromHex('d28140'), { allowTags: [18] }) as Tag;
  assert.equal(t.tag, 18);
  assert.doesNotThrow(() => checkWellFormed(fromHex('c11a514b67b0'), { allowTags: 'any' }));
});

test('integers from 2^32 up are CBOR integers, not 64-bit floats, and decode back to numbers', () => {
  const cases: [number, string][] = [
    [2 ** 32 - 1, '1affffffff'],
    [2 ** 32, '1b0000000100000000'],
    [1_733_140_000_000, '1b000001938731ad00'],
    [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
    [-(2 ** 32) - 1, '3b0000000100000000'],
    [Number.MIN_SAFE_INTEGER, '3b001ffffffffffffe'],
  ];
  for (const [value, hex] of cases) {
    assert.equal(toHex(encode(value)), hex, String(value));
    assert.equal(decode(fromHex(hex)), value, `${hex} decodes to the number`);
  }
  assert.equal(toHex(encode(1.5)), 'fb3ff8000000000000', 'a fraction stays a float');
  assert.equal(toHex(encode(1e300)), 'fb7e37e43c8800759c', 'beyond 64 bits stays a float');
  assert.equal(decode(fromHex('1b0020000000000000')), 2n ** 53n, 'past the safe range: a bigint, exact');
  const reading = encode(new Map<unknown, unknown>([['t', 1_733_140_000_000]]));
  assert.equal(toHex(reading), 'a161741b000001938731ad00');
  assert.deepEqual(decode(reading), new Map([['t', 1_733_140_000_000]]));
});
