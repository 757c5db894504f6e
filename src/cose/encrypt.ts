/**
 * COSE_Encrypt (RFC 9052 §5.1) with A128GCM content and one ECDH-ES + HKDF-256 + A128KW
 * recipient (RFC 9053 §6.4, alg -29): the content key (CEK) is wrapped (RFC 3394) under a
 * key-encryption key derived from an ephemeral-static ECDH on P-256.
 */
import { wipe } from '../bytes.js';
import { byteStringSize, encode, encodeAsGiven, Tag, writeByteString } from '../cbor/index.js';
import { CryptoError, type CryptoProvider, type P256PrivateKey } from '../crypto/provider.js';
import { encStructure, gcmOpen, layerNonce } from './encrypt0.js';
import { CoseError } from './errors.js';
import { Alg, bstr, CoseTag, findHeader, Header, type HeaderMap, requireAlg } from './headers.js';
import { ec2PublicKeyFromMap, ec2PublicKeyMap } from './key.js';
import { type DecodeOptions, decodeFramed, type Layer, readLayer, requireArity } from './message.js';

export interface Recipient extends Layer {
  /** The wrapped CEK. */
  ciphertext: Uint8Array;
}

export interface Encrypt extends Layer {
  ciphertext: Uint8Array;
  recipients: Recipient[];
}

const EMPTY = new Uint8Array(0);

export function decodeEncrypt(bytes: Uint8Array, options?: DecodeOptions): Encrypt {
  const fields = decodeFramed(bytes, CoseTag.Encrypt, 'COSE_Encrypt', options);
  requireArity(fields, 4, 'COSE_Encrypt');
  const layer = readLayer(fields, 'COSE_Encrypt');
  if (fields[2] === null) throw new CoseError('bad-structure', 'COSE_Encrypt: detached ciphertext is not supported');
  const ciphertext = bstr(fields[2], 'COSE_Encrypt ciphertext');
  const list = fields[3];
  if (!Array.isArray(list) || list.length === 0)
    throw new CoseError('bad-structure', 'COSE_Encrypt: recipients is not a non-empty array');
  const recipients = list.map((r: unknown, i: number) => decodeRecipient(r, i));
  return { ...layer, ciphertext, recipients };
}

function decodeRecipient(value: unknown, index: number): Recipient {
  const name = `COSE_recipient ${index}`;
  if (!Array.isArray(value)) throw new CoseError('bad-structure', `${name} is not an array`);
  if (value.length === 4) throw new CoseError('bad-structure', `${name}: nested recipients are not supported`);
  requireArity(value, 3, name);
  const layer = readLayer(value, name);
  const ciphertext = value[2] === null ? EMPTY : bstr(value[2], `${name} ciphertext`);
  return { ...layer, ciphertext };
}

/** PartyU nonce and other (nil, nil), PartyVInfo [nil, nil, nil], SuppPubInfo's `82 18 80` (128). */
const KDF_MIDDLE = [0xf6, 0xf6, 0x83, 0xf6, 0xf6, 0xf6, 0x82, 0x18, 0x80];

/**
 * COSE_KDF_Context for ECDH-ES + A128KW (RFC 9053 §5.2): AlgorithmID is the key-wrap algorithm
 * (A128KW, -3), PartyUInfo = [identity, null, null] with `partyUIdentity` (nil when absent, as in
 * the cose-wg examples), PartyVInfo = [null, null, null], SuppPubInfo = [128, recipient protected].
 * The identity is not transmitted: both parties must know it.
 */
export function kdfContextA128kw(recipientProtectedBytes: Uint8Array, partyUIdentity?: Uint8Array): Uint8Array {
  // Written directly (the encoder's bytes, docs/PROTOCOL.md §4.2):
  // 84 22 83 (bstr id | F6) F6 F6 83 F6 F6 F6 82 18 80 bstr(recipient protected)
  const idSize = partyUIdentity === undefined ? 1 : byteStringSize(partyUIdentity.length);
  const out = new Uint8Array(3 + idSize + KDF_MIDDLE.length + byteStringSize(recipientProtectedBytes.length));
  out[0] = 0x84;
  out[1] = 0x22; // -3, A128KW
  out[2] = 0x83;
  let at = 3;
  if (partyUIdentity === undefined) out[at++] = 0xf6;
  else at = writeByteString(out, at, partyUIdentity);
  out.set(KDF_MIDDLE, at);
  writeByteString(out, at + KDF_MIDDLE.length, recipientProtectedBytes);
  return out;
}

function deriveKek(
  crypto: CryptoProvider,
  key: P256PrivateKey,
  peer: Uint8Array,
  recipientProtectedBytes: Uint8Array,
  partyUIdentity: Uint8Array | undefined,
): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = crypto.ecdhP256(key, peer);
  } catch (e) {
    if (e instanceof CryptoError) throw new CoseError('bad-key', `ECDH refused the public key: ${e.message}`);
    throw e;
  }
  const kek = crypto.hkdfSha256(shared, EMPTY, kdfContextA128kw(recipientProtectedBytes, partyUIdentity), 16);
  wipe(shared);
  return kek;
}

