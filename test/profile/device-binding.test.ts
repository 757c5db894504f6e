/**
 * The key message binds its device (docs/PROTOCOL.md §4.2, §4.3 step 5, §7 "Device binding"): the
 * recipient's COSE_KDF_Context carries the device id (the certificate's CN, UTF-8) as PartyU
 * identity (RFC 9053 §5.2). This test does not use the library's context builder or key
 * derivation: the context is written byte by byte from RFC 9053's definition, ECDH, HKDF, AES key
 * wrap and AES-GCM come from node:crypto, and the results are compared with what the library
 * (both providers) makes and opens. A COSE_Encrypt made for device A and re-signed with device B's
 * key is refused with `unwrap-failed`.
 */
import assert from 'node:assert/strict';
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  type ECDH,
  hkdfSync,
  randomBytes,
} from 'node:crypto';
import { before, describe, test } from 'node:test';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { equal } from '../../src/bytes.js';
import { decode, encode, Tag } from '../../src/cbor/index.js';
import { CoseError } from '../../src/cose/errors.js';
import { makeSign1 } from '../../src/cose/sign1.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import {
  makeKeyMessage,
  newSessionKey,
  type OpenKeyMessage,
  openKeyMessage,
  type SessionKey,
} from '../../src/profile/index.js';
import { makePki, type Pki } from '../fixtures/pki.js';
import { providers, withRandomStream } from '../providers.js';

/** A CBOR byte string header (major type 2) for `n` < 256 bytes: RFC 8949 §3.1. */
const bstrHead = (n: number) => (n < 24 ? Buffer.from([0x40 + n]) : Buffer.from([0x58, n]));

/**
 * COSE_KDF_Context (RFC 9053 §5.2) for the cose-flow/1 recipient, written out by hand:
 *   [ AlgorithmID = -3 (A128KW),
 *     PartyUInfo  = [ identity = h'<device id>' (or nil), nonce = nil, other = nil ],
 *     PartyVInfo  = [ nil, nil, nil ],
 *     SuppPubInfo = [ keyDataLength = 128, protected = h'A101381C' ] ]
 */
function handContext(deviceId: string | null): Buffer {
  const identity =
    deviceId === null
      ? Buffer.from([0xf6])
      : Buffer.concat([bstrHead(Buffer.byteLength(deviceId)), Buffer.from(deviceId, 'utf8')]);
  return Buffer.concat([
    Buffer.from([0x84]), // array(4)
    Buffer.from([0x22]), // -3
    Buffer.from([0x83]), // PartyUInfo: array(3)
    identity,
    Buffer.from([0xf6, 0xf6]),
    Buffer.from([0x83, 0xf6, 0xf6, 0xf6]), // PartyVInfo
    Buffer.from([0x82, 0x18, 0x80, 0x44, 0xa1, 0x01, 0x38, 0x1c]), // [128, h'A101381C']
  ]);
}

const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

/** KEK = HKDF-SHA-256(salt none, IKM = x(ECDH), info = context, L = 16), all node:crypto. */
function kek(ecdh: ECDH, peerPoint: Uint8Array, context: Buffer): Buffer {
  const z = ecdh.computeSecret(peerPoint);
  return Buffer.from(hkdfSync('sha256', z, Buffer.alloc(0), context, 16));
}

