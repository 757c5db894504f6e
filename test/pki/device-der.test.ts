/** The device PKI's DER writer and strict reader (src/pki/der.ts) and the ECDSA signature conversion. */
import assert from 'node:assert/strict';
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { concat, fromHex, toHex } from '../../src/bytes.js';
import {
  bitString,
  boolean,
  contextConstructed,
  contextPrimitive,
  DerError,
  integer,
  nullValue,
  octetString,
  oid,
  printableString,
  readBits,
  readBoolean,
  readDer,
  readInteger,
  readOid,
  readString,
  readTime,
  readUnsigned,
  sequence,
  setItems,
  setOf,
  utf8String,
} from '../../src/pki/der.js';
import { ecdsaSignatureFromDer, ecdsaSignatureToDer } from '../../src/pki/ecdsa-signature.js';
import { makePki } from '../fixtures/pki.js';
import { providers } from '../providers.js';

const hex = (bytes: Uint8Array) => toHex(bytes);
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

function refused(input: string | Uint8Array, message: RegExp, options = {}): void {
  const bytes = typeof input === 'string' ? fromHex(input) : input;
  assert.throws(
    () => readDer(bytes, options),
    (e: unknown) => {
      assert.ok(e instanceof DerError, `expected a DerError, got ${String(e)}`);
      assert.match(e.message, message);
      return true;
    },
  );
}

describe('DER writer', () => {
  test('INTEGER from unsigned bytes: minimal, with a sign byte when the top bit is set', () => {
    assert.equal(hex(integer(new Uint8Array(0))), '020100');
    assert.equal(hex(integer(Uint8Array.of(0))), '020100');
    assert.equal(hex(integer(Uint8Array.of(0, 0, 0x7f))), '02017f');
    assert.equal(hex(integer(Uint8Array.of(0x80))), '02020080');
    assert.equal(hex(integer(Uint8Array.of(0, 0, 0xff, 1))), '020300ff01');
    assert.equal(hex(integer(Uint8Array.of(1, 0))), '02020100');
  });

  test('OBJECT IDENTIFIER from dotted form', () => {
    assert.equal(hex(oid('1.2.840.10045.2.1')), '06072a8648ce3d0201');
    assert.equal(hex(oid('1.2.840.10045.3.1.7')), '06082a8648ce3d030107');
    assert.equal(hex(oid('2.5.4.3')), '0603550403');
    assert.equal(hex(oid('2.999.3')), '0603883703');
    assert.equal(hex(oid('0.0')), '060100');
    for (const bad of ['', '1', '1.', '3.1', '1.40', '1.2.03', '1..2', 'a.b', '1.2.99999999999999999']) {
      assert.throws(() => oid(bad), RangeError, bad);
    }
  });

  test('lengths in their shortest form', () => {
    assert.equal(hex(octetString(new Uint8Array(127))).slice(0, 4), '047f');
    assert.equal(hex(octetString(new Uint8Array(128))).slice(0, 6), '048180');
    assert.equal(hex(octetString(new Uint8Array(255))).slice(0, 6), '0481ff');
    assert.equal(hex(octetString(new Uint8Array(256))).slice(0, 8), '04820100');
    assert.equal(hex(octetString(new Uint8Array(65536))).slice(0, 10), '0483010000');
  });

  test('the other types', () => {
    assert.equal(hex(sequence()), '3000');
    assert.equal(hex(sequence(nullValue(), boolean(true), boolean(false))), '3008' + '0500' + '0101ff' + '010100');
    assert.equal(
      hex(setOf(octetString(Uint8Array.of(2)), integer(Uint8Array.of(9)), octetString(Uint8Array.of(1)))),
      '3109020109040101040102',
    );
    assert.equal(hex(utf8String('dév')), '0c0464c3a976');
    assert.equal(
      hex(printableString("Acme Ltd. (x)'+,-/:=?")),
      `1315${toHex(new TextEncoder().encode("Acme Ltd. (x)'+,-/:=?"))}`,
    );
    assert.throws(() => printableString('dev_1'), RangeError);
    assert.equal(hex(bitString(Uint8Array.of(4, 1))), '0303000401');
    assert.equal(hex(contextConstructed(0)), 'a000');
    assert.equal(hex(contextConstructed(3, nullValue())), 'a3020500');
    assert.equal(hex(contextPrimitive(1, Uint8Array.of(7))), '810107');
    assert.throws(() => contextConstructed(31), RangeError);
  });
});

