/**
 * CBOR for cose-flow: cbor-x configured once.
 *
 * - `encode` writes RFC 8949 §4.2.1 core deterministic encoding: shortest forms (cbor-x does
 *   that for integers and lengths) and every map's keys sorted by their encoded bytes.
 *   Maps keep integer keys, byte strings stay plain byte strings (no tag 64, no tag 259,
 *   no records), so Node and XS produce the same bytes.
 * - `decode` is strict: before cbor-x sees the bytes, `checkWellFormed` walks them and refuses
 *   indefinite lengths, duplicate map keys, trailing bytes, reserved encodings, tags that
 *   the caller did not allow, and nesting deeper than a limit. Errors are `CborError`.
 * - `readHead` reads one item's initial byte and argument: the strict walk here and the lenient
 *   reader of the diagnostic notation (`./diagnostic.ts`) both read items with it.
 */
import { Decoder, Encoder, Tag } from 'cbor-x';

export { Tag };

/** cbor-x options; passed through a variable because its `Options` type lacks `useTag259ForMaps`. */
const encoderOptions = {
  useRecords: false,
  mapsAsObjects: false,
  tagUint8Array: false,
  variableMapSize: true,
  useTag259ForMaps: false,
  pack: false,
  structuredClone: false,
};
const decoderOptions = { useRecords: false, mapsAsObjects: false };

const encoder = new Encoder(encoderOptions);
const decoder = new Decoder(decoderOptions);

export class CborError extends Error {
  // A field (defined), not `this.name = …` (assigned): XS freezes Error.prototype, where an
  // assignment to the inherited read-only `name` throws "set name: not writable".
  override name = 'CborError';
  /** Byte offset where the problem was found. */
  readonly offset: number;
  /** `unexpected-tag` when the bytes are well-formed but carry a tag the caller did not allow. */
  readonly kind: 'malformed' | 'unexpected-tag';
  constructor(message: string, offset: number, kind: 'malformed' | 'unexpected-tag' = 'malformed') {
    super(`${message} (at byte ${offset})`);
    this.offset = offset;
    this.kind = kind;
  }
}

/**
 * cbor-x writes text shorter than 64 characters with its own loop, which on XS (where strings
 * count code points) turns every character above U+FFFF into 3 invalid bytes (😀 → FF 98 80)
 * while the length header still matches: well-formed CBOR, wrong text, nothing flags it. Where
 * the runtime shows that bug (checked once, here), such strings are refused instead.
 */
const misencodesNonBmpText = (() => {
  const b = encoder.encode('\u{1F600}');
  return !(b.length === 5 && b[0] === 0x64 && b[1] === 0xf0 && b[2] === 0x9f && b[3] === 0x98 && b[4] === 0x80);
})();
const NON_BMP = /[\u{10000}-\u{10FFFF}]/u;

function refuseMisencodedText(value: unknown): void {
  if (typeof value === 'string') {
    if (value.length < 64 && NON_BMP.test(value)) {
      throw new CborError(
        'text under 64 characters with characters above U+FFFF (e.g. emoji) cannot be encoded correctly by ' +
          'cbor-x on this runtime; send it as a byte string (utf8Encode) instead',
        0,
      );
    }
  } else if (Array.isArray(value)) {
    for (const v of value) refuseMisencodedText(v);
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      refuseMisencodedText(k);
      refuseMisencodedText(v);
    }
  } else if (value instanceof Tag) {
    refuseMisencodedText(value.value);
  } else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    for (const k of Object.keys(value)) {
      refuseMisencodedText(k);
      refuseMisencodedText((value as Record<string, unknown>)[k]);
    }
  }
}

/**
 * `value` with every integer-valued number from 2^32 to below 2^64 in magnitude as a bigint: cbor-x writes
 * such numbers as 64-bit floats (fb…), but an integer is an integer in CBOR (major type 0 or 1,
 * RFC 8949 §3.1) — a reading's millisecond time stamp is one. Unchanged parts are not copied.
 */
