/**
 * The key message (device → cloud, `{prefix}/{deviceId}/session`, QoS 2):
 *
 *   COSE_Sign1 (tag 18) protected {1: -7, 3: 96, 33: device certificate DER}, unprotected {},
 *   payload = COSE_Encrypt (tag 96) protected {1: 1, 4: kid}, unprotected {5: IV},
 *             ciphertext = A128GCM(CEK, session COSE_Key),
 *             recipients = [[h'A101381C', {4: cloud kid, -1: ephemeral EC2 key}, A128KW(KEK, CEK)]]
 *
 * The KEK's COSE_KDF_Context names the device: PartyU identity = the device id (the certificate's
 * CN, UTF-8), not transmitted. A COSE_Encrypt made for device A therefore does not unwrap as
 * device B's, even when B's key re-signs it (`unwrap-failed`).
 *
 * Opening reads the shape `makeKeyMessage` produces in one pass (./key-message-fast.ts, views
 * only) and falls back to the general strict decoder for anything else; the checks of
 * docs/PROTOCOL.md §4.4 then run on either result, in order. The Sig_structure is built once, for
 * the signature and the signed-content digest.
 */
import { equal, utf8Encode } from '../bytes.js';
import { encode } from '../cbor/index.js';
import {
  decodeEncrypt,
  decryptEncryptContent,
  makeEcdhEsA128kwRecipient,
  makeEncrypt,
  unwrapEcdhEsA128kw,
} from '../cose/encrypt.js';
import { CoseError } from '../cose/errors.js';
import {
  Alg,
  bstr,
  CONTENT_TYPE_COSE_ENCRYPT,
  Header,
  refuseCrit,
  requireAlg,
  requireLabels,
} from '../cose/headers.js';
import { decodeSymmetricKey, symmetricKeyMap } from '../cose/key.js';
import { decodeSign1, makeSign1, sign1ToBeSigned } from '../cose/sign1.js';
import type { CryptoProvider, P256PrivateKey } from '../crypto/provider.js';
import { decodeKid } from './counter.js';
import { readCanonicalKeyMessage, readCanonicalSessionKey } from './key-message-fast.js';
import { BASE_IV_BYTES, CLOUD_KID_BYTES, DEFAULT_MAX_MESSAGE_BYTES, SESSION_KEY_BYTES } from './limits.js';
import { cloudKeyId, type SessionKey } from './session.js';
import { checkDeviceId } from './topics.js';

const EMPTY = new Uint8Array(0);

export interface MakeKeyMessage {
  /** The device id: the CN of `deviceCertificate`, the `{deviceId}` of its topics. Bound into the KDF context. */
  deviceId: string;
  /** The device's private key (stays in the provider). */
  deviceKey: P256PrivateKey;
  /** The device certificate (DER) issued by the CA for `deviceKey`. */
  deviceCertificate: Uint8Array;
  /** The cloud's P-256 public key (65-byte point) from the cloud certificate. */
  cloudPublicKey: Uint8Array;
  /** The session to announce (see `newSessionKey`). */
  session: SessionKey;
}

/** Builds the key message for `session`. Every random value (CEK, IV, ephemeral key) comes from `crypto`. */
export function makeKeyMessage(crypto: CryptoProvider, input: MakeKeyMessage): Uint8Array {
  const { session } = input;
  const partyUIdentity = utf8Encode(checkDeviceId(input.deviceId));
  decodeKid(session.kid);
  if (session.key.length !== SESSION_KEY_BYTES || session.baseIv.length !== BASE_IV_BYTES) {
    throw new RangeError('session key must be 16 bytes and its Base IV 12 bytes');
  }
  const cek = crypto.randomBytes(16);
  const iv = crypto.randomBytes(12);
  const recipient = makeEcdhEsA128kwRecipient(crypto, {
    cek,
    recipientPublicKey: input.cloudPublicKey,
    recipientKid: cloudKeyId(crypto, input.cloudPublicKey),
    partyUIdentity,
  });
  const plaintext = encode(
    symmetricKeyMap({ kid: session.kid, alg: Alg.A128GCM, baseIv: session.baseIv, k: session.key }),
  );
  const encrypt = makeEncrypt(crypto, {
    protected: new Map<number, unknown>([
      [Header.alg, Alg.A128GCM],
      [Header.kid, session.kid],
    ]),
    unprotected: new Map([[Header.iv, iv]]),
    plaintext,
    cek,
    nonce: iv,
    recipients: [recipient],
  });
  cek.fill(0);
  plaintext.fill(0);
  return makeSign1(crypto, input.deviceKey, {
    protected: new Map<number, unknown>([
      [Header.alg, Alg.ES256],
      [Header.contentType, CONTENT_TYPE_COSE_ENCRYPT],
      [Header.x5chain, input.deviceCertificate],
    ]),
    payload: encrypt,
  });
}

