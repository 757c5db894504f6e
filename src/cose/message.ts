/** Shared framing of the COSE message structures: size limit, strict CBOR, tag, array shape. */
import { CborError, decode as cborDecode, Tag } from '../cbor/index.js';
import { CoseError } from './errors.js';
import { asUnprotected, bstr, checkDisjoint, decodeProtected, type HeaderMap } from './headers.js';

export interface DecodeOptions {
  /** Refuse a message without its COSE tag. Default true; the cose-flow/1 profile always requires it. */
  requireTag?: boolean;
  /** Refuse larger input before any parsing. Default 65536 bytes. */
  maxBytes?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 65536;

/** The common first three fields of every COSE message (and of a COSE_recipient). */
export interface Layer {
  /** The protected bucket exactly as received; signatures and tags are checked over these bytes. */
  protectedBytes: Uint8Array;
  protected: HeaderMap;
  unprotected: HeaderMap;
}

/**
 * Checks size, decodes strictly and unwraps the COSE tag. Returns the message array.
 * A message tagged with another COSE tag, or any other tag, is `bad-tag`.
 */
export function decodeFramed(bytes: Uint8Array, tag: number, name: string, options: DecodeOptions = {}): unknown[] {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!(bytes instanceof Uint8Array)) throw new CoseError('bad-structure', `${name}: input is not bytes`);
  if (bytes.length > maxBytes)
    throw new CoseError('too-large', `${name}: ${bytes.length} bytes exceeds the ${maxBytes}-byte limit`);
  let item: unknown;
  try {
    // Only the message itself is tagged; nothing inside it may be (RFC 9052 §2). The other COSE
    // tags are let through at the top so that a message of the wrong type is reported as such.
    item = cborDecode(bytes, { outerTags: COSE_TAGS, maxDepth: 12 });
  } catch (e) {
    if (e instanceof CborError)
      throw new CoseError(e.kind === 'unexpected-tag' ? 'bad-tag' : 'bad-cbor', `${name}: ${e.message}`);
    throw e;
  }
  if (item instanceof Tag) {
    if (item.tag !== tag) throw new CoseError('bad-tag', `${name}: CBOR tag ${item.tag}, expected ${tag}`);
    item = item.value;
    if (item instanceof Tag) throw new CoseError('bad-tag', `${name}: more than one tag`);
  } else if (options.requireTag ?? true) {
    throw new CoseError('bad-tag', `${name}: the message is not tagged ${tag}`);
  }
  if (!Array.isArray(item)) throw new CoseError('bad-structure', `${name}: not a CBOR array`);
  return item;
}

/** COSE message tags (RFC 9052 §2): Encrypt0, Mac0, Sign1, Encrypt, Mac, Sign. */
const COSE_TAGS = [16, 17, 18, 96, 97, 98];

/** Reads the [protected, unprotected] pair that opens every layer. */
export function readLayer(fields: unknown[], name: string): Layer {
  const protectedBytes = bstr(fields[0], `${name} protected header`);
  const protectedMap = decodeProtected(protectedBytes);
  const unprotected = asUnprotected(fields[1]);
  checkDisjoint(protectedMap, unprotected);
  return { protectedBytes, protected: protectedMap, unprotected };
}

export function requireArity(fields: unknown[], n: number, name: string): void {
  if (fields.length !== n)
    throw new CoseError('bad-structure', `${name}: array of ${fields.length} items, expected ${n}`);
}