/** RFC 3394 unwrap with node:crypto; throws when the integrity check fails (the KEK is not the sender's). */
const unwrap = (key: Buffer, wrapped: Uint8Array): Buffer => {
  try {
    const d = createDecipheriv('id-aes128-wrap', key, AES_KW_IV);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch (e) {
    throw new Error(`AES key unwrap (node:crypto) refused the wrapped CEK under this KEK: ${String(e)}`);
  }
};
const wrap = (key: Buffer, cek: Buffer): Buffer => {
  const c = createCipheriv('id-aes128-wrap', key, AES_KW_IV);
  return Buffer.concat([c.update(cek), c.final()]);
};

/** Enc_structure ["Encrypt", protected, h''] (RFC 9052 §5.3) by hand, for a protected bucket < 24 bytes. */
const encStructure = (prot: Uint8Array) =>
  Buffer.concat([Buffer.from([0x83, 0x67]), Buffer.from('Encrypt'), bstrHead(prot.length), prot, Buffer.from([0x40])]);

interface Fields {
  encProtected: Uint8Array;
  iv: Uint8Array;
  ciphertext: Uint8Array;
  epk: Uint8Array;
  wrapped: Uint8Array;
}

/** The fields of a key message's COSE_Encrypt and its one recipient. */
function fields(keyMessage: Uint8Array): Fields {
  const sign1 = (decode(keyMessage, { allowTags: 'any' }) as Tag).value as unknown[];
  const encrypt = (decode(sign1[2] as Uint8Array, { allowTags: 'any' }) as Tag).value as unknown[];
  const recipient = (encrypt[3] as unknown[][])[0]!;
  const ephemeral = (recipient[1] as Map<number, Map<number, Uint8Array>>).get(-1)!;
  return {
    encProtected: encrypt[0] as Uint8Array,
    iv: (encrypt[1] as Map<number, Uint8Array>).get(5)!,
    ciphertext: encrypt[2] as Uint8Array,
    epk: new Uint8Array([4, ...ephemeral.get(-2)!, ...ephemeral.get(-3)!]),
    wrapped: recipient[2] as Uint8Array,
  };
}

function gcmOpen(cek: Buffer, f: Fields): Buffer {
  const d = createDecipheriv('aes-128-gcm', cek, f.iv);
  d.setAAD(encStructure(f.encProtected));
  d.setAuthTag(f.ciphertext.subarray(-16));
  return Buffer.concat([d.update(f.ciphertext.subarray(0, -16)), d.final()]);
}

/** Re-signs a key message's COSE_Encrypt (its payload, untouched) with another device's key and certificate. */
function resignAs(crypto: CryptoProvider, keyMessage: Uint8Array, key: Uint8Array, certificate: Uint8Array) {
  const sign1 = (decode(keyMessage, { allowTags: 'any' }) as Tag).value as unknown[];
  return makeSign1(crypto, crypto.p256Import(key), {
    protected: new Map<number, unknown>([
      [1, -7],
      [3, 96],
      [33, certificate],
    ]),
    payload: sign1[2] as Uint8Array,
  });
}

const refusedWith = (reason: string, fn: () => unknown, what: string) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoseError, `${what}: threw ${String(e)}`);
    assert.equal(e.reason, reason, `${what}: ${e.reason} (${e.message}), expected ${reason}`);
    return true;
  });

let pki: Pki;
let cloudEcdh: ECDH;
before(async () => {
  pki = await makePki({ deviceIds: ['sensor-a', 'sensor-b', `long-${'x'.repeat(50)}`] });
  cloudEcdh = createECDH('prime256v1');
  cloudEcdh.setPrivateKey(Buffer.from(pki.cloud.privateScalar));
});

/** openKeyMessage's options for `topicDeviceId` on `crypto`. */
function openOptions(crypto: CryptoProvider, topicDeviceId: string): OpenKeyMessage {
  const cloudKey = crypto.p256Import(pki.cloud.privateScalar);
  return {
    cloudKey: () => cloudKey,
    verifyCertificate: deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] }),
    topicDeviceId,
  };
}