/** What the receiver learns of the device from its certificate. */
export interface CertifiedDevice {
  deviceId: string;
  /** The device's P-256 public key (65-byte point). */
  publicKey: Uint8Array;
}

/**
 * Checks a device certificate (DER) against the receiver's trust anchors: chain, validity, key
 * usage, revocation. Returns the device id (subject CN) and key, or throws
 * `CoseError('bad-certificate')`. Implemented on the host with an X.509 library.
 */
export type DeviceCertificateVerifier = (certificateDer: Uint8Array) => CertifiedDevice;

export interface OpenKeyMessage {
  /** The cloud private key whose key id the recipient names, or undefined when none is held. */
  cloudKey: (cloudKid: Uint8Array) => P256PrivateKey | undefined;
  verifyCertificate: DeviceCertificateVerifier;
  /**
   * The device id of the topic the message arrived on; it must equal the certificate's CN
   * (`device-mismatch`). A receiver always passes it; a tool that opens a message without its topic
   * (`inspect` of a file) may omit it. Either way the KEK is derived with the certificate's CN as
   * PartyU identity, so a COSE_Encrypt made for another device fails with `unwrap-failed`.
   */
  topicDeviceId?: string;
  maxBytes?: number;
}

export interface OpenedKeyMessage {
  deviceId: string;
  session: SessionKey;
  deviceCertificate: Uint8Array;
  devicePublicKey: Uint8Array;
  /** The cloud key id the recipient names: the key that opened the message (the session's cloud key). */
  cloudKid: Uint8Array;
  /**
   * SHA-256 of the signed content (the Sig_structure: protected bytes + payload), which tells a
   * re-sent key message from a different one under the same kid (docs/PROTOCOL.md §6.2) whatever
   * its unprotected header or signature bytes.
   */
  signedContentDigest: Uint8Array;
}

/**
 * Verifies and opens a key message: strict structure, certificate, device id, signature,
 * recipient unwrap (KDF context bound to the certificate's device id), content decryption, session
 * COSE_Key. Throws `CoseError` with a reason code.
 */
export function openKeyMessage(crypto: CryptoProvider, bytes: Uint8Array, options: OpenKeyMessage): OpenedKeyMessage {
  return openKeyMessageWith(crypto, bytes, options, true);
}

/**
 * `openKeyMessage` with the general decoder only (no fast reader): the reference the differential
 * test compares the fast path with.
 */
export function openKeyMessageGeneral(
  crypto: CryptoProvider,
  bytes: Uint8Array,
  options: OpenKeyMessage,
): OpenedKeyMessage {
  return openKeyMessageWith(crypto, bytes, options, false);
}

