/** COSE_Sign1 (RFC 9052 §4.2) with ES256 (RFC 9053 §2.1): raw r‖s over SHA-256 of the Sig_structure. */
import { byteStringSize, encode, encodeAsGiven, Tag, writeByteString } from '../cbor/index.js';
import type { CryptoProvider, P256PrivateKey } from '../crypto/provider.js';
import { CoseError } from './errors.js';
import { Alg, bstr, CoseTag, findHeader, Header, type HeaderMap, requireAlg } from './headers.js';
import { type DecodeOptions, decodeFramed, type Layer, readLayer, requireArity } from './message.js';

export interface Sign1 extends Layer {
  /** The payload; `null` for a detached payload. */
  payload: Uint8Array | null;
  signature: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export function decodeSign1(bytes: Uint8Array, options?: DecodeOptions): Sign1 {
  const fields = decodeFramed(bytes, CoseTag.Sign1, 'COSE_Sign1', options);
  requireArity(fields, 4, 'COSE_Sign1');
  const layer = readLayer(fields, 'COSE_Sign1');
  const payload = fields[2] === null ? null : bstr(fields[2], 'COSE_Sign1 payload');
  const signature = bstr(fields[3], 'COSE_Sign1 signature');
  return { ...layer, payload, signature };
}

/** `84` (array of 4) and `6A "Signature1"`. */
const SIG1_HEAD = [0x84, 0x6a, 0x53, 0x69, 0x67, 0x6e, 0x61, 0x74, 0x75, 0x72, 0x65, 0x31];

/** Sig_structure for COSE_Sign1: ["Signature1", body_protected, external_aad, payload]. */
export function sign1ToBeSigned(protectedBytes: Uint8Array, externalAad: Uint8Array, payload: Uint8Array): Uint8Array {
  // Written directly (the encoder's bytes: shortest heads; docs/PROTOCOL.md §4.2).
  const out = new Uint8Array(
    SIG1_HEAD.length +
      byteStringSize(protectedBytes.length) +
      byteStringSize(externalAad.length) +
      byteStringSize(payload.length),
  );
  out.set(SIG1_HEAD);
  let at = writeByteString(out, SIG1_HEAD.length, protectedBytes);
  at = writeByteString(out, at, externalAad);
  writeByteString(out, at, payload);
  return out;
}

export interface VerifySign1Options {
  externalAad?: Uint8Array;
  /** The payload when the message carries none (detached). */
  detachedPayload?: Uint8Array;
}

/**
 * Verifies an ES256 COSE_Sign1 with a P-256 public key. The alg may sit in either bucket here
 * (as RFC 9052 allows); the profile layer additionally insists on the protected one.
 * Throws `unsupported-alg` for anything but ES256 and `bad-signature` when it does not verify.
 */
export function verifySign1(
  crypto: CryptoProvider,
  message: Sign1,
  publicKey: Uint8Array,
  options: VerifySign1Options = {},
): Uint8Array {
  requireAlg(findHeader(message.protected, message.unprotected, Header.alg), Alg.ES256, 'COSE_Sign1');
  const payload = message.payload ?? options.detachedPayload;
  if (payload === undefined) throw new CoseError('bad-structure', 'COSE_Sign1: detached payload not supplied');
  if (message.signature.length !== 64) {
    throw new CoseError(
      'bad-signature',
      `COSE_Sign1: ES256 signature is ${message.signature.length} bytes, expected 64`,
    );
  }
  const tbs = sign1ToBeSigned(message.protectedBytes, options.externalAad ?? EMPTY, payload);
  if (!crypto.ecdsaP256Verify(publicKey, tbs, message.signature)) {
    throw new CoseError('bad-signature', 'COSE_Sign1: signature does not verify');
  }
  return payload;
}

export interface MakeSign1 {
  protected: HeaderMap;
  unprotected?: HeaderMap;
  payload: Uint8Array;
  externalAad?: Uint8Array;
  /** 'deterministic' (default) sorts every map's keys; 'as-given' keeps the caller's order (vector reproduction). */
  mapOrder?: 'deterministic' | 'as-given';
}

/** Builds a tagged ES256 COSE_Sign1. */
export function makeSign1(crypto: CryptoProvider, key: P256PrivateKey, input: MakeSign1): Uint8Array {
  const enc = input.mapOrder === 'as-given' ? encodeAsGiven : encode;
  const protectedBytes = input.protected.size === 0 ? EMPTY : enc(input.protected);
  const tbs = sign1ToBeSigned(protectedBytes, input.externalAad ?? EMPTY, input.payload);
  const signature = crypto.ecdsaP256Sign(key, tbs);
  return enc(new Tag([protectedBytes, input.unprotected ?? new Map(), input.payload, signature], CoseTag.Sign1));
}
