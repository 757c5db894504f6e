/**
 * The protocol inside the real XS engine (the project's XS host, native/xs-host) with each XS
 * provider (noble; native, the C over PSA Crypto), against Node with the node:crypto provider,
 * in both directions:
 * - the cose-wg examples verify, decrypt, unwrap and re-encrypt byte for byte in XS;
 * - a key message and data messages sealed in XS open in Node (cloud certificate verifier);
 * - a key message and data messages sealed in Node open in XS (device-side certificate verifier
 *   of src/pki), and tampered ones are refused there with the right reason.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { nodeCrypto } from '../../node/crypto.js';
import { equal, fromHex, toHex } from '../../src/bytes.js';
import { encode } from '../../src/cbor/index.js';
import { decodeSign1, makeSign1 } from '../../src/cose/sign1.js';
import {
  cloudKeyId,
  decodeKid,
  makeKeyMessage,
  newSessionKey,
  type OpenKeyMessage,
  openData,
  openKeyMessage,
  parseDataMessage,
  type SessionKey,
  sealData,
} from '../../src/profile/index.js';
import { makeCa, makePki, type Pki } from '../fixtures/pki.js';
import { coseWgInput } from './cose-wg-input.js';
import { type ProtocolInput, readingPayload } from './entries/protocol-input.js';
import { runInXs, type XsRun } from './run.js';

const crypto = nodeCrypto();
const SEQUENCES = [0, 1, 2, 23, 24, 255, 256, 65535, 65536, 0xffffffff];
const XS_KID_COUNTER = 42;

let pki: Pki;
let input: ProtocolInput;
let nodeSession: SessionKey;
let run: XsRun;
let cloudOptions: OpenKeyMessage;

/** `keyMessage`'s COSE_Encrypt, untouched, signed by `deviceId`'s key with its certificate in x5chain. */
function resignAs(deviceId: string, keyMessage: Uint8Array): Uint8Array {
  const device = pki.devices.get(deviceId)!;
  const sign1 = decodeSign1(keyMessage, { requireTag: true });
  return makeSign1(crypto, crypto.p256Import(device.privateScalar), {
    protected: new Map<number, unknown>([
      [1, -7],
      [3, 96],
      [33, device.der],
    ]),
    payload: sign1.payload!,
  });
}

/**
 * The recipient's COSE_KDF_Context written out by hand from RFC 9053 §5.2 (not the library's
 * builder): [-3, [h'<device id>', nil, nil], [nil, nil, nil], [128, h'A101381C']], id < 24 bytes.
 */
function handContext(deviceId: string): string {
  const id = Buffer.from(deviceId, 'utf8');
  assert.ok(id.length < 24);
  return `842283${(0x40 + id.length).toString(16)}${id.toString('hex')}f6f683f6f6f682188044a101381c`;
}

/** The fields of every stdout line that starts with `kind`. */
function lines(kind: string): string[][] {
  return run.stdout
    .split('\n')
    .filter((line) => line.startsWith(`${kind} `) || line === kind)
    .map((line) => line.split(' ').slice(1));
}

function one(kind: string): string[] {
  const found = lines(kind);
  assert.equal(found.length, 1, `expected one "${kind}" line from XS, got ${found.length}`);
  return found[0]!;
}

before(async () => {
  pki = await makePki({ deviceIds: ['dev-1', 'dev-2'] });
  const otherCa = await makeCa({ name: 'some other CA' });
  const dev = pki.devices.get('dev-1')!;
  nodeSession = newSessionKey(crypto, 3);
  const nodeKeyMessage = makeKeyMessage(crypto, {
    deviceId: 'dev-1',
    deviceKey: crypto.p256Import(dev.privateScalar),
    deviceCertificate: dev.der,
    cloudPublicKey: pki.cloud.publicKey,
    session: nodeSession,
  });
  input = {
    coseWg: coseWgInput(),
    caDer: toHex(pki.caDer),
    otherCaDer: toHex(otherCa.der),
    device: {
      id: 'dev-1',
      certificate: toHex(dev.der),
      scalar: toHex(dev.privateScalar),
      publicKey: toHex(dev.publicKey),
    },
    cloud: { publicKey: toHex(pki.cloud.publicKey), scalar: toHex(pki.cloud.privateScalar) },
    kidCounter: XS_KID_COUNTER,
    sequences: SEQUENCES,
    otherDevice: { id: 'dev-2' },
    fromNode: {
      keyMessage: toHex(nodeKeyMessage),
      resignedKeyMessage: toHex(resignAs('dev-2', nodeKeyMessage)),
      data: SEQUENCES.map((seq) => ({
        seq,
        message: toHex(sealData(crypto, nodeSession, seq, encode(readingPayload(seq)))),
      })),
    },
  };
  const cloudKey = crypto.p256Import(pki.cloud.privateScalar);
  const cloudKid = cloudKeyId(crypto, cloudKey.publicKey);
  cloudOptions = {
    cloudKey: (kid) => (equal(kid, cloudKid) ? cloudKey : undefined),
    verifyCertificate: deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] }),
    topicDeviceId: 'dev-1',
  };
});