function openKeyMessageWith(
  crypto: CryptoProvider,
  bytes: Uint8Array,
  options: OpenKeyMessage,
  fastPath: boolean,
): OpenedKeyMessage {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  // The canonical shape is read in one pass (./key-message-fast.ts); anything else, and so every
  // decoding refusal, goes through the general strict decoder (steps 2 and 13).
  const fast = fastPath ? readCanonicalKeyMessage(bytes, maxBytes) : undefined;
  const sign1 = fast?.sign1 ?? decodeSign1(bytes, { requireTag: true, maxBytes });
  refuseCrit(sign1.protected, sign1.unprotected);
  requireLabels(
    sign1.protected,
    [Header.alg, Header.contentType, Header.x5chain],
    [Header.alg, Header.contentType, Header.x5chain],
    'key message protected header',
  );
  requireAlg(sign1.protected.get(Header.alg), Alg.ES256, 'key message');
  if (sign1.protected.get(Header.contentType) !== CONTENT_TYPE_COSE_ENCRYPT) {
    throw new CoseError('bad-structure', 'key message content type is not 96 (COSE_Encrypt)');
  }
  const certificate = bstr(sign1.protected.get(Header.x5chain), 'x5chain (a single end-entity certificate)');
  if (sign1.payload === null) throw new CoseError('bad-structure', 'key message has no payload');

  const device = options.verifyCertificate(certificate);
  if (options.topicDeviceId !== undefined && device.deviceId !== options.topicDeviceId) {
    throw new CoseError(
      'device-mismatch',
      `certificate is for device ${device.deviceId}, the topic names ${options.topicDeviceId}`,
    );
  }
  // 4.4 step 12 (as verifySign1, whose alg check step 6 already made): the Sig_structure is built
  // once, for the signature and for the signed-content digest.
  if (sign1.signature.length !== 64)
    throw new CoseError('bad-signature', `COSE_Sign1: ES256 signature is ${sign1.signature.length} bytes, expected 64`);
  const toBeSigned = sign1ToBeSigned(sign1.protectedBytes, EMPTY, sign1.payload);
  if (!crypto.ecdsaP256Verify(device.publicKey, toBeSigned, sign1.signature))
    throw new CoseError('bad-signature', 'COSE_Sign1: signature does not verify');
  const signedContentDigest = crypto.sha256(toBeSigned);

  const encrypt = fast?.encrypt ?? decodeEncrypt(sign1.payload, { requireTag: true, maxBytes: sign1.payload.length });
  refuseCrit(encrypt.protected, encrypt.unprotected);
  requireLabels(encrypt.protected, [Header.alg, Header.kid], [Header.alg, Header.kid], 'COSE_Encrypt protected header');
  requireAlg(encrypt.protected.get(Header.alg), Alg.A128GCM, 'COSE_Encrypt');
  const kid = bstr(encrypt.protected.get(Header.kid), 'session kid');
  decodeKid(kid);
  if (!encrypt.unprotected.has(Header.iv)) throw new CoseError('missing-header', 'COSE_Encrypt has no IV');
  if (encrypt.recipients.length !== 1)
    throw new CoseError('bad-structure', `COSE_Encrypt has ${encrypt.recipients.length} recipients, expected 1`);

  const recipient = encrypt.recipients[0]!;
  refuseCrit(recipient.protected, recipient.unprotected);
  requireLabels(recipient.protected, [Header.alg], [Header.alg], 'recipient protected header');
  requireAlg(recipient.protected.get(Header.alg), Alg.ECDH_ES_A128KW, 'recipient');
  const cloudKid = recipient.unprotected.get(Header.kid);
  if (cloudKid === undefined) throw new CoseError('missing-header', 'recipient has no cloud key id');
  const cloudKidBytes = bstr(cloudKid, 'cloud key id', CLOUD_KID_BYTES);
  const cloudKey = options.cloudKey(cloudKidBytes);
  if (cloudKey === undefined)
    throw new CoseError('unknown-recipient', 'the recipient names a cloud key this receiver does not hold');

  let cek: Uint8Array;
  try {
    cek = unwrapEcdhEsA128kw(crypto, recipient, cloudKey, utf8Encode(device.deviceId));
  } catch (e) {
    if (e instanceof CoseError && e.reason === 'unwrap-failed') {
      throw new CoseError(
        'unwrap-failed',
        `the wrapped key does not open as device ${device.deviceId}'s with this cloud key: sealed for another ` +
          'cloud key or another device (re-signed), or tampered',
      );
    }
    throw e;
  }
  let plaintext: Uint8Array;
  try {
    plaintext = decryptEncryptContent(crypto, encrypt, cek);
  } finally {
    cek.fill(0);
  }
  const key = (fast !== undefined ? readCanonicalSessionKey(plaintext) : undefined) ?? decodeSymmetricKey(plaintext);
  plaintext.fill(0);
  if (!equal(key.kid, kid))
    throw new CoseError('kid-mismatch', 'the session COSE_Key kid differs from the protected kid');
  if (key.alg !== Alg.A128GCM) throw new CoseError('unsupported-alg', `session key alg ${key.alg} is not A128GCM`);
  if (key.k.length !== SESSION_KEY_BYTES)
    throw new CoseError('bad-key', `session key is ${key.k.length} bytes, expected 16`);
  if (key.baseIv.length !== BASE_IV_BYTES)
    throw new CoseError('bad-key', `Base IV is ${key.baseIv.length} bytes, expected 12`);
  return {
    deviceId: device.deviceId,
    session: { kid, key: key.k, baseIv: key.baseIv },
    deviceCertificate: certificate,
    devicePublicKey: device.publicKey,
    cloudKid: cloudKidBytes,
    signedContentDigest,
  };
}
