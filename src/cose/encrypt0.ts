/** COSE_Encrypt0 (RFC 9052 §5.2) with A128GCM (RFC 9053 §4.1), IV or Partial IV + Base IV (RFC 9052 §3.1). */
import { byteStringSize, encode, encodeAsGiven, Tag, writeByteString } from '../cbor/index.js';
import { CryptoError, type CryptoProvider, GCM_IV_BYTES, GCM_TAG_BYTES } from '../crypto/provider.js';
import { CoseError } from './errors.js';
import { Alg, bstr, CoseTag, findHeader, Header, type HeaderMap, requireAlg } from './headers.js';
import { type DecodeOptions, decodeFramed, type Layer, readLayer, requireArity } from './message.js';

export interface Encrypt0 extends Layer {
  ciphertext: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export function decodeEncrypt0(bytes: Uint8Array, options?: DecodeOptions): Encrypt0 {
  const fields = decodeFramed(bytes, CoseTag.Encrypt0, 'COSE_Encrypt0', options);
  requireArity(fields, 3, 'COSE_Encrypt0');
  const layer = readLayer(fields, 'COSE_Encrypt0');
  if (fields[2] === null) throw new CoseError('bad-structure', 'COSE_Encrypt0: detached ciphertext is not supported');
  return { ...layer, ciphertext: bstr(fields[2], 'COSE_Encrypt0 ciphertext') };
}

/** `83` (array of 3) and the context text: `68 "Encrypt0"`, `67 "Encrypt"`. */
const ENC0_HEAD = [0x83, 0x68, 0x45, 0x6e, 0x63, 0x72, 0x79, 0x70, 0x74, 0x30];
const ENC_HEAD = [0x83, 0x67, 0x45, 0x6e, 0x63, 0x72, 0x79, 0x70, 0x74];

/**
 * Enc_structure: [context, protected, external_aad], context "Encrypt0" or "Encrypt", written
 * directly (the same bytes the encoder gives: shortest heads; docs/PROTOCOL.md §4.2).
 */
export function encStructure(
  context: 'Encrypt0' | 'Encrypt',
  protectedBytes: Uint8Array,
  externalAad: Uint8Array,
): Uint8Array {
  const head = context === 'Encrypt0' ? ENC0_HEAD : ENC_HEAD;
  const out = new Uint8Array(head.length + byteStringSize(protectedBytes.length) + byteStringSize(externalAad.length));
  out.set(head);
  writeByteString(out, writeByteString(out, head.length, protectedBytes), externalAad);
  return out;
}

/**
 * The AES-GCM nonce of a layer: the IV header (5) as is, or the Partial IV (6) left-padded
 * with zeros to 12 bytes and XORed with the Base IV known from context. Both, or neither, is an error.
 */
export function layerNonce(layer: Layer, baseIv?: Uint8Array): Uint8Array {
  const iv = findHeader(layer.protected, layer.unprotected, Header.iv);
  const partial = findHeader(layer.protected, layer.unprotected, Header.partialIv);
  if (iv !== undefined && partial !== undefined)
    throw new CoseError('bad-structure', 'both IV and Partial IV are present');
  if (iv !== undefined) return bstr(iv, 'IV', GCM_IV_BYTES);
  if (partial === undefined) throw new CoseError('missing-header', 'no IV and no Partial IV');
  const p = bstr(partial, 'Partial IV');
  if (p.length === 0 || p.length > GCM_IV_BYTES)
    throw new CoseError('bad-partial-iv', `Partial IV of ${p.length} bytes`);
  if (baseIv === undefined)
    throw new CoseError('missing-header', 'a Partial IV needs the Base IV of the key, which is not known');
  return nonceFromPartialIv(baseIv, p);
}

export function nonceFromPartialIv(baseIv: Uint8Array, partialIv: Uint8Array): Uint8Array {
  if (baseIv.length !== GCM_IV_BYTES) throw new CoseError('bad-key', `Base IV is ${baseIv.length} bytes, expected 12`);
  const nonce = Uint8Array.from(baseIv);
  const offset = GCM_IV_BYTES - partialIv.length;
  for (let i = 0; i < partialIv.length; i++) nonce[offset + i]! ^= partialIv[i]!;
  return nonce;
}

/** AES-GCM decrypt of a content layer, mapping crypto failures to reason codes. */
export function gcmOpen(
  crypto: CryptoProvider,
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  if (key.length !== 16) throw new CoseError('bad-key', `A128GCM key is ${key.length} bytes, expected 16`);
  if (ciphertext.length < GCM_TAG_BYTES) throw new CoseError('decrypt-failed', 'ciphertext shorter than the GCM tag');
  try {
    return crypto.aesGcmDecrypt(key, nonce, ciphertext, aad);
  } catch (e) {
    if (e instanceof CryptoError) throw new CoseError('decrypt-failed', 'AES-GCM authentication failed');
    throw e;
  }
}

export interface OpenOptions {
  externalAad?: Uint8Array;
  /** Base IV of the key, for a message that carries a Partial IV. */
  baseIv?: Uint8Array;
}

/** Decrypts an A128GCM COSE_Encrypt0 (alg in either bucket). */
export function decryptEncrypt0(
  crypto: CryptoProvider,
  message: Encrypt0,
  key: Uint8Array,
  options: OpenOptions = {},
): Uint8Array {
  requireAlg(findHeader(message.protected, message.unprotected, Header.alg), Alg.A128GCM, 'COSE_Encrypt0');
  const nonce = layerNonce(message, options.baseIv);
  const aad = encStructure('Encrypt0', message.protectedBytes, options.externalAad ?? EMPTY);
  return gcmOpen(crypto, key, nonce, message.ciphertext, aad);
}

export interface MakeEncrypt0 {
  protected: HeaderMap;
  unprotected?: HeaderMap;
  plaintext: Uint8Array;
  key: Uint8Array;
  /** The 12-byte AES-GCM nonce; the caller has put the IV or Partial IV that yields it in the headers. */
  nonce: Uint8Array;
  externalAad?: Uint8Array;
  mapOrder?: 'deterministic' | 'as-given';
}

/** Builds a tagged A128GCM COSE_Encrypt0. */
export function makeEncrypt0(crypto: CryptoProvider, input: MakeEncrypt0): Uint8Array {
  const enc = input.mapOrder === 'as-given' ? encodeAsGiven : encode;
  const protectedBytes = input.protected.size === 0 ? EMPTY : enc(input.protected);
  const aad = encStructure('Encrypt0', protectedBytes, input.externalAad ?? EMPTY);
  const ciphertext = crypto.aesGcmEncrypt(input.key, input.nonce, input.plaintext, aad);
  return enc(new Tag([protectedBytes, input.unprotected ?? new Map(), ciphertext], CoseTag.Encrypt0));
}
