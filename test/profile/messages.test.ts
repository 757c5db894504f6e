/**
 * cose-flow/1 key and data messages: round trips across providers, and every tampering or
 * substitution the profile must refuse, each with its reason code.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { concat, equal, toHex } from '../../src/bytes.js';
import { decode, encode, encodeAsGiven, Tag } from '../../src/cbor/index.js';
import {
  CoseError,
  type CoseReason,
  makeEcdhEsA128kwRecipient,
  makeEncrypt,
  symmetricKeyMap,
} from '../../src/cose/index.js';
import type { CryptoProvider, P256PrivateKey } from '../../src/crypto/provider.js';
import {
  cloudKeyId,
  compareKids,
  DEFAULT_MAX_MESSAGE_BYTES,
  decodeKid,
  decodePartialIv,
  encodeKid,
  encodePartialIv,
  makeKeyMessage,
  newSessionKey,
  type OpenKeyMessage,
  openData,
  openKeyMessage,
  parseDataMessage,
  type SessionKey,
  sealData,
} from '../../src/profile/index.js';
import { makePki, type Pki } from '../fixtures/pki.js';
import { providers } from '../providers.js';

const rejectsWith = (reason: CoseReason, fn: () => unknown, what: string) =>
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof CoseError, `${what}: threw ${String(e)} instead of a CoseError`);
      assert.equal(e.reason, reason, `${what}: reason ${e.reason}, expected ${reason} (${e.message})`);
      return true;
    },
    what,
  );

/** Re-encodes a message after `edit` changes its decoded structure (tags kept, map order kept). */
function mutate(bytes: Uint8Array, edit: (fields: unknown[]) => void): Uint8Array {
  const tag = decode(bytes, { allowTags: 'any' }) as Tag;
  const fields = tag.value as unknown[];
  edit(fields);
  return encode(new Tag(fields, tag.tag));
}

function flipByte(bytes: Uint8Array, index: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[index < 0 ? out.length + index : index]! ^= 0x01;
  return out;
}

let pki: Pki;
before(async () => {
  pki = await makePki({ deviceIds: ['dev-1', 'dev-2'] });
});

for (const sender of providers) {
  for (const receiver of providers) {
    describe(`key and data messages: ${sender.name} → ${receiver.name}`, () => {
      let deviceKey: P256PrivateKey;
      let cloudKey: P256PrivateKey;
      let session: SessionKey;
      let keyMessage: Uint8Array;
      let opts: OpenKeyMessage;

      before(() => {
        const dev = pki.devices.get('dev-1')!;
        deviceKey = sender.p256Import(dev.privateScalar);
        cloudKey = receiver.p256Import(pki.cloud.privateScalar);
        session = newSessionKey(sender, 7);
        keyMessage = makeKeyMessage(sender, {
          deviceId: 'dev-1',
          deviceKey,
          deviceCertificate: dev.der,
          cloudPublicKey: pki.cloud.publicKey,
          session,
        });
        const cloudKid = cloudKeyId(receiver, cloudKey.publicKey);
        opts = {
          cloudKey: (kid) => (equal(kid, cloudKid) ? cloudKey : undefined),
          verifyCertificate: deviceCertificateVerifier({ crypto: receiver, trustAnchors: [pki.caDer] }),
          topicDeviceId: 'dev-1',
        };
      });

      test('a key message opens to the same session', () => {
        const opened = openKeyMessage(receiver, keyMessage, opts);
        assert.equal(opened.deviceId, 'dev-1');
        assert.equal(decodeKid(opened.session.kid), 7n);
        assert.deepEqual(opened.session, session);
        assert.ok(equal(opened.deviceCertificate, pki.devices.get('dev-1')!.der));
      });

      test('data messages open with the session, in any order', () => {
        const payloads = [0, 1, 255, 256, 65535, 0xffffffff].map((seq) => ({
          seq,
          payload: encode(new Map<string, unknown>([['t', seq]])),
        }));
        const sealed = payloads.map(({ seq, payload }) => sealData(sender, session, seq, payload));
        for (const i of [5, 2, 0, 4, 1, 3]) {
          const parsed = parseDataMessage(sealed[i]!);
          assert.equal(parsed.seq, payloads[i]!.seq);
          assert.equal(decodeKid(parsed.kid), 7n);
          assert.deepEqual(openData(receiver, parsed, session), payloads[i]!.payload);
        }
      });

      test('a data message has exactly the profile layout', () => {
        const bytes = sealData(sender, session, 1, encode({ x: 1 }));
        const tag = decode(bytes, { allowTags: [16] }) as Tag;
        assert.equal(tag.tag, 16);
        const [prot, unprot, ct] = tag.value as [Uint8Array, Map<number, unknown>, Uint8Array];
        assert.equal(toHex(prot), `a3010104${toHex(encode(session.kid))}0641${'01'}`);
        assert.equal(unprot.size, 0);
        assert.equal(ct.length, encode({ x: 1 }).length + 16);
      });
    });
  }
}

