/**
 * docs/PROTOCOL.md §5 reproduced by the reference code, byte for byte, from the document itself:
 * the fixed inputs of 5.1 (each private value is SHA-256("cose-flow/1 example: <name>")), the key
 * message intermediates of 5.2, the key message of 5.3 (diagnostic notation and hex) and the data
 * messages of 5.4 and 5.5. Every value is read from the document, so the worked examples cannot
 * drift from the code. The key message is made with the noble provider (RFC 6979 signatures, so
 * the signature is reproduced too) and with node:crypto (every byte but the signature, which
 * verifies), and opened with both.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { concat, equal, fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import { decode, encode, type Tag } from '../../src/cbor/index.js';
import { CoseError } from '../../src/cose/errors.js';
import { kdfContextA128kw } from '../../src/cose/index.js';
import { decodeSign1, verifySign1 } from '../../src/cose/sign1.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import {
  cloudKeyId,
  encodePartialIv,
  makeKeyMessage,
  type OpenKeyMessage,
  openData,
  openKeyMessage,
  parseDataMessage,
  type SessionKey,
  sealData,
} from '../../src/profile/index.js';
import { providers, withRandomStream } from '../providers.js';
import { projectRoot } from '../vectors.js';

const DOC = 'docs/PROTOCOL.md';
const text = readFileSync(join(projectRoot, DOC), 'utf8');

/** The text of section `heading` (a line starting with it) up to the next heading of the same or a higher level. */
function section(heading: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  assert.ok(start >= 0, `${DOC}: no section "${heading}"`);
  const level = heading.split(' ')[0]!.length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.split(' ')[0]!.length <= level);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** The first `hex` in backticks on the table row of `body` whose first cell starts with `label`. */
function row(body: string, label: string): string {
  const line = body.split('\n').find((l) => l.replace(/^\|\s*/, '').startsWith(label));
  assert.ok(line, `${DOC}: no table row "${label}"`);
  const hex = /`([0-9A-F]{2,})`/.exec(line.split('|')[2]!);
  assert.ok(hex, `${DOC}: row "${label}" holds no hex value`);
  return hex[1]!;
}

/** The fenced blocks of `body`, without their fences. */
const blocks = (body: string) => [...body.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!);
/** The hex of a block of hex lines (the line breaks are not data). */
const hexBlock = (block: string) => {
  assert.match(block, /^[0-9A-F\n]+$/, `${DOC}: not a hex block: ${block.slice(0, 40)}`);
  return block.replace(/\n/g, '');
};
/** Every h'…' of a diagnostic-notation block, in order. */
const bstrs = (block: string) => [...block.matchAll(/h'([0-9A-F]*)'/g)].map((m) => m[1]!);
/** The value of a "- name: `HEX`" bullet. */
function bullet(body: string, name: string): string {
  const m = new RegExp(`^- ${name}: \`([0-9A-F]+)\``, 'm').exec(body);
  assert.ok(m, `${DOC}: no bullet "${name}"`);
  return m[1]!;
}

const s51 = section('### 5.1');
const s52 = section('### 5.2');
const s53 = section('### 5.3');
const hex = (b: Uint8Array) => toHex(b).toUpperCase();
const example = (name: string, bytes: number) =>
  new Uint8Array(createHash('sha256').update(`cose-flow/1 example: ${name}`).digest().subarray(0, bytes));

