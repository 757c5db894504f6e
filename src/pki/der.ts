/**
 * Minimal DER (ITU-T X.690 §10) for the device PKI: a writer for the handful of types a PKCS#10
 * request needs, and a strict reader for certificates and requests.
 *
 * The reader accepts only DER: single-byte identifiers, definite lengths in their shortest form,
 * no constructed strings, no bytes after the value, nesting and node count bounded. Universal
 * primitives are checked where they stand (INTEGER minimal, BOOLEAN 00/FF, NULL empty, OBJECT
 * IDENTIFIER minimal base-128, BIT STRING with zero padding bits). Every node keeps its exact byte
 * range, so a signature can be checked over the bytes as received, never over a re-encoding.
 *
 * Runtime-neutral (no Node APIs): this runs in XS. Reader failures are `DerError`; writer misuse
 * (a bad OID string, a non-printable PrintableString) is a `RangeError`/`TypeError`.
 */
import { concat, utf8Decode, utf8Encode } from '../bytes.js';

/** The input is not the DER this code accepts, or not the structure the caller expected. */
export class DerError extends Error {
  // A field (defined), not `this.name = …` (assigned): XS freezes Error.prototype, where an
  // assignment to the inherited read-only `name` throws "set name: not writable".
  override name = 'DerError';
  /** Byte offset of the problem in the bytes given to the reader (or to `readDer` of a nested value). */
  readonly offset: number;
  /** What went wrong, for callers that word the refusal themselves (some errors only). */
  problem: DerProblem | undefined;
  constructor(message: string, offset: number, problem?: DerProblem) {
    super(`${message} (at byte ${offset})`);
    this.offset = offset;
    this.problem = problem;
  }
}

/**
 * The kind of a DerError, when a caller needs it: `trailing-bytes` (`count` bytes after the
 * value), and the X.509 profile's `duplicate-extension`, `critical-extension` (an unknown one),
 * `extension-value` (a known extension whose value is malformed) — each with the extension's
 * `oid` — and `subject-key` (not EC P-256; `key` names it).
 */
export interface DerProblem {
  kind: 'trailing-bytes' | 'duplicate-extension' | 'critical-extension' | 'extension-value' | 'subject-key';
  count?: number;
  oid?: string;
  key?: string;
}

/** Identifier octets this code uses (class, constructed bit and number in one byte). */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const CONSTRUCTED = 0x20;
const CONTEXT = 0x80;

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

function lengthOctets(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One TLV: identifier octet `tag`, then the shortest definite length, then `content`. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  if (!Number.isInteger(tag) || tag < 1 || tag > 0xff || (tag & 0x1f) === 0x1f) {
    throw new RangeError(`DER tag must be a single identifier octet, got ${tag}`);
  }
  if (!(content instanceof Uint8Array)) throw new TypeError('DER content must be a Uint8Array');
  return concat(Uint8Array.of(tag), lengthOctets(content.length), content);
}

export function sequence(...items: Uint8Array[]): Uint8Array {
  return tlv(Tag.SEQUENCE, concat(...items));
}

/** SET OF: DER orders the elements by their encodings (X.690 §11.6). */
export function setOf(...items: Uint8Array[]): Uint8Array {
  return tlv(Tag.SET, concat(...[...items].sort(compareBytes)));
}

/** INTEGER from unsigned big-endian bytes: leading zeros dropped, a 0x00 sign byte added when the top bit is set. */
export function integer(unsigned: Uint8Array): Uint8Array {
  if (!(unsigned instanceof Uint8Array)) throw new TypeError('INTEGER value must be a Uint8Array');
  let from = 0;
  while (from < unsigned.length - 1 && unsigned[from] === 0) from++;
  const digits = unsigned.length === 0 ? Uint8Array.of(0) : unsigned.subarray(from);
  return tlv(Tag.INTEGER, (digits[0]! & 0x80) !== 0 ? concat(Uint8Array.of(0), digits) : digits);
}

