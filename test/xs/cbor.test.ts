/**
 * src/cbor in XS against Node: the same value must give the same bytes on both, because the
 * device encodes what the cloud decodes and signatures cover encoded bytes.
 *
 * Known problem (docs/NOTES-XS.md): XS (as the device builds it, without mxCESU8) keeps strings in
 * UTF-8 and counts `length` and `charCodeAt` in code points, not UTF-16 units. cbor-x encodes
 * text shorter than 64 (by `length`) in JavaScript, charCodeAt by charCodeAt, and writes a code
 * point ≥ U+10000 as if it were a 3-byte BMP character: 😀 U+1F600 becomes FF 98 80 instead of
 * F0 9F 98 80, U+20000 becomes E0 80 80 (an overlong NUL), with a length that matches those
 * wrong bytes, so the CBOR stays well-formed and the damage is silent. Longer text goes through
 * TextEncoder.encodeInto and is right. Decoding is right.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { toHex } from '../../src/bytes.js';
import { encode } from '../../src/cbor/index.js';
import { cborValues, NON_BMP_STRINGS } from './entries/cbor-values.js';
import { runInXs, type XsRun } from './run.js';

let run: XsRun;
const xs = new Map<string, { hex?: string; error?: string }>();

before(async () => {
  run = await runInXs('test/xs/entries/cbor.ts');
  assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
  for (const line of run.stdout.split('\n')) {
    const [kind, name, value] = line.split(' ');
    if (kind === 'cbor') xs.set(name!, { hex: value! });
    else if (kind === 'cbor-error') xs.set(name!, { error: value! });
  }
});

const fields = (kind: string) =>
  new Map(
    run.stdout
      .split('\n')
      .filter((line) => line.startsWith(`${kind} `))
      .map((line) => {
        const [, name, ...rest] = line.split(' ');
        return [name!, rest] as const;
      }),
  );

/** Values holding a string with a character outside the BMP. */
const nonBmp = new Set(cborValues().flatMap(([name, value]) => (hasNonBmp(value) ? [name] : [])));
function hasNonBmp(value: unknown): boolean {
  if (typeof value === 'string') return /[\u{10000}-\u{10ffff}]/u.test(value);
  if (value instanceof Map) return [...value].some(([k, v]) => hasNonBmp(k) || hasNonBmp(v));
  return Array.isArray(value) && value.some(hasNonBmp);
}

test('every value without non-BMP text encodes to the same bytes in XS as on Node', () => {
  const values = cborValues().filter(([name]) => !nonBmp.has(name));
  assert.ok(values.length >= 60);
  for (const [name, value] of values) {
    assert.deepEqual(xs.get(name), { hex: toHex(encode(value)) }, `${name}: XS and Node differ`);
  }
});

test('integers of 2^32 and more are CBOR integers (major type 0/1), not floats, in XS as on Node', () => {
  const expected: [string, string][] = [
    ['uint-2p32', '1b0000000100000000'],
    ['uint-epoch-ms', '1b000001938731ad00'],
    ['uint-max-safe', '1b001fffffffffffff'],
    ['nint-2p32', '3affffffff'],
    ['nint-min-safe', '3b001ffffffffffffe'],
  ];
  for (const [name, hex] of expected) {
    assert.equal(toHex(encode(cborValues().find(([n]) => n === name)![1])), hex, `${name} on Node`);
    assert.deepEqual(xs.get(name), { hex }, `${name} in XS`);
  }
  assert.ok((xs.get('reading-epoch-ms')?.hex ?? '').includes('61741b000001938731ad00'), "a reading's t in XS");
});

test('XS counts string length in code points, and its TextEncoder writes correct UTF-8', () => {
  const strings = fields('string');
  for (const [name, s] of NON_BMP_STRINGS) {
    const [length, utf8] = strings.get(name) ?? [];
    assert.equal(Number(length), [...s].length, `${name}: XS length`);
    assert.notEqual(Number(length), s.length, `${name}: Node length (UTF-16 units) should differ`);
    assert.equal(utf8, Buffer.from(s, 'utf8').toString('hex'), `${name}: XS TextEncoder`);
  }
});

test('src/bytes utf8Encode is correct for non-BMP text in XS (a way for src/cbor to encode it)', () => {
  const utf8 = fields('utf8');
  for (const [name, s] of NON_BMP_STRINGS) {
    assert.deepEqual(utf8.get(name), [Buffer.from(s, 'utf8').toString('hex')], name);
  }
});

test('XS decodes correctly encoded non-BMP text to the same string', () => {
  const decoded = fields('decoded');
  for (const [name] of NON_BMP_STRINGS) assert.deepEqual(decoded.get(name), ['ok'], name);
});

test('non-BMP text of 64 code points or more (TextEncoder path) already encodes correctly in XS', () => {
  for (const [name, s] of NON_BMP_STRINGS.filter(([, s]) => [...s].length >= 64)) {
    assert.deepEqual(xs.get(name), { hex: toHex(encode(s)) }, name);
  }
});

test('non-BMP text: src/cbor encode in XS gives the correct bytes or refuses', () => {
  const wrong: string[] = [];
  for (const [name, value] of cborValues().filter(([name]) => nonBmp.has(name))) {
    const result = xs.get(name);
    if (result?.error !== undefined) continue; // refusing is acceptable
    const correct = toHex(encode(value));
    if (result?.hex !== correct) wrong.push(`${name}: XS ${result?.hex}, correct ${correct}`);
  }
  assert.deepEqual(wrong, []);
  // cbor-x 1.6.9 on XS misencodes these, so src/cbor must have refused them there (not silently passed them).
  const refused = cborValues().filter(([name]) => nonBmp.has(name) && xs.get(name)?.error !== undefined);
  assert.ok(refused.length > 0, 'expected XS to refuse short non-BMP text');
});