/** The inputs of 5.1, each checked against its derivation. */
function inputs() {
  const derived = {
    deviceD: ['device private key d', example('device key', 32)],
    cloudD: ['cloud private key d', example('cloud key', 32)],
    ephemeralD: ['ephemeral private key e', example('ephemeral key', 32)],
    k: ['session key K', example('session key', 16)],
    baseIv: ['Base IV', example('base iv', 12)],
    cek: ['CEK', example('cek', 16)],
    iv: ['IV (COSE_Encrypt)', example('iv', 12)],
  } as const;
  const out = {} as Record<keyof typeof derived, Uint8Array>;
  for (const [key, [label, value]] of Object.entries(derived)) {
    assert.equal(row(s51, label), hex(value), `${DOC} 5.1 "${label}" is not SHA-256("cose-flow/1 example: …")`);
    out[key as keyof typeof derived] = value;
  }
  const deviceLine = s51.split('\n').find((l) => l.startsWith('| device id / topic'))!;
  const deviceId = /`([^`]+)` \/ `([^`]+)`/.exec(deviceLine)!;
  assert.equal(deviceId[2], `cose-flow/v1/${deviceId[1]}/session`);
  return {
    ...out,
    deviceId: deviceId[1]!,
    certificate: fromHex(row(s51, 'device certificate')),
    kidCounter: 1,
    payload0: fromHex(row(s51, 'data payload, seq 0')),
    payload1: fromHex(row(s51, 'data payload, seq 1')),
  };
}

const input = inputs();
const session: SessionKey = { kid: new Uint8Array([input.kidCounter]), key: input.k, baseIv: input.baseIv };

function keyMessageWith(crypto: CryptoProvider): Uint8Array {
  // Copies: makeKeyMessage wipes the CEK it drew.
  const random = [input.cek, input.iv, input.ephemeralD].map((b) => b.slice());
  return makeKeyMessage(withRandomStream(crypto, random), {
    deviceId: input.deviceId,
    deviceKey: crypto.p256Import(input.deviceD),
    deviceCertificate: input.certificate,
    cloudPublicKey: crypto.p256Import(input.cloudD).publicKey,
    session,
  });
}

/** The example's certificate verifier: the placeholder certificate is (device id, device public key). */
function openOptions(crypto: CryptoProvider): OpenKeyMessage {
  const cloudKey = crypto.p256Import(input.cloudD);
  const devicePublicKey = crypto.p256Import(input.deviceD).publicKey;
  return {
    cloudKey: (kid) => (equal(kid, cloudKeyId(crypto, cloudKey.publicKey)) ? cloudKey : undefined),
    verifyCertificate: (der) => {
      if (!equal(der, input.certificate)) throw new CoseError('bad-certificate', 'not the example certificate');
      return { deviceId: input.deviceId, publicKey: devicePublicKey };
    },
    topicDeviceId: input.deviceId,
  };
}

describe(`${DOC} §5 examples, reproduced byte for byte`, () => {
  test('5.1 public keys follow from the private ones', () => {
    for (const crypto of providers) {
      assert.equal(hex(crypto.p256Import(input.deviceD).publicKey), row(s51, 'device public key'));
      assert.equal(hex(crypto.p256Import(input.cloudD).publicKey), row(s51, 'cloud public key Q_C'));
      assert.equal(hex(crypto.p256Import(input.ephemeralD).publicKey), row(s51, 'ephemeral public key E'));
    }
  });

  for (const crypto of providers) {
    test(`5.2 key message intermediates (${crypto.name})`, () => {
      const cloudPublic = crypto.p256Import(input.cloudD).publicKey;
      const z = crypto.ecdhP256(crypto.p256Import(input.ephemeralD), cloudPublic);
      const recipientProtected = fromHex('A101381C');
      const context = kdfContextA128kw(recipientProtected, utf8Encode(input.deviceId));
      const kek = crypto.hkdfSha256(z, new Uint8Array(0), context, 16);
      const message = keyMessageWith(crypto);
      const sign1 = decodeSign1(message, { requireTag: true });
      const payload = sign1.payload!;
      const sigStructure = encode(['Signature1', sign1.protectedBytes, new Uint8Array(0), payload]);
      const encProtected = encode(
        new Map<number, unknown>([
          [1, 1],
          [4, session.kid],
        ]),
      );
      const expect = (label: string, value: Uint8Array) =>
        assert.equal(hex(value), row(s52, label), `${DOC} 5.2 "${label}"`);
      expect('cloud key id', cloudKeyId(crypto, cloudPublic));
      expect('Z = x(e·Q_C)', z);
      expect('COSE_KDF_Context', context);
      expect('KEK', kek);
      expect('wrapped CEK', crypto.aesKeyWrap(kek, input.cek));
      expect(
        'session COSE_Key',
        encode(
          new Map<number, unknown>([
            [1, 4],
            [2, session.kid],
            [3, 1],
            [5, session.baseIv],
            [-1, session.key],
          ]),
        ),
      );
      expect('COSE_Encrypt protected', encProtected);
      expect('Enc_structure', encode(['Encrypt', encProtected, new Uint8Array(0)]));
      expect('SHA-256(Sig_structure)', crypto.sha256(sigStructure));
      // The rows that describe rather than list their bytes.
      const signProtectedRow = s52.split('\n').find((l) => l.includes('COSE_Sign1 protected ('))!;
      assert.ok(signProtectedRow.includes(`(${sign1.protectedBytes.length} bytes)`), signProtectedRow);
      assert.equal(
        hex(sign1.protectedBytes),
        `${/`([0-9A-F]+)` ‖ certificate/.exec(signProtectedRow)![1]}${hex(input.certificate)}`,
      );
      const sigRow = s52.split('\n').find((l) => l.includes('Sig_structure ('))!;
      assert.ok(sigRow.includes(`(${sigStructure.length} bytes)`), sigRow);
      assert.ok(sigRow.includes(`the ${payload.length} payload bytes`), sigRow);
    });
  }

  test('5.3 the key message (noble, RFC 6979: every byte, the signature included)', () => {
    const message = keyMessageWith(providers.find((p) => p.name === 'noble')!);
    const [diag, bytes] = blocks(s53);
    assert.equal(hex(message), hexBlock(bytes!), `${DOC} 5.3 hex`);
    assert.match(s53.split('\n')[0]!, new RegExp(`\\(${message.length} bytes\\)`));
    // The diagnostic notation lists the same byte strings, in order.
    const sign1 = decodeSign1(message, { requireTag: true });
    const encrypt = (decode(sign1.payload!, { allowTags: 'any' }) as Tag).value as unknown[];
    const recipient = (encrypt[3] as unknown[][])[0]!;
    const ephemeral = (recipient[1] as Map<number, Map<number, Uint8Array>>).get(-1)!;
    assert.deepEqual(
      bstrs(diag!),
      [
        input.certificate,
        session.kid,
        (encrypt[1] as Map<number, Uint8Array>).get(5)!,
        encrypt[2] as Uint8Array,
        (recipient[1] as Map<number, Uint8Array>).get(4)!,
        ephemeral.get(-2)!,
        ephemeral.get(-3)!,
        recipient[2] as Uint8Array,
        sign1.signature,
      ].map(hex),
      `${DOC} 5.3 diagnostic notation`,
    );
  });

  test('5.3 the key message (node:crypto: every byte but the ECDSA signature, which verifies)', () => {
    const node = providers.find((p) => p.name === 'node')!;
    const message = keyMessageWith(node);
    const documented = fromHex(hexBlock(blocks(s53)[1]!));
    assert.equal(message.length, documented.length);
    assert.equal(hex(message.subarray(0, -64)), hex(documented.subarray(0, -64)));
    verifySign1(node, decodeSign1(message, { requireTag: true }), node.p256Import(input.deviceD).publicKey);
  });

  for (const crypto of providers) {
    test(`5.3 opens with ${crypto.name} to the session of 5.1, as ${input.deviceId} only`, () => {
      const documented = fromHex(hexBlock(blocks(s53)[1]!));
      const opened = openKeyMessage(crypto, documented, openOptions(crypto));
      assert.equal(opened.deviceId, input.deviceId);
      assert.deepEqual(opened.session, session);
      // The same bytes under another certificate CN (the verifier says "sensor-0002"): unwrap-failed.
      const asOther: OpenKeyMessage = {
        ...openOptions(crypto),
        topicDeviceId: 'sensor-0002',
        verifyCertificate: (der) => ({ ...openOptions(crypto).verifyCertificate(der), deviceId: 'sensor-0002' }),
      };
      assert.throws(
        () => openKeyMessage(crypto, documented, asOther),
        (e: unknown) => e instanceof CoseError && e.reason === 'unwrap-failed',
      );
    });
  }

  for (const [heading, seq, payload] of [
    ['### 5.4', 0, input.payload0],
    ['### 5.5', 1, input.payload1],
  ] as const) {
    test(`${heading.slice(4)} data message, seq ${seq}`, () => {
      const body = section(heading);
      const piv = encodePartialIv(seq);
      const prot = encode(
        new Map<number, unknown>([
          [1, 1],
          [4, session.kid],
          [6, piv],
        ]),
      );
      const nonce = Uint8Array.from(input.baseIv, (b, i) => b ^ (concat(new Uint8Array(12 - piv.length), piv)[i] ?? 0));
      assert.equal(bullet(body, 'Partial IV'), hex(piv));
      assert.equal(bullet(body, 'nonce'), hex(nonce));
      assert.equal(bullet(body, 'protected'), hex(prot));
      assert.equal(bullet(body, 'Enc_structure'), hex(encode(['Encrypt0', prot, new Uint8Array(0)])));
      for (const crypto of providers) {
        const message = sealData(crypto, session, seq, payload);
        const [diag, bytes] = blocks(body);
        assert.equal(hex(message), hexBlock(bytes!), `${DOC} ${heading} hex (${crypto.name})`);
        assert.match(body.split('\n')[0]!, new RegExp(`\\(${message.length} bytes\\)`));
        const parsed = parseDataMessage(message);
        assert.deepEqual(bstrs(diag!), [hex(session.kid), hex(piv), hex(parsed.message.ciphertext)]);
        assert.equal(hex(openData(crypto, parseDataMessage(fromHex(hexBlock(bytes!))), session)), hex(payload));
      }
    });
  }
});