export function boolean(value: boolean): Uint8Array {
  return tlv(Tag.BOOLEAN, Uint8Array.of(value ? 0xff : 0x00));
}

export function nullValue(): Uint8Array {
  return Uint8Array.of(Tag.NULL, 0);
}

/** OBJECT IDENTIFIER from its dotted form, e.g. "1.2.840.10045.2.1". */
export function oid(dotted: string): Uint8Array {
  if (typeof dotted !== 'string' || !/^[0-2](\.(0|[1-9][0-9]*))+$/.test(dotted)) {
    throw new RangeError(`not an OID in dotted form: ${JSON.stringify(dotted)}`);
  }
  const arcs = dotted.split('.').map(Number);
  if (arcs.some((a) => !Number.isSafeInteger(a))) throw new RangeError(`OID arc too large in ${dotted}`);
  if (arcs[0]! < 2 && arcs[1]! > 39) throw new RangeError(`OID ${dotted}: the second arc must be below 40`);
  const out: number[] = [];
  const first = arcs[0]! * 40 + arcs[1]!;
  for (const arc of [first, ...arcs.slice(2)]) {
    const digits = [arc % 128];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) digits.unshift(0x80 | (n % 128));
    out.push(...digits);
  }
  return tlv(Tag.OID, Uint8Array.from(out));
}

export function utf8String(text: string): Uint8Array {
  return tlv(Tag.UTF8_STRING, utf8Encode(text));
}

/** PrintableString: A–Z a–z 0–9 space ' ( ) + , - . / : = ? only. */
export function printableString(text: string): Uint8Array {
  if (typeof text !== 'string' || !PRINTABLE.test(text)) {
    throw new RangeError(`not a PrintableString: ${JSON.stringify(text)}`);
  }
  return tlv(Tag.PRINTABLE_STRING, utf8Encode(text));
}

/** BIT STRING of whole bytes (no unused bits). */
export function bitString(bytes: Uint8Array): Uint8Array {
  return tlv(Tag.BIT_STRING, concat(Uint8Array.of(0), bytes));
}

export function octetString(bytes: Uint8Array): Uint8Array {
  return tlv(Tag.OCTET_STRING, bytes);
}

/** [n] constructed (EXPLICIT tagging, or IMPLICIT over a constructed type): the items as content. */
export function contextConstructed(n: number, ...items: Uint8Array[]): Uint8Array {
  return tlv(CONTEXT | CONSTRUCTED | contextNumber(n), concat(...items));
}

/** [n] IMPLICIT over a primitive type: `content` is that type's content octets. */
export function contextPrimitive(n: number, content: Uint8Array): Uint8Array {
  return tlv(CONTEXT | contextNumber(n), content);
}

function contextNumber(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`context tag number must be 0..30, got ${n}`);
  return n;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/** One DER value with its exact place in the input. `encoding` and `content` are views, not copies. */
export interface DerNode {
  /** The identifier octet. */
  tag: number;
  /** Offset of the identifier octet in the input. */
  start: number;
  /** Offset of the first content octet. */
  contentStart: number;
  /** Offset just past the last content octet. */
  end: number;
  /** The whole TLV (identifier, length and content octets), exactly as received. */
  encoding: Uint8Array;
  content: Uint8Array;
  /** The values inside a constructed node, in order; undefined for a primitive one. */
  children: DerNode[] | undefined;
}

export interface ReadDerOptions {
  /** Deepest nesting accepted (the outermost value is depth 1). Default 32. */
  maxDepth?: number;
  /** Most values accepted in total. Default 4096. */
  maxNodes?: number;
}

const DEFAULT_MAX_DEPTH = 32;
const DEFAULT_MAX_NODES = 4096;

/**
 * Reads `input` as exactly one DER value (nothing after it) into a tree of nodes. The walk is a
 * loop, not a recursion: the XS stack of a device application is small (1024 slots), and the
 * nesting of the input must not decide how much of it is used.
 */
