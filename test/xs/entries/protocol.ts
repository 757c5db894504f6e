/**
 * XS side of test/xs/protocol.test.ts: the protocol code of src/ inside the XS engine, with the
 * provider `scriptArgs[0]`: noble (its randomness from the host's crypto.getRandomValues,
 * getrandom(2)) or native (the C over PSA Crypto linked into the host).
 *
 * Prints one line per result (parsed by the Node test):
 *   cose-wg FILE ok|reproduced|rejected REASON|error MESSAGE
 *   session KID KEY BASEIV        the session XS announced
 *   key-message HEX               XS's key message for that session
 *   data SEQ HEX                  XS's data messages
 *   opened-key DEVICEID KID KEY BASEIV   Node's key message, opened in XS
 *   opened-data SEQ PAYLOADHEX    Node's data messages, opened in XS
 *   refused WHAT REASON           tampered input refused in XS
 *   kdf-context DEVICEID HEX      the recipient's COSE_KDF_Context XS builds for that device id
 *   done
 */
import { equal, fromHex, toHex, utf8Decode, utf8Encode } from '../../../src/bytes.js';
import { decode, encode } from '../../../src/cbor/index.js';
import {
  CoseError,
  decodeEncrypt,
  decodeEncrypt0,
  decodeSign1,
  decryptEncrypt0,
  decryptEncryptContent,
  type HeaderMap,
  kdfContextA128kw,
  makeEcdhEsA128kwRecipient,
  makeEncrypt,
  makeEncrypt0,
  unwrapEcdhEsA128kw,
  verifySign1,
} from '../../../src/cose/index.js';
import type { CryptoProvider, P256PrivateKey } from '../../../src/crypto/provider.js';
import { certificateVerifier } from '../../../src/pki/certificate.js';
import {
  cloudKeyId,
  makeKeyMessage,
  newSessionKey,
  openData,
  openKeyMessage,
  parseDataMessage,
  sealData,
} from '../../../src/profile/index.js';
import { emit, host, runMain } from './host.js';
import { type ProtocolInput, readingPayload } from './protocol-input.js';
import { providerNamed } from './providers.js';

declare const XS_INPUT: string; // JSON, from test/xs/protocol.test.ts (see test/xs/run.ts `inputs`)
const input = JSON.parse(XS_INPUT) as ProtocolInput;
const crypto = providerNamed(host.scriptArgs[0]);

function reasonOf(e: unknown): string {
  if (e instanceof CoseError) return e.reason;
  throw e; // anything but a typed refusal is a bug: let the run fail with its stack
}

function fail(message: string): never {
  throw new Error(message);
}

const headers = (hex: string) => decode(fromHex(hex)) as HeaderMap;

/** A provider whose randomness is the example's rng_stream (as test/providers.ts `withRandomStream`). */
function withRandomStream(base: CryptoProvider, chunks: Uint8Array[]): CryptoProvider {
  const queue = [...chunks];
  const next = (n: number) => {
    const chunk = queue.shift() ?? fail(`random stream exhausted (wanted ${n} bytes)`);
    if (chunk.length !== n) fail(`random stream chunk is ${chunk.length} bytes, wanted ${n}`);
    return chunk;
  };
  return Object.assign(Object.create(base) as CryptoProvider, {
    randomBytes: (n: number) => next(n),
    p256Generate: (): P256PrivateKey => base.p256Import(next(32)),
  });
}

function outcome(file: string, reject: string[] | undefined, run: () => boolean): void {
  let reproduced: boolean;
  try {
    reproduced = run();
  } catch (e) {
    const reason = reasonOf(e);
    emit('cose-wg', file, reject?.includes(reason) ? 'rejected' : 'error', reason);
    return;
  }
  if (reject) emit('cose-wg', file, 'error', 'accepted');
  else emit('cose-wg', file, reproduced ? 'reproduced' : 'ok');
}

function refused(what: string, run: () => unknown): void {
  try {
    run();
  } catch (e) {
    emit('refused', what, reasonOf(e));
    return;
  }
  emit('refused', what, 'NOT-REFUSED');
}

