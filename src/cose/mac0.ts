/** COSE_Mac0 (RFC 9052 §6.2) with HMAC 256/256 (RFC 9053 §3.1, alg 5). */
import { equalConstantTime } from '../bytes.js';
import { encode, encodeAsGiven, Tag } from '../cbor/index.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { CoseError } from './errors.js';
import { Alg, bstr, CoseTag, findHeader, Header, type HeaderMap, requireAlg } from './headers.js';
import { type DecodeOptions, decodeFramed, type Layer, readLayer, requireArity } from './message.js';

export interface Mac0 extends Layer {
  payload: Uint8Array;
  tag: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export function decodeMac0(bytes: Uint8Array, options?: DecodeOptions): Mac0 {
  const fields = decodeFramed(bytes, CoseTag.Mac0, 'COSE_Mac0', options);
  requireArity(fields, 4, 'COSE_Mac0');
  const layer = readLayer(fields, 'COSE_Mac0');
  if (fields[2] === null) throw new CoseError('bad-structure', 'COSE_Mac0: detached payload is not supported');
  return { ...layer, payload: bstr(fields[2], 'COSE_Mac0 payload'), tag: bstr(fields[3], 'COSE_Mac0 tag') };
}

/** MAC_structure for COSE_Mac0: ["MAC0", protected, external_aad, payload]. */
export function mac0ToBeMaced(protectedBytes: Uint8Array, externalAad: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeAsGiven(['MAC0', protectedBytes, externalAad, payload]);
}

/** Checks an HMAC 256/256 COSE_Mac0 in constant time; `bad-signature` when the tag does not match. */
export function verifyMac0(
  crypto: CryptoProvider,
  message: Mac0,
  key: Uint8Array,
  externalAad: Uint8Array = EMPTY,
): Uint8Array {
  requireAlg(findHeader(message.protected, message.unprotected, Header.alg), Alg.HMAC256, 'COSE_Mac0');
  const expected = crypto.hmacSha256(key, mac0ToBeMaced(message.protectedBytes, externalAad, message.payload));
  if (!equalConstantTime(expected, message.tag)) throw new CoseError('bad-signature', 'COSE_Mac0: tag does not verify');
  return message.payload;
}

export interface MakeMac0 {
  protected: HeaderMap;
  unprotected?: HeaderMap;
  payload: Uint8Array;
  externalAad?: Uint8Array;
}

/** Builds a tagged HMAC 256/256 COSE_Mac0. */
export function makeMac0(crypto: CryptoProvider, key: Uint8Array, input: MakeMac0): Uint8Array {
  const protectedBytes = input.protected.size === 0 ? EMPTY : encode(input.protected);
  const tag = crypto.hmacSha256(key, mac0ToBeMaced(protectedBytes, input.externalAad ?? EMPTY, input.payload));
  return encode(new Tag([protectedBytes, input.unprotected ?? new Map(), input.payload, tag], CoseTag.Mac0));
}