export function readDer(input: Uint8Array, options: ReadDerOptions = {}): DerNode {
  if (!(input instanceof Uint8Array)) throw new DerError('DER input is not a Uint8Array', 0);
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxNodes = options.maxNodes ?? DEFAULT_MAX_NODES;
  /** The constructed values whose content is being read, innermost last. */
  const open: DerNode[] = [];
  let root: DerNode | undefined;
  let nodes = 0;
  let at = 0;
  for (;;) {
    while (open.length > 0 && at === open[open.length - 1]!.end) open.pop();
    if (root !== undefined && open.length === 0) break;
    if (open.length >= maxDepth) throw new DerError(`DER nesting deeper than ${maxDepth}`, at);
    if (++nodes > maxNodes) throw new DerError(`more than ${maxNodes} DER values`, at);
    const parent = open[open.length - 1];
    const node = readHeader(input, at, parent === undefined ? input.length : parent.end);
    if (parent === undefined) root = node;
    else parent.children!.push(node);
    if (node.children === undefined) {
      checkPrimitive(node);
      at = node.end;
    } else {
      open.push(node);
      at = node.contentStart;
    }
  }
  if (root.end !== input.length) {
    const count = input.length - root.end;
    throw new DerError(`${count} byte(s) after the DER value`, root.end, { kind: 'trailing-bytes', count });
  }
  return root;
}

/** The identifier and length octets at `at` (the value must end by `limit`): a node, children still to read. */
function readHeader(input: Uint8Array, at: number, limit: number): DerNode {
  if (at >= limit) throw new DerError('truncated DER: a value was expected', at);
  const tag = input[at]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported', at);
  if (tag === 0) throw new DerError('DER tag 0 (end-of-contents) is not allowed', at);
  const constructed = (tag & CONSTRUCTED) !== 0;
  if ((tag & 0xc0) === 0 && constructed !== ((tag & 0x1f) === 0x10 || (tag & 0x1f) === 0x11)) {
    const form = constructed ? 'constructed' : 'primitive';
    throw new DerError(`universal tag ${tag & 0x1f} in ${form} form is not DER`, at);
  }
  if (at + 1 >= limit) throw new DerError('truncated DER: the length is missing', at + 1);
  const first = input[at + 1]!;
  let length = first;
  let contentStart = at + 2;
  if (first >= 0x80) {
    const count = first & 0x7f;
    if (count === 0) throw new DerError('indefinite length is not DER', at + 1);
    if (count > 4) throw new DerError(`a ${count}-byte length is not supported`, at + 1);
    if (at + 2 + count > limit) throw new DerError('truncated DER length', at + 1);
    if (input[at + 2] === 0) throw new DerError('the length has a leading zero byte (not DER)', at + 1);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + input[at + 2 + i]!;
    if (length < 0x80) throw new DerError('the long-form length is under 128 (not DER)', at + 1);
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > limit) {
    throw new DerError(`truncated DER: ${length} content byte(s) announced, ${limit - contentStart} left`, at);
  }
  return {
    tag,
    start: at,
    contentStart,
    end,
    encoding: input.subarray(at, end),
    content: input.subarray(contentStart, end),
    children: constructed ? [] : undefined,
  };
}

/** The DER rules for the universal primitives that have them; others are checked when read. */
function checkPrimitive(node: DerNode): void {
  const c = node.content;
  switch (node.tag) {
    case Tag.BOOLEAN:
      if (c.length !== 1 || (c[0] !== 0x00 && c[0] !== 0xff)) fail(node, 'a DER BOOLEAN is one byte, 00 or FF');
      break;
    case Tag.INTEGER:
      if (c.length === 0) fail(node, 'an INTEGER has no content');
      if (c.length > 1 && ((c[0] === 0x00 && c[1]! < 0x80) || (c[0] === 0xff && c[1]! >= 0x80))) {
        fail(node, 'an INTEGER is not minimally encoded');
      }
      break;
    case Tag.NULL:
      if (c.length !== 0) fail(node, 'a NULL has content');
      break;
    case Tag.OID:
      decodeOid(node);
      break;
    case Tag.BIT_STRING:
      if (c.length === 0) fail(node, 'a BIT STRING has no unused-bits octet');
      if (c[0]! > 7 || (c.length === 1 && c[0] !== 0)) fail(node, 'a BIT STRING has an invalid unused-bits count');
      if ((c[c.length - 1]! & ((1 << c[0]!) - 1)) !== 0) fail(node, 'a BIT STRING has non-zero padding bits');
      break;
  }
}