for (const provider of ['noble', 'native']) {
  describe(`the protocol in XS with the ${provider} provider`, () => {
    before(async () => {
      run = await runInXs('test/xs/entries/protocol.ts', { inputs: { XS_INPUT: input }, args: [provider] });
      assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
      assert.deepEqual(lines('done'), [[]], 'the XS run did not finish');
    });
    test('cose-wg examples verify, decrypt, unwrap and re-encrypt byte for byte in XS', (t) => {
      const results = new Map(lines('cose-wg').map(([file, ...rest]) => [file!, rest]));
      const cases = [...input.coseWg.sign1, ...input.coseWg.encrypt0, ...input.coseWg.ecdhWrap];
      assert.ok(input.coseWg.sign1.length >= 8, 'expected the cose-wg Sign1 examples');
      assert.ok(input.coseWg.encrypt0.length >= 10, 'expected the cose-wg Encrypt0 examples');
      for (const c of cases) {
        const result = results.get(c.file);
        assert.ok(result, `${c.file}: no result from XS`);
        const [status, detail] = result;
        if ('reject' in c && c.reject) {
          assert.equal(
            status,
            'rejected',
            `${c.file}: must be refused with ${c.reject.join('|')}, XS: ${result.join(' ')}`,
          );
          assert.ok(c.reject.includes(detail!), `${c.file}: refused as ${detail}, expected ${c.reject.join('|')}`);
        } else {
          const want = 'again' in c && c.again ? 'reproduced' : 'ok';
          assert.equal(status, want, `${c.file}: XS says ${result.join(' ')}, expected ${want}`);
        }
      }
      for (const must of [
        'cose-wg/ecdh-wrap-examples/p256-wrap-128-01.json',
        'cose-wg/aes-gcm-examples/aes-gcm-enc-01.json',
      ]) {
        assert.deepEqual(results.get(must), ['reproduced'], `${must} was not re-encrypted byte for byte in XS`);
      }
      const count = (s: string) => [...results.values()].filter(([status]) => status === s).length;
      t.diagnostic(
        `cose-wg in XS: ${cases.length} examples, ${count('ok') + count('reproduced')} passed ` +
          `(${count('reproduced')} re-encrypted byte for byte), ${count('rejected')} refused as expected`,
      );
    });

    test('a key message made in XS opens in Node, and announces the session XS made', () => {
      const [kid, key, baseIv] = one('session');
      const [keyMessage] = one('key-message');
      const opened = openKeyMessage(crypto, fromHex(keyMessage!), cloudOptions);
      assert.equal(opened.deviceId, 'dev-1');
      assert.equal(decodeKid(opened.session.kid), BigInt(XS_KID_COUNTER));
      assert.equal(toHex(opened.session.kid), kid);
      assert.equal(toHex(opened.session.key), key);
      assert.equal(toHex(opened.session.baseIv), baseIv);
      assert.ok(equal(opened.deviceCertificate, pki.devices.get('dev-1')!.der));
      // The randomness came from the host's getRandomValues: not a constant, not Node's session.
      assert.notEqual(key, '00'.repeat(16));
      assert.notEqual(key, toHex(nodeSession.key));
      assert.notEqual(baseIv, toHex(nodeSession.baseIv));
    });

    test('data messages sealed in XS open in Node to the payloads Node encodes', () => {
      const opened = openKeyMessage(crypto, fromHex(one('key-message')[0]!), cloudOptions);
      const data = lines('data');
      assert.deepEqual(
        data.map(([seq]) => Number(seq)),
        SEQUENCES,
      );
      for (const [seqText, hex] of data) {
        const seq = Number(seqText);
        const parsed = parseDataMessage(fromHex(hex!));
        assert.equal(parsed.seq, seq);
        assert.ok(equal(parsed.kid, opened.session.kid));
        assert.equal(toHex(openData(crypto, parsed, opened.session)), toHex(encode(readingPayload(seq))), `seq ${seq}`);
      }
    });

    test('a key message and data messages sealed in Node open in XS', () => {
      assert.deepEqual(one('opened-key'), [
        'dev-1',
        toHex(nodeSession.kid),
        toHex(nodeSession.key),
        toHex(nodeSession.baseIv),
      ]);
      assert.deepEqual(
        lines('opened-data'),
        SEQUENCES.map((seq) => [String(seq), toHex(encode(readingPayload(seq)))]),
      );
    });

    test('XS refuses tampered or misdirected messages with the reason Node gives', () => {
      const refused = Object.fromEntries(lines('refused').map(([what, reason]) => [what!, reason]));
      assert.deepEqual(refused, {
        'data-tag-byte': 'decrypt-failed',
        'key-message-signature': 'bad-signature',
        'key-message-other-device': 'device-mismatch',
        'key-message-resigned': 'unwrap-failed',
        'certificate-other-ca': 'bad-certificate',
      });
    });

    test('the device binding in XS: the KDF context names the device; a key message re-signed by another device fails', () => {
      assert.deepEqual(
        lines('kdf-context'),
        ['dev-1', 'dev-2'].map((id) => [id, handContext(id)]),
        'XS builds the context of RFC 9053 §5.2 with the device id as PartyU identity',
      );
      // XS's own key message, re-signed in Node by dev-2, does not open as dev-2's (it opened as dev-1's above).
      const resigned = resignAs('dev-2', fromHex(one('key-message')[0]!));
      assert.throws(
        () => openKeyMessage(crypto, resigned, { ...cloudOptions, topicDeviceId: 'dev-2' }),
        (e: unknown) => e instanceof Error && 'reason' in e && e.reason === 'unwrap-failed',
      );
    });
  });
}