function main(): void {
  // ---- cose-wg examples ----

  for (const c of input.coseWg.sign1) {
    outcome(c.file, c.reject, () => {
      const message = decodeSign1(fromHex(c.message), { requireTag: false });
      const payload = verifySign1(crypto, message, fromHex(c.publicKey), { externalAad: fromHex(c.externalAad) });
      if (!equal(payload, fromHex(c.plaintext))) fail(`${c.file}: payload differs`);
      return false;
    });
  }

  for (const c of input.coseWg.encrypt0) {
    outcome(c.file, c.reject, () => {
      const key = fromHex(c.key);
      const externalAad = fromHex(c.externalAad);
      const message = decodeEncrypt0(fromHex(c.message), { requireTag: false });
      const plaintext = decryptEncrypt0(crypto, message, key, { externalAad });
      if (!equal(plaintext, fromHex(c.plaintext))) fail(`${c.file}: plaintext differs`);
      if (!c.again) return false;
      const again = makeEncrypt0(crypto, {
        protected: headers(c.again.protected),
        unprotected: headers(c.again.unprotected),
        plaintext,
        key,
        nonce: fromHex(c.again.iv),
        externalAad,
        mapOrder: 'as-given',
      });
      if (toHex(again) !== c.again.expected) fail(`${c.file}: re-encryption differs: ${toHex(again)}`);
      return true;
    });
  }

  for (const c of input.coseWg.ecdhWrap) {
    outcome(c.file, undefined, () => {
      const externalAad = fromHex(c.externalAad);
      const message = decodeEncrypt(fromHex(c.message), { requireTag: false });
      const recipient = message.recipients[0] ?? fail(`${c.file}: no recipient`);
      if (c.context !== undefined && toHex(kdfContextA128kw(recipient.protectedBytes)) !== c.context) {
        fail(`${c.file}: KDF context differs`);
      }
      const cek = unwrapEcdhEsA128kw(crypto, recipient, crypto.p256Import(fromHex(c.recipientD)));
      if (toHex(cek) !== c.cek) fail(`${c.file}: unwrapped CEK ${toHex(cek)} differs`);
      const plaintext = decryptEncryptContent(crypto, message, cek, { externalAad });
      if (!equal(plaintext, fromHex(c.plaintext))) fail(`${c.file}: plaintext differs`);
      if (!c.again) return false;
      const det = withRandomStream(crypto, c.again.rng.map(fromHex));
      const detCek = det.randomBytes(16);
      const iv = det.randomBytes(12);
      const again = makeEncrypt(det, {
        protected: headers(c.again.protected),
        unprotected: new Map([...headers(c.again.unprotected), [5, iv]]),
        plaintext,
        cek: detCek,
        nonce: iv,
        recipients: [
          makeEcdhEsA128kwRecipient(det, {
            cek: detCek,
            recipientPublicKey: fromHex(c.again.recipientPublicKey),
            recipientKid: fromHex(c.again.recipientKid),
            ephemeral: det.p256Generate(),
          }),
        ],
        externalAad,
        mapOrder: 'as-given',
      });
      if (toHex(again) !== c.again.expected) fail(`${c.file}: re-encryption differs: ${toHex(again)}`);
      return true;
    });
  }

  // ---- key and data messages made in XS ----

  const deviceKey = crypto.p256Import(fromHex(input.device.scalar));
  if (toHex(deviceKey.publicKey) !== input.device.publicKey) fail('the device key does not match its certificate');
  const session = newSessionKey(crypto, input.kidCounter);
  emit('session', toHex(session.kid), toHex(session.key), toHex(session.baseIv));
  emit(
    'key-message',
    toHex(
      makeKeyMessage(crypto, {
        deviceId: input.device.id,
        deviceKey,
        deviceCertificate: fromHex(input.device.certificate),
        cloudPublicKey: fromHex(input.cloud.publicKey),
        session,
      }),
    ),
  );
  for (const seq of input.sequences)
    emit('data', seq, toHex(sealData(crypto, session, seq, encode(readingPayload(seq)))));

  // ---- messages made in Node, opened in XS (the cloud's side, run on the device's engine) ----

  const cloudKey = crypto.p256Import(fromHex(input.cloud.scalar));
  const cloudKid = cloudKeyId(crypto, cloudKey.publicKey);
  const options = {
    cloudKey: (kid: Uint8Array) => (equal(kid, cloudKid) ? cloudKey : undefined),
    verifyCertificate: certificateVerifier({ crypto, trustAnchors: [fromHex(input.caDer)] }),
    topicDeviceId: input.device.id,
  };
  const keyMessage = fromHex(input.fromNode.keyMessage);
  const opened = openKeyMessage(crypto, keyMessage, options);
  emit(
    'opened-key',
    opened.deviceId,
    toHex(opened.session.kid),
    toHex(opened.session.key),
    toHex(opened.session.baseIv),
  );
  for (const { seq, message } of input.fromNode.data) {
    const parsed = parseDataMessage(fromHex(message));
    if (parsed.seq !== seq) fail(`data message ${seq} carries sequence number ${parsed.seq}`);
    emit('opened-data', seq, toHex(openData(crypto, parsed, opened.session)));
  }

  // ---- refusals inside XS ----

  const flip = (bytes: Uint8Array, at: number) => {
    const out = bytes.slice();
    out[at < 0 ? out.length + at : at]! ^= 1;
    return out;
  };
  const firstData = fromHex(input.fromNode.data[0]?.message ?? fail('no data message from Node'));
  refused('data-tag-byte', () => openData(crypto, parseDataMessage(flip(firstData, -1)), opened.session));
  refused('key-message-signature', () => openKeyMessage(crypto, flip(keyMessage, -1), options));
  refused('key-message-other-device', () => openKeyMessage(crypto, keyMessage, { ...options, topicDeviceId: 'dev-2' }));
  // The device binding: dev-1's COSE_Encrypt re-signed by another device of the CA, on that device's topic.
  refused('key-message-resigned', () =>
    openKeyMessage(crypto, fromHex(input.fromNode.resignedKeyMessage), {
      ...options,
      topicDeviceId: input.otherDevice.id,
    }),
  );
  const recipientProtected = fromHex('a101381c');
  for (const id of [input.device.id, input.otherDevice.id]) {
    emit('kdf-context', id, toHex(kdfContextA128kw(recipientProtected, utf8Encode(id))));
  }
  refused('certificate-other-ca', () =>
    openKeyMessage(crypto, keyMessage, {
      ...options,
      verifyCertificate: certificateVerifier({ crypto, trustAnchors: [fromHex(input.otherCaDer)] }),
    }),
  );
  // The payload round trip inside XS, to show decode works on what XS itself sealed.
  const own = parseDataMessage(fromHex(toHex(sealData(crypto, session, 99, encode(readingPayload(99))))));
  const ownPayload = decode(openData(crypto, own, session)) as Map<string, unknown>;
  if (ownPayload.get('seq') !== 99 || ownPayload.get('unit') !== utf8Decode(fromHex('c2b043')))
    fail('own payload differs');
  emit('done');
}

runMain(main);