function integersAsIntegers(value: unknown): unknown {
  if (typeof value === 'number') {
    // Positive n ≥ 2^32, or negative −1−n with n ≥ 2^32: those need the 8-byte argument.
    const wide = value >= 0x100000000 ? value < 2 ** 64 : value <= -0x100000001 && value >= -(2 ** 64);
    return wide && Number.isInteger(value) ? BigInt(value) : value;
  }
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = integersAsIntegers(value[i]);
      if (v !== value[i]) {
        out ??= value.slice();
        out[i] = v;
      }
    }
    return out ?? value;
  }
  if (value instanceof Map) {
    let changed = false;
    const entries: [unknown, unknown][] = [];
    for (const [k, v] of value) {
      const k2 = integersAsIntegers(k);
      const v2 = integersAsIntegers(v);
      if (k2 !== k || v2 !== v) changed = true;
      entries.push([k2, v2]);
    }
    return changed ? new Map(entries) : value;
  }
  if (value instanceof Tag) {
    const v = integersAsIntegers(value.value);
    return v === value.value ? value : new Tag(v, value.tag);
  }
  return value;
}

/** The inverse on decoding: a 64-bit integer that is a safe JavaScript integer becomes a number. */
function safeBigIntsAsNumbers(value: unknown): unknown {
  if (typeof value === 'bigint') return value >= -MAX_SAFE && value <= MAX_SAFE ? Number(value) : value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = safeBigIntsAsNumbers(value[i]);
    return value;
  }
  if (value instanceof Map) {
    const entries = [...value].map(([k, v]) => [safeBigIntsAsNumbers(k), safeBigIntsAsNumbers(v)] as const);
    value.clear();
    for (const [k, v] of entries) value.set(k, v);
    return value;
  }
  if (value instanceof Tag) value.value = safeBigIntsAsNumbers(value.value);
  return value;
}
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Encodes without touching map order (the order the caller built). Returns a fresh Uint8Array. */
export function encodeAsGiven(value: unknown): Uint8Array {
  if (misencodesNonBmpText) refuseMisencodedText(value);
  const out = encoder.encode(integersAsIntegers(value));
  return new Uint8Array(out); // copy out of cbor-x's shared buffer; a plain Uint8Array on every runtime
}

/** Core deterministic encoding (RFC 8949 §4.2.1): map keys sorted by their encoded bytes. */
export function encode(value: unknown): Uint8Array {
  return encodeAsGiven(sortMaps(value));
}

/** A copy of `value` in which every Map's entries are ordered by the bytewise order of their encoded keys. */
export function sortMaps(value: unknown): unknown {
  if (value instanceof Map) {
    const entries: { key: Uint8Array; k: unknown; v: unknown }[] = [];
    for (const [k, v] of value) entries.push({ key: encodedKey(k), k: sortMaps(k), v: sortMaps(v) });
    entries.sort((a, b) => compareBytes(a.key, b.key));
    const sorted = new Map();
    for (const e of entries) sorted.set(e.k, e.v);
    return sorted;
  }
  if (Array.isArray(value)) return value.map(sortMaps);
  if (value instanceof Tag) return new Tag(sortMaps(value.value), value.tag);
  return value;
}

