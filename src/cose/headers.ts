/** COSE header labels, algorithm identifiers and header-bucket checks (RFC 9052 §3, RFC 9053). */

import { plain } from '../bytes.js';
import { CborError, decode as cborDecode } from '../cbor/index.js';
import { CoseError } from './errors.js';

export type Label = number | string;
export type HeaderMap = Map<Label, unknown>;

/** Header labels (RFC 9052 §3.1, RFC 9360). */
export const Header = {
  alg: 1,
  crit: 2,
  contentType: 3,
  kid: 4,
  iv: 5,
  partialIv: 6,
  x5chain: 33,
  /** ECDH ephemeral key (RFC 9053 §6.4.1). */
  ephemeralKey: -1,
} as const;

/** Algorithm identifiers (RFC 9053). */
export const Alg = {
  ES256: -7,
  A128GCM: 1,
  A128KW: -3,
  ECDH_ES_A128KW: -29,
  /** HMAC w/ SHA-256, 256-bit tag. */
  HMAC256: 5,
} as const;

/** CBOR tags of the COSE messages (RFC 9052 §2). */
export const CoseTag = {
  Encrypt0: 16,
  Mac0: 17,
  Sign1: 18,
  Encrypt: 96,
} as const;

/** Content-type value for a payload that is a COSE_Encrypt (its CoAP content-format number). */
export const CONTENT_TYPE_COSE_ENCRYPT = 96;

/** Decodes a protected-header bstr: zero length is the empty map; anything else must be a map. */
export function decodeProtected(bytes: Uint8Array): HeaderMap {
  if (bytes.length === 0) return new Map();
  let map: unknown;
  try {
    map = cborDecode(bytes, { maxDepth: 8 });
  } catch (e) {
    if (e instanceof CborError) throw new CoseError('bad-cbor', `protected header: ${e.message}`);
    throw e;
  }
  if (!(map instanceof Map)) throw new CoseError('bad-structure', 'protected header is not a map');
  checkLabels(map, 'protected');
  return map as HeaderMap;
}

/** Checks an unprotected-header value is a map with valid labels. */
export function asUnprotected(value: unknown): HeaderMap {
  if (!(value instanceof Map)) throw new CoseError('bad-structure', 'unprotected header is not a map');
  checkLabels(value, 'unprotected');
  return value as HeaderMap;
}

function checkLabels(map: Map<unknown, unknown>, bucket: string): void {
  for (const label of map.keys()) {
    if (!(typeof label === 'string' || (typeof label === 'number' && Number.isSafeInteger(label)))) {
      throw new CoseError('bad-structure', `${bucket} header has a label that is neither an integer nor a text string`);
    }
  }
}

/** RFC 9052 §3: a label must not appear in both buckets. */
export function checkDisjoint(protectedMap: HeaderMap, unprotected: HeaderMap): void {
  for (const label of unprotected.keys()) {
    if (protectedMap.has(label)) {
      throw new CoseError(
        'bad-structure',
        `header label ${String(label)} is in both the protected and unprotected buckets`,
      );
    }
  }
}

/** The value of a header from the protected bucket, else the unprotected one. */
export function findHeader(protectedMap: HeaderMap, unprotected: HeaderMap, label: Label): unknown {
  return protectedMap.has(label) ? protectedMap.get(label) : unprotected.get(label);
}

/** Refuses any `crit` header: the profile never marks a header critical, so it cannot honour one. */
export function refuseCrit(protectedMap: HeaderMap, unprotected: HeaderMap): void {
  if (protectedMap.has(Header.crit) || unprotected.has(Header.crit)) {
    throw new CoseError('crit-not-supported', 'the message lists critical headers (label 2)');
  }
}

/**
 * The `alg` of a layer must be the one expected: an integer equal to `expected`. A missing alg is
 * `missing-header`; any other value (another integer, a text string) is `unsupported-alg`.
 */
export function requireAlg(alg: unknown, expected: number, layer: string): void {
  if (alg === undefined) throw new CoseError('missing-header', `${layer}: no alg header`);
  if (alg !== expected) {
    throw new CoseError('unsupported-alg', `${layer}: alg ${describe(alg)} is not the expected ${expected}`);
  }
}

/**
 * Profile strictness: exactly the labels allowed in a protected bucket (`unknown-header` for
 * others) and every required one present (`missing-header`).
 */
export function requireLabels(
  map: HeaderMap,
  allowed: readonly Label[],
  required: readonly Label[],
  where: string,
): void {
  for (const label of map.keys()) {
    if (!allowed.includes(label))
      throw new CoseError('unknown-header', `${where}: label ${String(label)} is not allowed`);
  }
  for (const label of required) {
    if (!map.has(label)) throw new CoseError('missing-header', `${where}: label ${String(label)} is required`);
  }
}

export function bstr(value: unknown, what: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new CoseError('bad-structure', `${what} is not a byte string`);
  if (length !== undefined && value.length !== length) {
    throw new CoseError('bad-structure', `${what} is ${value.length} bytes, expected ${length}`);
  }
  return plain(value); // cbor-x returns Buffers on Node; hand out plain Uint8Arrays
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value instanceof Uint8Array) return `h'…' (${value.length} bytes)`;
  return typeof value;
}