describe('DER reader', () => {
  test('reads a tree with exact byte ranges', () => {
    const inner = sequence(integer(Uint8Array.of(5)), oid('2.5.4.3'));
    const der = sequence(inner, octetString(new Uint8Array(200)), contextConstructed(0, nullValue()));
    const root = readDer(der);
    assert.equal(root.start, 0);
    assert.equal(root.contentStart, 3); // 30 81 d9
    assert.equal(root.end, der.length);
    const [a, b, c] = root.children!;
    assert.equal(hex(a!.encoding), hex(inner));
    assert.equal(a!.start, 3);
    assert.equal(b!.content.length, 200);
    assert.equal(b!.contentStart - b!.start, 3);
    assert.equal(c!.tag, 0xa0);
    assert.equal(hex(readInteger(a!.children![0], 'n')), '05');
    assert.equal(readOid(a!.children![1], 'o'), '2.5.4.3');
    assert.equal(b!.children, undefined);
  });

  test('round trip of writer output', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.array(fc.nat({ max: 2 ** 40 }), { minLength: 1, maxLength: 6 }),
        (bytes, arcs) => {
          const dotted = `2.${arcs.join('.')}`;
          const der = sequence(integer(bytes), oid(dotted), bitString(bytes), utf8String('dev-1'));
          const [i, o, b, s] = readDer(der).children!;
          const stripped = bytes.subarray(
            bytes.findIndex((x) => x !== 0) === -1 ? bytes.length : bytes.findIndex((x) => x !== 0),
          );
          assert.equal(hex(readUnsigned(i, 'i')), stripped.length === 0 ? '00' : hex(stripped));
          assert.equal(readOid(o, 'o'), dotted);
          assert.equal(hex(readBits(b, 'b').bytes), hex(bytes));
          assert.equal(readString(s, 's'), 'dev-1');
        },
      ),
      { numRuns: 300 },
    );
  });

  test('refuses what is not DER', () => {
    refused('3080', /indefinite length/);
    refused('308105' + '0500050005', /long-form length is under 128/);
    refused(`30820080${'00'.repeat(128)}`, /leading zero byte/);
    refused(`3085${'01'.repeat(5)}`, /5-byte length/);
    refused('050000', /1 byte\(s\) after the DER value/);
    refused('3004050000', /truncated DER: 4 content byte\(s\) announced, 3 left/);
    refused('30', /length is missing/);
    refused('', /a value was expected/);
    refused('04820100', /truncated DER length|truncated DER/);
    refused('2403040100', /universal tag 4 in constructed form/);
    refused('1000', /universal tag 16 in primitive form/);
    refused('1f0100', /multi-byte DER tags/);
    refused('0000', /end-of-contents/);
    refused('02020001', /INTEGER is not minimally encoded/);
    refused('0202ff80', /INTEGER is not minimally encoded/);
    refused('0200', /INTEGER has no content/);
    refused('010101', /BOOLEAN is one byte, 00 or FF/);
    refused('0101', /length is missing|truncated/);
    refused('050101', /NULL has content/);
    refused('0603808101', /leading zero digit/);
    refused('06022a86', /ends inside an arc/);
    refused('0600', /has no content/);
    refused('06088fffffffffffff7f', /arc is too large/);
    refused('030108', /unused-bits/);
    refused('030101', /unused-bits/);
    refused('0302010f', /non-zero padding bits/);
    refused('0300', /no unused-bits octet/);
    assert.throws(() => readDer('3000' as unknown as Uint8Array), DerError);
  });

  test('limits depth and node count', () => {
    let deep = nullValue();
    for (let i = 0; i < 40; i++) deep = sequence(deep);
    refused(deep, /nesting deeper than 32/);
    assert.equal(readDer(deep, { maxDepth: 41 }).tag, 0x30);
    refused(deep, /nesting deeper than 5/, { maxDepth: 5 });
    const wide = sequence(...Array.from({ length: 100 }, () => nullValue()));
    refused(wide, /more than 50 DER values/, { maxNodes: 50 });
    assert.equal(readDer(wide).children!.length, 100);
  });

  test('SET OF order, BOOLEAN, strings', () => {
    const sorted = setOf(integer(Uint8Array.of(2)), integer(Uint8Array.of(1)));
    assert.equal(setItems(readDer(sorted), 'set').length, 2);
    const unsorted = fromHex('3106020102020101');
    assert.throws(() => setItems(readDer(unsorted), 'the set'), /not in DER order/);
    assert.equal(readBoolean(readDer(boolean(true)), 'b'), true);
    assert.equal(readBoolean(readDer(boolean(false)), 'b'), false);
    assert.equal(readString(readDer(printableString('Acme')), 'o'), 'Acme');
    assert.throws(() => readString(readDer(fromHex('13015f')), 'o'), /PrintableString/);
    assert.throws(() => readString(readDer(fromHex('0c01ff')), 'cn'), /not valid UTF-8/);
    assert.throws(() => readString(readDer(fromHex('1e020041')), 'cn'), /only UTF8String/);
    assert.throws(() => readInteger(readDer(nullValue()), 'the serial'), /the serial has tag 0x05, expected 0x02/);
  });

  test('UTCTime and GeneralizedTime', () => {
    const time = (tag: number, text: string) =>
      readTime(readDer(concat(Uint8Array.of(tag, text.length), new TextEncoder().encode(text))), 't');
    assert.equal(time(0x17, '491231235959Z'), Date.UTC(2049, 11, 31, 23, 59, 59));
    assert.equal(time(0x17, '500101000000Z'), Date.UTC(1950, 0, 1));
    assert.equal(time(0x17, '240229120000Z'), Date.UTC(2024, 1, 29, 12));
    assert.equal(time(0x18, '20500101000000Z'), Date.UTC(2050, 0, 1));
    assert.equal(time(0x18, '00010101000000Z'), new Date('0001-01-01T00:00:00Z').getTime());
    assert.equal(time(0x18, '99991231235959Z'), Date.UTC(9999, 11, 31, 23, 59, 59));
    for (const [tag, text] of [
      [0x17, '2402291200Z'],
      [0x17, '230229120000Z'],
      [0x17, '241301000000Z'],
      [0x17, '240100000000Z'],
      [0x17, '240101240000Z'],
      [0x17, '240101006000Z'],
      [0x17, '240101000060Z'],
      [0x17, '240101000000+0100'],
      [0x17, '240101000000'],
      [0x18, '20240101000000.5Z'],
      [0x18, '20240101000000'],
      [0x18, '2024010100000Z'],
      [0x04, '20240101000000Z'],
    ] as const) {
      assert.throws(() => time(tag, text), DerError, text);
    }
  });

  test('random bytes only ever raise DerError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          readDer(bytes);
        } catch (e) {
          if (!(e instanceof DerError)) throw e;
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('ECDSA-Sig-Value', () => {
  test('raw r ‖ s to DER: minimal positive INTEGERs', () => {
    const raw = new Uint8Array(64);
    raw[31] = 1;
    raw[32] = 0x80;
    assert.equal(hex(ecdsaSignatureToDer(raw)), `3026020101022100${'80'}${'00'.repeat(31)}`);
    assert.throws(() => ecdsaSignatureToDer(new Uint8Array(63)), RangeError);
  });

  test('round trip', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (raw) => {
        fc.pre(raw.subarray(0, 32).some((b) => b !== 0) && raw.subarray(32).some((b) => b !== 0));
        assert.equal(hex(ecdsaSignatureFromDer(ecdsaSignatureToDer(raw))), hex(raw));
      }),
      { numRuns: 500 },
    );
  });

  test('DER signatures from node:crypto (OpenSSL) verify after conversion', async () => {
    const pki = await makePki({ deviceIds: ['dev-1'] });
    const dev = pki.devices.get('dev-1')!;
    for (const provider of providers) {
      for (let i = 0; i < 20; i++) {
        const message = provider.randomBytes(i * 7);
        const der = nodeSign('sha256', message, createPrivateKey(dev.keyPem));
        assert.ok(provider.ecdsaP256Verify(dev.publicKey, message, ecdsaSignatureFromDer(new Uint8Array(der))));
      }
    }
  });

  test('refuses malformed signatures', () => {
    const int = (h: string) => `02${(h.length / 2).toString(16).padStart(2, '0')}${h}`;
    const sig = (...parts: string[]) => {
      const body = parts.join('');
      return fromHex(`30${(body.length / 2).toString(16).padStart(2, '0')}${body}`);
    };
    const one = int('01');
    const cases: [Uint8Array, RegExp][] = [
      [sig(int(`01${'00'.repeat(32)}`), one), /r is not below 2\^256/],
      [sig(one, int(`00ff${'00'.repeat(32)}`)), /s is not below 2\^256/],
      [sig(int('ff'), one), /r is negative/],
      [sig(int('00'), one), /r is zero/],
      [sig(one, int('0001')), /not minimally encoded/],
      [sig(one), /has 1 element/],
      [sig(one, one, one), /has 3 element/],
      [concat(sig(one, one), Uint8Array.of(0)), /after the DER value/],
      [fromHex('3180'), /indefinite|tag/],
      [sig(one, '0500'), /tag 0x05, expected 0x02/],
    ];
    for (const [der, message] of cases) {
      assert.throws(
        () => ecdsaSignatureFromDer(der),
        (e: unknown) => e instanceof DerError && message.test(e.message),
      );
    }
  });
});
