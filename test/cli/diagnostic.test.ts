/** src/cbor/diagnostic.ts: RFC 8949 Appendix A examples, encoding indicators, annotations, refusals. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex } from '../../src/bytes.js';
import { type Annotate, diagnose, diagnostic, parseItem, parseSequence, plainCbor } from '../../src/cbor/diagnostic.js';
import { CborError, encode } from '../../src/cbor/index.js';

const d = (hex: string) => diagnose(fromHex(hex));

describe('diagnostic notation', () => {
  test('RFC 8949 Appendix A', () => {
    const cases: [string, string][] = [
      ['00', '0'],
      ['17', '23'],
      ['1818', '24'],
      ['1903e8', '1000'],
      ['1b000000e8d4a51000', '1000000000000'],
      ['1bffffffffffffffff', '18446744073709551615'],
      ['c249010000000000000000', "2(h'010000000000000000')"],
      ['3bffffffffffffffff', '-18446744073709551616'],
      ['20', '-1'],
      ['3903e7', '-1000'],
      ['f90000', '0.0'],
      ['f98000', '-0.0'],
      ['f93c00', '1.0'],
      ['fb3ff199999999999a', '1.1'],
      ['f93e00', '1.5'],
      ['f97bff', '65504.0'],
      ['fa47c35000', '100000.0'],
      ['fa7f7fffff', '3.4028234663852886e+38'],
      ['fb7e37e43c8800759c', '1e+300'],
      ['f90001', '5.960464477539063e-8'],
      ['f9c400', '-4.0'],
      ['f97c00', 'Infinity'],
      ['f97e00', 'NaN'],
      ['f9fc00', '-Infinity'],
      ['f4', 'false'],
      ['f5', 'true'],
      ['f6', 'null'],
      ['f7', 'undefined'],
      ['f0', 'simple(16)'],
      ['f8ff', 'simple(255)'],
      ['c074323031332d30332d32315432303a30343a30305a', '0("2013-03-21T20:04:00Z")'],
      ['d74401020304', "23(h'01020304')"],
      ['40', "h''"],
      ['60', '""'],
      ['6449455446', '"IETF"'],
      ['62225c', '"\\"\\\\"'],
      ['62c3bc', '"ü"'],
      ['64f0908591', '"𐅑"'],
      ['80', '[]'],
      ['83010203', '[1, 2, 3]'],
      ['8301820203820405', '[1, [2, 3], [4, 5]]'],
      ['a0', '{}'],
      ['a201020304', '{1: 2, 3: 4}'],
      ['a26161016162820203', '{"a": 1, "b": [2, 3]}'],
      ['5f42010243030405ff', "(_ h'0102', h'030405')"],
      ['7f657374726561646d696e67ff', '(_ "strea", "ming")'],
      ['9fff', '[_ ]'],
      ['9f018202039f0405ffff', '[_ 1, [2, 3], [_ 4, 5]]'],
      ['bf61610161629f0203ffff', '{_ "a": 1, "b": [_ 2, 3]}'],
    ];
    for (const [hex, text] of cases) assert.equal(d(hex), text, hex);
  });

  test('encodings longer than needed are marked _0 … _3', () => {
    assert.equal(d('1801'), '1_0');
    assert.equal(d('1a00000001'), '1_2');
    assert.equal(d('3800'), '-1_0');
    assert.equal(d('fa3fc00000'), '1.5_2');
    assert.equal(d('fb3ff8000000000000'), '1.5_3');
    assert.equal(d('780161'), '"a"_0');
    assert.equal(d('5801ff'), "h'ff'_0");
    assert.equal(d('980101'), '[_0 1]');
    assert.equal(d('b8010102'), '{_0 1: 2}');
    assert.equal(d('d81201'), '18_0(1)');
    assert.equal(d('62c328'), "h'c328' /text string with invalid UTF-8/");
  });

  test('refuses what is not well-formed', () => {
    for (const hex of ['', '18', '1c', '5f01ff', '62c3', 'ff', '8201', 'a101', '0000', '9f01', 'f801', '7f4100ff']) {
      assert.throws(() => d(hex), CborError, hex);
    }
    let deep = '';
    for (let i = 0; i < 100; i++) deep += '81';
    assert.throws(() => d(`${deep}00`), /nested too deeply/);
    assert.deepEqual(
      parseSequence(fromHex('0102')).map((x) => x.kind),
      ['uint', 'uint'],
    );
  });

  test('annotations: comments, labels, embedded CBOR, line breaking', () => {
    const protectedBytes = encode(new Map([[1, -7]]));
    const bytes = encode([protectedBytes, new Map([[4, Uint8Array.of(1)]]), fromHex('1c')]);
    const headers: Annotate = () => ({
      entry: (key) => ({
        key: () => ({ comment: key.kind === 'uint' && key.value === 4 ? 'kid' : 'alg' }),
        value: (v) => (v.kind === 'nint' && v.value === -7 ? { comment: 'ES256' } : undefined),
      }),
    });
    const annotate: Annotate = () => ({
      item: (i) =>
        [
          () => ({ label: 'protected', embedded: headers }),
          headers,
          () => ({ label: 'not/cbor', embedded: plainCbor }),
        ][i],
    });
    const item = parseItem(bytes);
    assert.equal(
      diagnostic(item, { annotate, lineWidth: 0 }),
      "[/protected/ << {1 /alg/: -7 /ES256/} >>, {4 /kid/: h'01'}, /not\u2215cbor/ h'1c' /not CBOR: reserved additional information value 28 (at byte 0)/]",
    );
    assert.equal(
      diagnostic(item, { annotate, lineWidth: 50 }),
      [
        '[',
        '  /protected/ << {1 /alg/: -7 /ES256/} >>,',
        "  {4 /kid/: h'01'},",
        "  /not\u2215cbor/ h'1c' /not CBOR: reserved additional information value 28 (at byte 0)/",
        ']',
      ].join('\n'),
    );
  });
});