describe('refusals', () => {
  const crypto: CryptoProvider = providers[0]!;
  let session: SessionKey;
  let keyMessage: Uint8Array;
  let opts: OpenKeyMessage;
  let deviceKey: P256PrivateKey;
  let data: Uint8Array;

  before(() => {
    const dev = pki.devices.get('dev-1')!;
    deviceKey = crypto.p256Import(dev.privateScalar);
    const cloudKey = crypto.p256Import(pki.cloud.privateScalar);
    session = newSessionKey(crypto, 3);
    keyMessage = makeKeyMessage(crypto, {
      deviceId: 'dev-1',
      deviceKey,
      deviceCertificate: dev.der,
      cloudPublicKey: pki.cloud.publicKey,
      session,
    });
    const cloudKid = cloudKeyId(crypto, cloudKey.publicKey);
    opts = {
      cloudKey: (kid) => (equal(kid, cloudKid) ? cloudKey : undefined),
      verifyCertificate: deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] }),
      topicDeviceId: 'dev-1',
    };
    data = sealData(crypto, session, 42, encode({ temperature: 21.5 }));
  });

  const openKey = (bytes: Uint8Array, o: Partial<OpenKeyMessage> = {}) =>
    openKeyMessage(crypto, bytes, { ...opts, ...o });
  const openDataMsg = (bytes: Uint8Array, s: SessionKey = session) => openData(crypto, parseDataMessage(bytes), s);

  /** Re-signs a key message after changing its protected header, so only the change is under test. */
  function resignedKeyMessage(edit: (prot: Map<number, unknown>) => void, payload?: Uint8Array): Uint8Array {
    return mutate(keyMessage, (f) => {
      const prot = decode(f[0] as Uint8Array) as Map<number, unknown>;
      edit(prot);
      f[0] = encode(prot);
      if (payload) f[2] = payload;
      const tbs = encode(['Signature1', f[0], new Uint8Array(0), f[2]]);
      f[3] = crypto.ecdsaP256Sign(deviceKey, tbs);
    });
  }

  test('tampered protected header, payload, signature', () => {
    rejectsWith(
      'bad-signature',
      () =>
        openKey(
          mutate(keyMessage, (f) => {
            // same headers, another (valid) key order: other bytes, so the signature must fail
            const prot = decode(f[0] as Uint8Array) as Map<number, unknown>;
            f[0] = encodeAsGiven(new Map([...prot.entries()].reverse()));
          }),
        ),
      'protected header re-encoded after signing',
    );
    rejectsWith(
      'bad-signature',
      () =>
        openKey(
          mutate(keyMessage, (f) => {
            const prot = decode(f[0] as Uint8Array) as Map<number, unknown>;
            prot.set(33, pki.devices.get('dev-2')!.der);
            f[0] = encode(prot);
          }),
          { topicDeviceId: 'dev-2' },
        ),
      'certificate swapped for another valid device certificate (topic dev-2)',
    );
    rejectsWith('bad-signature', () => openKey(flipByte(keyMessage, -1)), 'signature byte flipped');
    rejectsWith('bad-signature', () => openKey(flipByte(keyMessage, -100)), 'payload byte flipped');
  });

  test('data: tampered protected header, ciphertext, tag; wrong key; wrong kid', () => {
    rejectsWith(
      'decrypt-failed',
      () =>
        openDataMsg(
          mutate(data, (f) => {
            f[0] = encode(
              new Map<number, unknown>([
                [1, 1],
                [4, session.kid],
                [6, encodePartialIv(43)],
              ]),
            );
          }),
        ),
      'sequence number changed',
    );
    rejectsWith('decrypt-failed', () => openDataMsg(flipByte(data, -20)), 'ciphertext byte flipped');
    rejectsWith('decrypt-failed', () => openDataMsg(flipByte(data, -1)), 'GCM tag byte flipped');
    const other = newSessionKey(crypto, 3);
    rejectsWith('decrypt-failed', () => openDataMsg(data, other), 'another session key with the same kid');
    rejectsWith('kid-mismatch', () => openDataMsg(data, newSessionKey(crypto, 4)), 'another kid');
  });

  test('Partial IV longer than 4 bytes, non-minimal, empty; kid non-minimal or zero', () => {
    const withProt = (m: Map<number, unknown>) => mutate(data, (f) => (f[0] = encode(m)));
    const prot = (kid: Uint8Array, piv: Uint8Array) =>
      new Map<number, unknown>([
        [1, 1],
        [4, kid],
        [6, piv],
      ]);
    rejectsWith(
      'bad-partial-iv',
      () => parseDataMessage(withProt(prot(session.kid, new Uint8Array([1, 0, 0, 0, 0])))),
      '5-byte Partial IV',
    );
    rejectsWith(
      'bad-partial-iv',
      () => parseDataMessage(withProt(prot(session.kid, new Uint8Array([0, 1])))),
      'non-minimal Partial IV',
    );
    rejectsWith(
      'bad-partial-iv',
      () => parseDataMessage(withProt(prot(session.kid, new Uint8Array(0)))),
      'empty Partial IV',
    );
    rejectsWith(
      'bad-kid',
      () => parseDataMessage(withProt(prot(new Uint8Array([0, 3]), encodePartialIv(1)))),
      'non-minimal kid',
    );
    rejectsWith('bad-kid', () => parseDataMessage(withProt(prot(new Uint8Array([0]), encodePartialIv(1)))), 'kid 0');
    rejectsWith(
      'bad-kid',
      () => parseDataMessage(withProt(prot(new Uint8Array(9).fill(1), encodePartialIv(1)))),
      '9-byte kid',
    );
    assert.throws(
      () => encodePartialIv(2 ** 32),
      (e: unknown) => e instanceof CoseError && e.reason === 'seq-exhausted',
    );
    assert.throws(
      () => sealData(crypto, session, 2 ** 32, new Uint8Array(1)),
      (e: unknown) => e instanceof CoseError && e.reason === 'seq-exhausted',
    );
    assert.equal(decodePartialIv(encodePartialIv(0)), 0);
    assert.equal(toHex(encodePartialIv(0)), '00');
    assert.equal(toHex(encodeKid(256)), '0100');
    assert.equal(decodeKid(encodeKid(2 ** 53 - 1)), 2n ** 53n - 1n);
    assert.equal(toHex(encodeKid(2n ** 64n - 1n)), 'ffffffffffffffff');
    assert.equal(decodeKid(new Uint8Array(8).fill(0xff)), 2n ** 64n - 1n);
    assert.throws(() => encodeKid(2n ** 64n), RangeError);
    assert.throws(() => encodeKid(0), RangeError);
    assert.ok(compareKids(encodeKid(255), encodeKid(256)) < 0);
    assert.ok(compareKids(encodeKid(300), encodeKid(299)) > 0);
    assert.equal(compareKids(encodeKid(7), encodeKid(7)), 0);
  });

  test('missing, unknown and critical headers; alg substitution', () => {
    const dataProt = (entries: [number, unknown][]) => mutate(data, (f) => (f[0] = encode(new Map(entries))));
    rejectsWith(
      'missing-header',
      () =>
        parseDataMessage(
          dataProt([
            [1, 1],
            [4, session.kid],
          ]),
        ),
      'no Partial IV',
    );
    rejectsWith(
      'missing-header',
      () =>
        parseDataMessage(
          dataProt([
            [4, session.kid],
            [6, encodePartialIv(1)],
          ]),
        ),
      'no alg',
    );
    rejectsWith(
      'unknown-header',
      () =>
        parseDataMessage(
          dataProt([
            [1, 1],
            [4, session.kid],
            [6, encodePartialIv(1)],
            [99, 1],
          ]),
        ),
      'unknown protected label',
    );
    rejectsWith(
      'crit-not-supported',
      () =>
        parseDataMessage(
          dataProt([
            [1, 1],
            [2, [99]],
            [4, session.kid],
            [6, encodePartialIv(1)],
          ]),
        ),
      'crit',
    );
    rejectsWith(
      'unsupported-alg',
      () =>
        parseDataMessage(
          dataProt([
            [1, 3],
            [4, session.kid],
            [6, encodePartialIv(1)],
          ]),
        ),
      'A256GCM',
    );
    rejectsWith(
      'unsupported-alg',
      () =>
        parseDataMessage(
          dataProt([
            [1, 'A128GCM'],
            [4, session.kid],
            [6, encodePartialIv(1)],
          ]),
        ),
      'text alg',
    );
    rejectsWith(
      'bad-structure',
      () => parseDataMessage(mutate(data, (f) => (f[1] = new Map([[5, new Uint8Array(12)]])))),
      'full IV beside the Partial IV',
    );
    rejectsWith(
      'crit-not-supported',
      () => parseDataMessage(mutate(data, (f) => (f[1] = new Map([[2, [4]]])))),
      'crit in unprotected',
    );

    rejectsWith(
      'unsupported-alg',
      () => openKey(resignedKeyMessage((p) => p.set(1, -36))),
      'ES512 label with a P-256 key',
    );
    rejectsWith('unsupported-alg', () => openKey(resignedKeyMessage((p) => p.set(1, -35))), 'ES384');
    rejectsWith(
      'unknown-header',
      () => openKey(resignedKeyMessage((p) => p.set(4, new Uint8Array(1)))),
      'extra protected kid',
    );
    rejectsWith('missing-header', () => openKey(resignedKeyMessage((p) => p.delete(33))), 'no certificate');
    rejectsWith('crit-not-supported', () => openKey(resignedKeyMessage((p) => p.set(2, [33]))), 'crit in key message');
    rejectsWith('bad-structure', () => openKey(resignedKeyMessage((p) => p.set(3, 0))), 'content type not 96');
  });

  test('inner COSE_Encrypt refusals (re-signed so only the inner change is under test)', () => {
    const sign1 = (decode(keyMessage, { allowTags: 'any' }) as Tag).value as unknown[];
    const inner = sign1[2] as Uint8Array;
    const editInner = (edit: (f: unknown[]) => void) => resignedKeyMessage(() => {}, mutate(inner, edit));
    rejectsWith(
      'unsupported-alg',
      () =>
        openKey(
          editInner(
            (f) =>
              (f[0] = encode(
                new Map<number, unknown>([
                  [1, 3],
                  [4, session.kid],
                ]),
              )),
          ),
        ),
      'content alg A256GCM',
    );
    rejectsWith(
      'unsupported-alg',
      () => openKey(editInner((f) => ((f[3] as unknown[][])[0]![0] = encode(new Map([[1, -31]]))))),
      'recipient alg A256KW',
    );
    rejectsWith(
      'bad-structure',
      () => openKey(editInner((f) => (f[3] = [(f[3] as unknown[])[0], (f[3] as unknown[])[0]]))),
      'two recipients',
    );
    rejectsWith('unknown-recipient', () => openKey(keyMessage, { cloudKey: () => undefined }), 'cloud key not held');
    const wrongCloud = crypto.p256Generate();
    rejectsWith('unwrap-failed', () => openKey(keyMessage, { cloudKey: () => wrongCloud }), 'wrong cloud key');
    // invalid-curve ephemeral key: a point not on P-256
    rejectsWith(
      'bad-key',
      () =>
        openKey(
          editInner((f) => {
            const epk = ((f[3] as unknown[][])[0]![1] as Map<number, unknown>).get(-1) as Map<number, unknown>;
            const y = Uint8Array.from(epk.get(-3) as Uint8Array);
            y[31]! ^= 1;
            epk.set(-3, y);
          }),
        ),
      'ephemeral key off the curve',
    );
    rejectsWith(
      'unwrap-failed',
      () =>
        openKey(
          editInner((f) => ((f[3] as unknown[][])[0]![2] = flipByte((f[3] as unknown[][])[0]![2] as Uint8Array, 3))),
        ),
      'wrapped CEK flipped',
    );
    rejectsWith(
      'decrypt-failed',
      () => openKey(editInner((f) => (f[2] = flipByte(f[2] as Uint8Array, 0)))),
      'session key ciphertext flipped',
    );
  });

  test('the session COSE_Key: kid must equal the protected kid; alg, sizes and labels checked', () => {
    /** A correctly encrypted and signed key message whose session COSE_Key is `keyMap`. */
    const withSessionKey = (keyMap: Map<number, unknown>) => {
      const cek = crypto.randomBytes(16);
      const iv = crypto.randomBytes(12);
      const recipient = makeEcdhEsA128kwRecipient(crypto, {
        cek,
        recipientPublicKey: pki.cloud.publicKey,
        recipientKid: cloudKeyId(crypto, pki.cloud.publicKey),
        partyUIdentity: new TextEncoder().encode('dev-1'),
      });
      const inner = makeEncrypt(crypto, {
        protected: new Map<number, unknown>([
          [1, 1],
          [4, session.kid],
        ]),
        unprotected: new Map([[5, iv]]),
        plaintext: encode(keyMap),
        cek,
        nonce: iv,
        recipients: [recipient],
      });
      return resignedKeyMessage(() => {}, inner);
    };
    const good = () => symmetricKeyMap({ kid: session.kid, alg: 1, baseIv: session.baseIv, k: session.key });
    assert.deepEqual(openKey(withSessionKey(good())).session, session, 'the hand-built message is valid');
    rejectsWith(
      'kid-mismatch',
      () => openKey(withSessionKey(good().set(2, encodeKid(4)))),
      'COSE_Key kid 4 under protected kid 3',
    );
    rejectsWith('unsupported-alg', () => openKey(withSessionKey(good().set(3, 3))), 'session key for A256GCM');
    rejectsWith('bad-key', () => openKey(withSessionKey(good().set(-1, new Uint8Array(32)))), '32-byte session key');
    rejectsWith('bad-key', () => openKey(withSessionKey(good().set(5, new Uint8Array(16)))), '16-byte Base IV');
    rejectsWith('bad-key', () => openKey(withSessionKey(good().set(1, 2))), 'kty EC2');
    rejectsWith('bad-key', () => openKey(withSessionKey(good().set(99, 0))), 'unknown COSE_Key label');
    const noBaseIv = good();
    noBaseIv.delete(5);
    rejectsWith('bad-key', () => openKey(withSessionKey(noBaseIv)), 'no Base IV');
  });

  test('certificates: another device’s certificate on this topic, untrusted CA', async () => {
    rejectsWith('device-mismatch', () => openKey(keyMessage, { topicDeviceId: 'dev-2' }), 'topic names another device');
    const otherPki = await makePki({ deviceIds: ['dev-1'] });
    rejectsWith(
      'bad-certificate',
      () =>
        openKey(keyMessage, {
          verifyCertificate: deviceCertificateVerifier({ crypto, trustAnchors: [otherPki.caDer] }),
        }),
      'certificate from another CA',
    );
  });

  test('truncated, oversized, wrong tags, garbage', () => {
    for (let n = 0; n < keyMessage.length; n += 7) {
      assert.throws(
        () => openKey(keyMessage.subarray(0, n)),
        (e: unknown) => e instanceof CoseError,
        `key message truncated to ${n}`,
      );
    }
    for (let n = 0; n < data.length; n++) {
      assert.throws(
        () => parseDataMessage(data.subarray(0, n)),
        (e: unknown) => e instanceof CoseError,
        `data truncated to ${n}`,
      );
    }
    const big = sealData(crypto, session, 1, new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES));
    rejectsWith('too-large', () => parseDataMessage(big), 'over 64 KiB');
    rejectsWith('too-large', () => parseDataMessage(data, data.length - 1), 'over a configured limit');
    rejectsWith('bad-tag', () => parseDataMessage(keyMessage), 'a key message on the data topic');
    rejectsWith('bad-tag', () => openKey(data), 'a data message on the session topic');
    rejectsWith('bad-tag', () => parseDataMessage(data.subarray(1)), 'untagged');
    rejectsWith('bad-tag', () => parseDataMessage(concat(Uint8Array.of(0xd8, 0x63), data.subarray(1))), 'tag 99');
    rejectsWith('bad-cbor', () => parseDataMessage(concat(data, Uint8Array.of(0))), 'trailing byte');
    rejectsWith('bad-structure', () => parseDataMessage(encode(new Tag([1, 2, 3], 16))), 'wrong field types');
    rejectsWith(
      'bad-structure',
      () => parseDataMessage(encode(new Tag([new Uint8Array(0), new Map()], 16))),
      'two fields',
    );
  });
});