const smallIntKeys: Uint8Array[] = [];
function encodedKey(k: unknown): Uint8Array {
  if (typeof k === 'number' && Number.isInteger(k) && k >= -24 && k < 24) {
    // 0..23 encode as one byte 0x00..0x17, -1..-24 as 0x20..0x37: no need to call the encoder.
    const i = k + 24;
    let cached = smallIntKeys[i];
    if (cached === undefined) {
      cached = Uint8Array.of(k >= 0 ? k : 0x1f - k);
      smallIntKeys[i] = cached;
    }
    return cached;
  }
  return encodeAsGiven(sortMaps(k));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Bytes a byte string of `length` bytes takes with its shortest head (RFC 8949 §4.2.1). */
export function byteStringSize(length: number): number {
  return length + (length < 24 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5);
}

/**
 * Writes `bytes` as a byte string with its shortest head at `at` of `out` (sized with
 * `byteStringSize`) and returns the offset past it: for the fixed COSE structures built per message
 * (Enc_structure, Sig_structure, KDF context) without the general encoder. Up to 2^32 − 1 bytes.
 */
export function writeByteString(out: Uint8Array, at: number, bytes: Uint8Array): number {
  const n = bytes.length;
  if (n < 24) out[at++] = 0x40 + n;
  else if (n < 0x100) {
    out[at++] = 0x58;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = 0x59;
    out[at++] = n >>> 8;
    out[at++] = n & 0xff;
  } else {
    out[at++] = 0x5a;
    out[at++] = n >>> 24;
    out[at++] = (n >>> 16) & 0xff;
    out[at++] = (n >>> 8) & 0xff;
    out[at++] = n & 0xff;
  }
  out.set(bytes, at);
  return at + n;
}

export interface DecodeOptions {
  /** Tag numbers that may appear anywhere. Default: none. `'any'` allows every tag. */
  allowTags?: readonly number[] | 'any';
  /** Tag numbers that may appear only as the outermost item (one tag, wrapping the whole value). */
  outerTags?: readonly number[];
  /** Maximum nesting of arrays, maps and tags. Default 16. */
  maxDepth?: number;
}

/**
 * Strictly decodes exactly one CBOR data item that fills `bytes`. Maps decode as `Map`,
 * byte strings as `Uint8Array` (a Node `Buffer` on Node), tags as `Tag`.
 */
export function decode(bytes: Uint8Array, options: DecodeOptions = {}): unknown {
  wideIntegers = false;
  checkWellFormed(bytes, options);
  try {
    const value = decoder.decode(bytes);
    // cbor-x gives every 8-byte integer as a bigint: a safe one is a number, as its encoder took it
    return wideIntegers ? safeBigIntsAsNumbers(value) : value;
  } catch (e) {
    throw new CborError(`cbor-x refused the item: ${(e as Error).message}`, 0);
  }
}

/** Set by `walk` when the item holds an 8-byte integer (then `decode` narrows cbor-x's bigints). */
let wideIntegers = false;

/**
 * Walks one data item and throws `CborError` unless `bytes` holds exactly one well-formed item
 * with definite lengths, no duplicate map keys, only allowed tags, and bounded depth.
 */
export function checkWellFormed(bytes: Uint8Array, options: DecodeOptions = {}): void {
  const allowTags = options.allowTags ?? [];
  const maxDepth = options.maxDepth ?? 16;
  let start = 0;
  const outer = options.outerTags;
  const head = itemHead();
  if (outer !== undefined && bytes.length > 0 && bytes[0]! >> 5 === 6) {
    // A reserved or cut-off head is left for walk() to report.
    let tag: ItemHead | undefined;
    try {
      tag = readHead(bytes, 0, head);
    } catch {
      tag = undefined;
    }
    if (tag !== undefined && tag.info !== 31 && typeof tag.arg === 'number' && outer.includes(tag.arg)) start = tag.end;
  }
  const end = walk(bytes, start, start === 0 ? 0 : 1, maxDepth, allowTags, head);
  if (end !== bytes.length) throw new CborError(`${bytes.length - end} trailing byte(s) after the data item`, end);
}

/** The head of a data item (RFC 8949 §3): what `readHead` fills in. */
export interface ItemHead {
  /** Major type, 0–7. */
  major: number;
  /** Additional information, 0–27 or 31 (indefinite length, or "break" in major type 7). */
  info: number;
  /**
   * The argument: the value itself below 24, else the 1–8 bytes after the initial byte, big-endian
   * — a number when it is a safe integer, a bigint above. 0 when `info` is 31. For major type 7
   * with info 25–27 these are the bits of the float.
   */
  arg: number | bigint;
  /** Offset just past the head. */
  end: number;
}

/** A fresh `ItemHead` to pass to `readHead` (one per walk: readers copy what they need out of it). */
export function itemHead(): ItemHead {
  return { major: 0, info: 0, arg: 0, end: 0 };
}

/**
 * Reads the head of the item at `at` into `head` (no allocation, for the device's hot path) and
 * returns it. `CborError` when no item starts there, the argument is cut off, or the additional
 * information is reserved (28–30). Whether an indefinite length is allowed is the caller's call.
 */
export function readHead(b: Uint8Array, at: number, head: ItemHead): ItemHead {
  if (at >= b.length) throw new CborError('truncated: a data item was expected', at);
  const initial = b[at]!;
  const info = initial & 0x1f;
  head.major = initial >> 5;
  head.info = info;
  if (info < 24 || info === 31) {
    head.arg = info === 31 ? 0 : info;
    head.end = at + 1;
    return head;
  }
  if (info > 27) throw new CborError(`reserved additional information value ${info}`, at);
  const size = 1 << (info - 24);
  if (at + 1 + size > b.length) throw new CborError('truncated argument', at);
  let arg = 0;
  for (let i = 1; i <= size; i++) arg = arg * 256 + b[at + i]!;
  if (arg > Number.MAX_SAFE_INTEGER) {
    let big = 0n;
    for (let i = 1; i <= size; i++) big = (big << 8n) | BigInt(b[at + i]!);
    head.arg = big;
  } else head.arg = arg;
  head.end = at + 1 + size;
  return head;
}

/** Returns the offset just past the item that starts at `at`. */
function walk(
  b: Uint8Array,
  at: number,
  depth: number,
  maxDepth: number,
  allowTags: readonly number[] | 'any',
  head: ItemHead = itemHead(),
): number {
  const start = at;
  readHead(b, at, head);
  const { major, info } = head;
  if (info === 31) {
    throw new CborError(major === 7 ? 'unexpected "break" byte' : 'indefinite-length items are not allowed', start);
  }
  // Past MAX_SAFE_INTEGER: larger than any length that fits, and no tag number in a list.
  const arg = typeof head.arg === 'bigint' ? Number.MAX_VALUE : head.arg;
  at = head.end;

  switch (major) {
    case 0:
    case 1:
      if (info === 27) wideIntegers = true;
      return at;
    case 2:
    case 3:
      if (arg > b.length - at) throw new CborError('truncated string', start);
      return at + arg;
    case 4: {
      if (depth >= maxDepth) throw new CborError('nested too deeply', start);
      if (arg > b.length - at) throw new CborError('truncated array', start);
      for (let i = 0; i < arg; i++) at = walk(b, at, depth + 1, maxDepth, allowTags, head);
      return at;
    }
    case 5: {
      if (depth >= maxDepth) throw new CborError('nested too deeply', start);
      if (arg * 2 > b.length - at) throw new CborError('truncated map', start);
      const seen = new Set<string>();
      for (let i = 0; i < arg; i++) {
        const keyStart = at;
        at = walk(b, at, depth + 1, maxDepth, allowTags, head);
        const key = keyIdentity(b, keyStart, at);
        if (seen.has(key)) throw new CborError('duplicate map key', keyStart);
        seen.add(key);
        at = walk(b, at, depth + 1, maxDepth, allowTags, head);
      }
      return at;
    }
    case 6:
      if (allowTags !== 'any' && !allowTags.includes(arg))
        throw new CborError(`tag ${head.arg} is not allowed here`, start, 'unexpected-tag');
      if (depth >= maxDepth) throw new CborError('nested too deeply', start);
      return walk(b, at, depth + 1, maxDepth, allowTags, head);
    default:
      // major 7: simple values and floats
      if (info === 24 && arg < 32) throw new CborError('simple value encoded in two bytes must be ≥ 32', start);
      return at;
  }
}

/**
 * What makes two keys the same key: integers and strings compare by value, whatever length
 * encoding the sender chose (so 0x01 and 0x1801 collide); anything else by its bytes.
 */
function keyIdentity(b: Uint8Array, from: number, to: number): string {
  const major = b[from]! >> 5;
  let skip = 0;
  if (major <= 3) {
    const info = b[from]! & 0x1f;
    skip = info < 24 ? 1 : 1 + (1 << (info - 24));
  }
  let s = major <= 1 ? `${major}:` : major <= 3 ? `${major}/` : '*';
  if (major <= 1) {
    // an integer: compare the value, ignoring leading zero bytes of a longer argument
    let i = from + (skip === 1 ? 0 : 1);
    if (skip === 1) return s + String.fromCharCode(b[from]! & 0x1f);
    while (i < to - 1 && b[i] === 0) i++;
    for (; i < to; i++) s += String.fromCharCode(b[i]!);
    return s;
  }
  for (let i = from + skip; i < to; i++) s += String.fromCharCode(b[i]!);
  return s;
}