function fail(node: DerNode, message: string): never {
  throw new DerError(message, node.start);
}

// ---------------------------------------------------------------------------------------------
// Typed access to nodes. `what` names the field in error messages ("the serial number").
// ---------------------------------------------------------------------------------------------

function tagName(tag: number): string {
  return `0x${tag.toString(16).padStart(2, '0')}`;
}

/** The node, when its identifier octet is `tag`. */
export function expect(node: DerNode | undefined, tag: number, what: string, at = 0): DerNode {
  if (node === undefined) throw new DerError(`${what} is missing`, at);
  if (node.tag !== tag) fail(node, `${what} has tag ${tagName(node.tag)}, expected ${tagName(tag)}`);
  return node;
}

/** The children of a constructed node with identifier `tag`, checking their count. */
export function items(node: DerNode | undefined, tag: number, what: string, min = 0, max = Infinity): DerNode[] {
  const n = expect(node, tag, what);
  const children = n.children!;
  if (children.length < min || children.length > max) {
    const range = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min}–${max}`;
    fail(n, `${what} has ${children.length} element(s), expected ${range}`);
  }
  return children;
}

/** SET OF elements: also checks the DER order (ascending encodings, X.690 §11.6). */
export function setItems(node: DerNode | undefined, what: string, min = 0, tag: number = Tag.SET): DerNode[] {
  const children = items(node, tag, what, min);
  for (let i = 1; i < children.length; i++) {
    if (compareBytes(children[i - 1]!.encoding, children[i]!.encoding) > 0) {
      fail(children[i]!, `the elements of ${what} are not in DER order`);
    }
  }
  return children;
}

/** An INTEGER's content octets (two's complement, minimal). */
export function readInteger(node: DerNode | undefined, what: string): Uint8Array {
  return expect(node, Tag.INTEGER, what).content;
}

/** A non-negative INTEGER as unsigned big-endian bytes without the sign byte (at least one byte). */
export function readUnsigned(node: DerNode | undefined, what: string): Uint8Array {
  const c = readInteger(node, what);
  if ((c[0]! & 0x80) !== 0) fail(node!, `${what} is negative`);
  return c.length > 1 && c[0] === 0 ? c.subarray(1) : c;
}

/** A non-negative INTEGER that fits a JavaScript safe integer. */
export function readSmallUnsigned(node: DerNode | undefined, what: string): number {
  const bytes = readUnsigned(node, what);
  if (bytes.length > 6) fail(node!, `${what} is too large`);
  let n = 0;
  for (const b of bytes) n = n * 256 + b;
  return n;
}

export function readBoolean(node: DerNode | undefined, what: string): boolean {
  return expect(node, Tag.BOOLEAN, what).content[0] === 0xff;
}

export function readNull(node: DerNode | undefined, what: string): void {
  expect(node, Tag.NULL, what);
}

/** An OBJECT IDENTIFIER in dotted form. */
export function readOid(node: DerNode | undefined, what: string): string {
  return decodeOid(expect(node, Tag.OID, what));
}

function decodeOid(node: DerNode): string {
  const c = node.content;
  if (c.length === 0) fail(node, 'an OBJECT IDENTIFIER has no content');
  const arcs: number[] = [];
  let value = 0;
  let digits = 0;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (digits === 0 && b === 0x80) fail(node, 'an OBJECT IDENTIFIER arc has a leading zero digit (not DER)');
    if (++digits > 7) fail(node, 'an OBJECT IDENTIFIER arc is too large');
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(value);
      value = 0;
      digits = 0;
    }
  }
  if (digits !== 0) fail(node, 'an OBJECT IDENTIFIER ends inside an arc');
  const first = arcs[0]!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** A BIT STRING: its bytes (a view) and how many bits of the last byte are unused. */
export function readBits(node: DerNode | undefined, what: string): { bytes: Uint8Array; unusedBits: number } {
  const c = expect(node, Tag.BIT_STRING, what).content;
  return { bytes: c.subarray(1), unusedBits: c[0]! };
}

/** A BIT STRING of whole bytes (no unused bits), e.g. a public key or a signature. */
export function readBitStringBytes(node: DerNode | undefined, what: string): Uint8Array {
  const { bytes, unusedBits } = readBits(node, what);
  if (unusedBits !== 0) fail(node!, `${what} is not a whole number of bytes`);
  return bytes;
}

export function readOctetString(node: DerNode | undefined, what: string): Uint8Array {
  return expect(node, Tag.OCTET_STRING, what).content;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A UTF8String, PrintableString or IA5String (the directory strings this profile reads) as text. */
export function readString(node: DerNode | undefined, what: string): string {
  if (node === undefined) throw new DerError(`${what} is missing`, 0);
  let text: string;
  try {
    text = utf8Decode(node.content);
  } catch (e) {
    fail(node, `${what} is not valid UTF-8: ${(e as Error).message}`);
  }
  switch (node.tag) {
    case Tag.UTF8_STRING:
      return text;
    case Tag.PRINTABLE_STRING:
      if (!PRINTABLE.test(text)) fail(node, `${what} has characters a PrintableString may not hold`);
      return text;
    case Tag.IA5_STRING:
      if (!/^[\u0000-\u007f]*$/.test(text)) fail(node, `${what} has characters an IA5String may not hold`);
      return text;
    default:
      fail(node, `${what} has tag ${tagName(node.tag)}; only UTF8String, PrintableString and IA5String are read`);
  }
}

/**
 * A UTCTime (YYMMDDHHMMSSZ, years 1950–2049) or GeneralizedTime (YYYYMMDDHHMMSSZ) as
 * milliseconds since the epoch. DER (and RFC 5280 §4.1.2.5) forms only: seconds present,
 * "Z", no fraction.
 */
export function readTime(node: DerNode | undefined, what: string): number {
  if (node === undefined) throw new DerError(`${what} is missing`, 0);
  if (node.content.length > 15) fail(node, `${what} is too long for a DER time`);
  const text = String.fromCharCode(...node.content);
  let match: RegExpMatchArray | null;
  let year: number;
  if (node.tag === Tag.UTC_TIME) {
    match = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text);
    if (match === null) fail(node, `${what} is not a DER UTCTime (YYMMDDHHMMSSZ)`);
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (node.tag === Tag.GENERALIZED_TIME) {
    match = /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text);
    if (match === null) fail(node, `${what} is not a DER GeneralizedTime (YYYYMMDDHHMMSSZ)`);
    year = Number(match[1]);
  } else {
    fail(node, `${what} has tag ${tagName(node.tag)}, expected UTCTime or GeneralizedTime`);
  }
  const [month, day, hour, minute, second] = match.slice(2).map(Number) as [number, number, number, number, number];
  const check = new Date(0);
  check.setUTCFullYear(year, month - 1, day); // not Date.UTC, which maps years 0–99 to 1900–1999
  check.setUTCHours(hour, minute, second, 0);
  if (
    check.getUTCFullYear() !== year ||
    month < 1 ||
    month > 12 ||
    check.getUTCDate() !== day ||
    check.getUTCMonth() !== month - 1 ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    fail(node, `${what} is not a valid date and time: ${text}`);
  }
  return check.getTime();
}
