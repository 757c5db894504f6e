/**
 * The cose-wg example files (test/vectors/cose-wg, see its README) as the tests read them:
 * their JSON shape, the JOSE-style names mapped to COSE labels, and the expectations shared by the
 * Node conformance test (test/cose/cose-wg.test.ts) and the XS one (test/xs/cose-wg-input.ts).
 */
import { fromHex, utf8Encode } from '../../src/bytes.js';
import type { CoseReason, HeaderMap } from '../../src/cose/index.js';

export interface Jwk {
  kty?: string;
  kid?: string;
  x?: string;
  y?: string;
  d?: string;
  k?: string;
}
export type Headers = Record<string, unknown>;
export interface Layer {
  /** Countersignatures (label 7/9) are not rebuilt by the tests, so such files are not re-encrypted. */
  countersign?: unknown;
  countersign0?: unknown;
  protected?: Headers;
  unprotected?: Headers;
  unsent?: Headers;
  external?: string;
  key?: Jwk;
  recipients?: Layer[];
}
export interface Example {
  title: string;
  fail?: boolean;
  input: {
    plaintext: string;
    sign0?: Layer;
    encrypted?: Layer;
    enveloped?: Layer;
    sign?: Layer;
    rng_stream?: string[];
    failures?: Record<string, unknown>;
  };
  intermediates?: { CEK_hex?: string; recipients?: { Context_hex?: string }[] };
  output: { cbor: string };
}

/** The three files that pass only if h'A0' is treated as h'' (see the vectors README). */
export const DISPUTED = new Set([
  'cose-wg/sign1-tests/sign-pass-01.json',
  'cose-wg/encrypted-tests/enc-pass-01.json',
  'cose-wg/enveloped-tests/env-pass-01.json',
]);

/** JOSE-style algorithm names of the examples → COSE algorithm ids (RFC 9053). */
export const ALG: Record<string, number> = {
  ES256: -7,
  ES384: -35,
  ES512: -36,
  A128GCM: 1,
  A192GCM: 2,
  A256GCM: 3,
  direct: -6,
  'ECDH-ES': -25,
  'ECDH-ES-512': -26,
  'ECDH-SS': -27,
  'ECDH-ES-A128KW': -29,
  'ECDH-ES-A192KW': -30,
  'ECDH-ES-A256KW': -31,
  'ECDH-SS-A128KW': -32,
  'ECDH-SS-A192KW': -33,
  'ECDH-SS-A256KW': -34,
};

/** The algorithms cose-flow/1 uses: ES256, A128GCM, ECDH-ES + A128KW. */
export const SUPPORTED_ALGS = new Set([-7, 1, -29]);

export const b64url = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));

/** An EC JWK's public key as a 65-byte uncompressed point. */
export const jwkPoint = (k: Jwk) => new Uint8Array([4, ...b64url(k.x!), ...b64url(k.y!)]);

/**
 * The JSON header names as COSE labels, in the order the file lists them, or undefined when a
 * name is not one the tests rebuild (such a layer is not re-encrypted).
 */
export function headerMap(h: Headers | undefined): HeaderMap | undefined {
  const map: HeaderMap = new Map();
  for (const [name, value] of Object.entries(h ?? {})) {
    if (name === 'alg') map.set(1, typeof value === 'string' && value in ALG ? ALG[value] : value);
    else if (name === 'kid') map.set(4, utf8Encode(String(value)));
    else if (name === 'ctyp') map.set(3, value);
    else if (name === 'IV_hex') map.set(5, fromHex(String(value)));
    else if (name === 'partialIV_hex') map.set(6, fromHex(String(value)));
    else return undefined;
  }
  return map;
}

/** A layer's alg as a COSE id (names mapped through ALG; anything else as given). */
export function algOf(layer: Layer | undefined): unknown {
  const a = layer?.protected?.alg ?? layer?.unprotected?.alg;
  return typeof a === 'string' && a in ALG ? ALG[a] : a;
}

/** The reason codes that fit a file marked `fail`, by the mutation it applies. */
export function failReasons(ex: Example): CoseReason[] {
  const f = ex.input.failures ?? {};
  if ('ChangeCBORTag' in f) return ['bad-tag'];
  if ('ChangeAttr' in f) return ['unsupported-alg'];
  return ['bad-signature', 'decrypt-failed'];
}