export interface MakeRecipient {
  cek: Uint8Array;
  /** The recipient's static P-256 public key (65-byte point). */
  recipientPublicKey: Uint8Array;
  /** Identifies the recipient's key (header 4). */
  recipientKid: Uint8Array;
  /** The ephemeral key; a fresh one from the provider when omitted (tests inject one to reproduce vectors). */
  ephemeral?: P256PrivateKey;
  /** PartyU identity of the KDF context (not sent); the recipient must unwrap with the same bytes. */
  partyUIdentity?: Uint8Array;
}

/** Builds one ECDH-ES + A128KW recipient: [h'A101381C', {-1: epk, 4: kid}, wrapped CEK]. */
export function makeEcdhEsA128kwRecipient(crypto: CryptoProvider, input: MakeRecipient): unknown[] {
  const protectedBytes = encode(new Map([[Header.alg, Alg.ECDH_ES_A128KW]]));
  const ephemeral = input.ephemeral ?? crypto.p256Generate();
  const kek = deriveKek(crypto, ephemeral, input.recipientPublicKey, protectedBytes, input.partyUIdentity);
  const wrapped = crypto.aesKeyWrap(kek, input.cek);
  wipe(kek);
  const unprotected = new Map<number, unknown>([
    [Header.ephemeralKey, ec2PublicKeyMap(ephemeral.publicKey)],
    [Header.kid, input.recipientKid],
  ]);
  return [protectedBytes, unprotected, wrapped];
}

/**
 * Recovers the CEK from an ECDH-ES + A128KW recipient with the recipient's private key and the
 * PartyU identity the sender put in the KDF context (none when omitted).
 * `unsupported-alg` for another recipient algorithm, `bad-key` for an unusable ephemeral key,
 * `unwrap-failed` when the wrapped key does not authenticate under the derived KEK (which is also
 * what another PartyU identity gives).
 */
export function unwrapEcdhEsA128kw(
  crypto: CryptoProvider,
  recipient: Recipient,
  key: P256PrivateKey,
  partyUIdentity?: Uint8Array,
): Uint8Array {
  requireAlg(findHeader(recipient.protected, recipient.unprotected, Header.alg), Alg.ECDH_ES_A128KW, 'COSE_recipient');
  const epk = findHeader(recipient.protected, recipient.unprotected, Header.ephemeralKey);
  if (epk === undefined) throw new CoseError('missing-header', 'COSE_recipient: no ephemeral key (-1)');
  const peer = ec2PublicKeyFromMap(epk);
  const kek = deriveKek(crypto, key, peer, recipient.protectedBytes, partyUIdentity);
  try {
    return crypto.aesKeyUnwrap(kek, recipient.ciphertext);
  } catch (e) {
    if (e instanceof CryptoError) throw new CoseError('unwrap-failed', 'AES key unwrap integrity check failed');
    throw e;
  } finally {
    wipe(kek);
  }
}

export interface OpenEncryptOptions {
  externalAad?: Uint8Array;
  baseIv?: Uint8Array;
}

/** Decrypts the A128GCM content layer with a CEK already recovered from a recipient. */
export function decryptEncryptContent(
  crypto: CryptoProvider,
  message: Encrypt,
  cek: Uint8Array,
  options: OpenEncryptOptions = {},
): Uint8Array {
  requireAlg(findHeader(message.protected, message.unprotected, Header.alg), Alg.A128GCM, 'COSE_Encrypt');
  const nonce = layerNonce(message, options.baseIv);
  const aad = encStructure('Encrypt', message.protectedBytes, options.externalAad ?? EMPTY);
  return gcmOpen(crypto, cek, nonce, message.ciphertext, aad);
}

export interface MakeEncrypt {
  protected: HeaderMap;
  unprotected?: HeaderMap;
  plaintext: Uint8Array;
  cek: Uint8Array;
  /** 12-byte nonce; the caller put the matching IV header in `unprotected`. */
  nonce: Uint8Array;
  /** Recipient structures from `makeEcdhEsA128kwRecipient`. */
  recipients: unknown[][];
  externalAad?: Uint8Array;
  mapOrder?: 'deterministic' | 'as-given';
}

/** Builds a tagged COSE_Encrypt with A128GCM content. */
export function makeEncrypt(crypto: CryptoProvider, input: MakeEncrypt): Uint8Array {
  const enc = input.mapOrder === 'as-given' ? encodeAsGiven : encode;
  const protectedBytes = input.protected.size === 0 ? EMPTY : enc(input.protected);
  const aad = encStructure('Encrypt', protectedBytes, input.externalAad ?? EMPTY);
  const ciphertext = crypto.aesGcmEncrypt(input.cek, input.nonce, input.plaintext, aad);
  return enc(new Tag([protectedBytes, input.unprotected ?? new Map(), ciphertext, input.recipients], CoseTag.Encrypt));
}