for (const crypto of providers) {
  describe(`device binding in the KDF context (${crypto.name})`, () => {
    for (const deviceId of ['sensor-a', `long-${'x'.repeat(50)}`]) {
      test(`the KEK is HKDF over [-3, [h'<${deviceId.length}-byte id>', nil, nil], [nil, nil, nil], [128, h'A101381C']]`, () => {
        const cek = randomBytes(16);
        const iv = randomBytes(12);
        const ephemeral = randomBytes(32);
        const session: SessionKey = newSessionKey(crypto, 9);
        const device = pki.devices.get(deviceId)!;
        // Copies: makeKeyMessage wipes the CEK it drew.
        const random = [cek, iv, ephemeral].map((b) => new Uint8Array(b));
        const keyMessage = makeKeyMessage(withRandomStream(crypto, random), {
          deviceId,
          deviceKey: crypto.p256Import(device.privateScalar),
          deviceCertificate: device.der,
          cloudPublicKey: pki.cloud.publicKey,
          session,
        });
        const f = fields(keyMessage);
        const context = handContext(deviceId);
        assert.equal(context.length, 18 + Buffer.byteLength(deviceId) + (deviceId.length < 24 ? 0 : 1));

        // The library's wrapped CEK opens under the hand-made context, and under no other.
        const unwrapped = unwrap(kek(cloudEcdh, f.epk, context), f.wrapped);
        assert.equal(unwrapped.toString('hex'), cek.toString('hex'), 'the CEK unwrapped with node:crypto');
        assert.throws(() => unwrap(kek(cloudEcdh, f.epk, handContext(null)), f.wrapped), 'PartyU nil (before binding)');
        assert.throws(() => unwrap(kek(cloudEcdh, f.epk, handContext('sensor-b')), f.wrapped), 'another device id');

        // The content opens with that CEK to the session the library sealed, and the library agrees.
        const plaintext = decode(gcmOpen(unwrapped, f)) as Map<number, Uint8Array>;
        assert.ok(equal(plaintext.get(-1)!, session.key), 'session key k');
        assert.ok(equal(plaintext.get(5)!, session.baseIv), 'Base IV');
        for (const receiver of providers) {
          assert.deepEqual(openKeyMessage(receiver, keyMessage, openOptions(receiver, deviceId)).session, session);
        }
      });
    }

    test('a key message wrapped by hand for sensor-b (node:crypto) opens in the library as sensor-b only', () => {
      const session = newSessionKey(crypto, 4);
      const cek = randomBytes(16);
      const iv = randomBytes(12);
      const ephemeral = createECDH('prime256v1');
      ephemeral.generateKeys();
      const encProtected = encode(
        new Map<number, unknown>([
          [1, 1],
          [4, session.kid],
        ]),
      );
      const cipher = createCipheriv('aes-128-gcm', cek, iv);
      cipher.setAAD(encStructure(encProtected));
      const content = encode(
        new Map<number, unknown>([
          [1, 4],
          [2, session.kid],
          [3, 1],
          [5, session.baseIv],
          [-1, session.key],
        ]),
      );
      const ciphertext = Buffer.concat([cipher.update(content), cipher.final(), cipher.getAuthTag()]);
      const cloudPoint = Buffer.from(pki.cloud.publicKey);
      const wrapped = wrap(kek(ephemeral, cloudPoint, handContext('sensor-b')), cek);
      const point = ephemeral.getPublicKey();
      const recipient = [
        new Uint8Array([0xa1, 0x01, 0x38, 0x1c]),
        new Map<number, unknown>([
          [4, new Uint8Array(createHash('sha256').update(cloudPoint).digest().subarray(0, 8))],
          [
            -1,
            new Map<number, unknown>([
              [1, 2],
              [-1, 1],
              [-2, new Uint8Array(point.subarray(1, 33))],
              [-3, new Uint8Array(point.subarray(33))],
            ]),
          ],
        ]),
        new Uint8Array(wrapped),
      ];
      const encrypt = encode(
        new Tag([encProtected, new Map([[5, new Uint8Array(iv)]]), new Uint8Array(ciphertext), [recipient]], 96),
      );
      const b = pki.devices.get('sensor-b')!;
      const a = pki.devices.get('sensor-a')!;
      const asB = makeSign1(crypto, crypto.p256Import(b.privateScalar), {
        protected: new Map<number, unknown>([
          [1, -7],
          [3, 96],
          [33, b.der],
        ]),
        payload: encrypt,
      });
      assert.deepEqual(openKeyMessage(crypto, asB, openOptions(crypto, 'sensor-b')).session, session);
      refusedWith(
        'unwrap-failed',
        () => openKeyMessage(crypto, resignAs(crypto, asB, a.privateScalar, a.der), openOptions(crypto, 'sensor-a')),
        'sensor-b COSE_Encrypt re-signed as sensor-a',
      );
    });

    test("device B's key re-signing device A's captured COSE_Encrypt, on B's topic: unwrap-failed", () => {
      const a = pki.devices.get('sensor-a')!;
      const b = pki.devices.get('sensor-b')!;
      const keyMessage = makeKeyMessage(crypto, {
        deviceId: 'sensor-a',
        deviceKey: crypto.p256Import(a.privateScalar),
        deviceCertificate: a.der,
        cloudPublicKey: pki.cloud.publicKey,
        session: newSessionKey(crypto, 1),
      });
      const resigned = resignAs(crypto, keyMessage, b.privateScalar, b.der);
      for (const receiver of providers) {
        refusedWith(
          'unwrap-failed',
          () => openKeyMessage(receiver, resigned, openOptions(receiver, 'sensor-b')),
          `re-signed, opened by ${receiver.name}`,
        );
        // Without a topic (a file given to inspect) the certificate's CN is bound all the same.
        refusedWith(
          'unwrap-failed',
          () => openKeyMessage(receiver, resigned, { ...openOptions(receiver, 'sensor-b'), topicDeviceId: undefined }),
          `re-signed, opened by ${receiver.name} without a topic`,
        );
      }
    });
  });
}
