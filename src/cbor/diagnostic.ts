/**
 * CBOR diagnostic notation (RFC 8949 §8, with the RFC 8610 Appendix G extensions) for debugging:
 * `parseItem` reads bytes into a tree that remembers how each item was encoded, and
 * `diagnostic` prints such a tree, optionally annotated (comments `/…/`, byte strings that hold
 * CBOR shown as `<< … >>`). Runtime-neutral: no Node APIs, so it also runs on the device.
 *
 * The reader reads each item's head with the strict decoder's `readHead` (`./index.ts`) and is
 * lenient where the strict walk is not (indefinite lengths, duplicate keys, any tag,
 * non-preferred encodings are all shown as they are: `_` marks an indefinite length, `_0`…`_3`
 * an argument longer than needed); it refuses only input that is not well-formed (truncated
 * items, reserved values), with a `CborError`.
 */
import { concat, toHex, utf8Decode } from '../bytes.js';
import { CborError, itemHead, readHead } from './index.js';

/** Additional-information value of an item's argument (0–27; 31 = indefinite length). */
export type ArgumentInfo = number;

/** One CBOR data item as it was encoded. */
export type CborItem =
  | { kind: 'uint' | 'nint'; value: number | bigint; info: ArgumentInfo }
  | { kind: 'bytes'; value: Uint8Array; info: ArgumentInfo; chunks?: CborItem[] }
  | { kind: 'text'; value: string; info: ArgumentInfo; chunks?: CborItem[]; invalidUtf8?: Uint8Array }
  | { kind: 'array'; items: CborItem[]; info: ArgumentInfo }
  | { kind: 'map'; entries: [CborItem, CborItem][]; info: ArgumentInfo }
  | { kind: 'tag'; tag: number | bigint; item: CborItem; info: ArgumentInfo }
  | { kind: 'simple'; value: number; info: ArgumentInfo }
  | { kind: 'float'; value: number; info: ArgumentInfo };

export interface ParseOptions {
  /** Maximum nesting of arrays, maps and tags; default 64. */
  maxDepth?: number;
}

const INDEFINITE = 31;

/** Reads exactly one data item filling `bytes`. Throws `CborError` unless well-formed. */
export function parseItem(bytes: Uint8Array, options: ParseOptions = {}): CborItem {
  const reader = new Reader(bytes, options.maxDepth ?? 64);
  const item = reader.item(0);
  if (reader.at !== bytes.length) {
    throw new CborError(`${bytes.length - reader.at} trailing byte(s) after the data item`, reader.at);
  }
  return item;
}

/** Reads a CBOR sequence (RFC 8742): zero or more items back to back. */
export function parseSequence(bytes: Uint8Array, options: ParseOptions = {}): CborItem[] {
  const reader = new Reader(bytes, options.maxDepth ?? 64);
  const items: CborItem[] = [];
  while (reader.at < bytes.length) items.push(reader.item(0));
  return items;
}

class Reader {
  at = 0;
  private readonly head = itemHead();
  constructor(
    private readonly b: Uint8Array,
    private readonly maxDepth: number,
  ) {}

  private take(n: number, start: number, what: string): Uint8Array {
    if (n > this.b.length - this.at) throw new CborError(`truncated ${what}`, start);
    const out = this.b.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }

  private length(arg: number | bigint, start: number): number {
    if (typeof arg === 'bigint' || arg > this.b.length - this.at) {
      throw new CborError('truncated: a length runs past the end of the input', start);
    }
    return arg;
  }

  item(depth: number): CborItem {
    const start = this.at;
    const { major, info, arg, end } = readHead(this.b, start, this.head);
    this.at = end;
    if (info === INDEFINITE) return this.indefinite(major, depth, start);
    if (major === 7) return this.simpleOrFloat(info, arg, start);
    switch (major) {
      case 0:
        return { kind: 'uint', value: arg, info };
      case 1:
        return {
          kind: 'nint',
          value: typeof arg === 'bigint' || arg >= Number.MAX_SAFE_INTEGER ? -1n - BigInt(arg) : -1 - arg,
          info,
        };
      case 2:
        return { kind: 'bytes', value: this.take(this.length(arg, start), start, 'byte string'), info };
      case 3:
        return this.text(this.take(this.length(arg, start), start, 'text string'), info);
      case 4: {
        this.deeper(depth, start);
        const n = this.length(arg, start);
        const items: CborItem[] = [];
        for (let i = 0; i < n; i++) items.push(this.item(depth + 1));
        return { kind: 'array', items, info };
      }
      case 5: {
        this.deeper(depth, start);
        const n = this.length(arg, start);
        if (n * 2 > this.b.length - this.at) throw new CborError('truncated map', start);
        const entries: [CborItem, CborItem][] = [];
        for (let i = 0; i < n; i++) entries.push([this.item(depth + 1), this.item(depth + 1)]);
        return { kind: 'map', entries, info };
      }
      default:
        this.deeper(depth, start);
        return { kind: 'tag', tag: arg, item: this.item(depth + 1), info };
    }
  }

  private deeper(depth: number, start: number): void {
    if (depth >= this.maxDepth) throw new CborError('nested too deeply', start);
  }

  private text(bytes: Uint8Array, info: number): CborItem {
    try {
      return { kind: 'text', value: utf8Decode(bytes), info };
    } catch {
      return { kind: 'text', value: '', info, invalidUtf8: bytes };
    }
  }

  private indefinite(major: number, depth: number, start: number): CborItem {
    switch (major) {
      case 2:
      case 3: {
        const chunks: CborItem[] = [];
        while (this.peekBreak() === false) {
          const chunk = this.item(depth + 1);
          if (chunk.kind !== (major === 2 ? 'bytes' : 'text') || chunk.info === INDEFINITE) {
            throw new CborError('an indefinite-length string holds a chunk of another type', start);
          }
          chunks.push(chunk);
        }
        if (major === 2) {
          const value = concat(...chunks.map((c) => (c as { value: Uint8Array }).value));
          return { kind: 'bytes', value, info: INDEFINITE, chunks };
        }
        return {
          kind: 'text',
          value: chunks.map((c) => (c as { value: string }).value).join(''),
          info: INDEFINITE,
          chunks,
        };
      }
      case 4: {
        this.deeper(depth, start);
        const items: CborItem[] = [];
        while (this.peekBreak() === false) items.push(this.item(depth + 1));
        return { kind: 'array', items, info: INDEFINITE };
      }
      case 5: {
        this.deeper(depth, start);
        const entries: [CborItem, CborItem][] = [];
        while (this.peekBreak() === false) {
          const key = this.item(depth + 1);
          if (this.peekBreak(false)) throw new CborError('an indefinite-length map ends after a key', this.at);
          entries.push([key, this.item(depth + 1)]);
        }
        return { kind: 'map', entries, info: INDEFINITE };
      }
      case 7:
        throw new CborError('unexpected "break" byte', start);
      default:
        throw new CborError(`major type ${major} cannot have an indefinite length`, start);
    }
  }

  /** True (and consumed, unless `consume` is false) when the next byte is "break" (0xff). */
  private peekBreak(consume = true): boolean {
    if (this.at >= this.b.length) throw new CborError('truncated: an indefinite-length item has no "break"', this.at);
    if (this.b[this.at] !== 0xff) return false;
    if (consume) this.at++;
    return true;
  }

  /** Major type 7; `arg` is the head's argument (the float's bits for info 25–27, read from the input again). */
  private simpleOrFloat(info: number, arg: number | bigint, start: number): CborItem {
    if (info < 24) return { kind: 'simple', value: info, info };
    if (info === 24) {
      const value = Number(arg);
      if (value < 32) throw new CborError('simple value encoded in two bytes must be ≥ 32', start);
      return { kind: 'simple', value, info };
    }
    const raw = this.b.subarray(start + 1, this.at);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const value = info === 25 ? halfToNumber(view.getUint16(0)) : info === 26 ? view.getFloat32(0) : view.getFloat64(0);
    return { kind: 'float', value, info };
  }
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The narrowest float width (25 half, 26 single, 27 double) that holds `value` exactly. */
function preferredFloatInfo(value: number): number {
  if (Number.isNaN(value) || !Number.isFinite(value)) return 25;
  if (Math.fround(value) !== value) return 27;
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value);
  const bits = view.getUint32(0);
  const exp = (bits >> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (value === 0) return 25;
  // half: exponent −14…15 normal (mantissa in 10 bits), or subnormal down to 2^−24
  const e = exp - 127;
  if (e >= -14 && e <= 15 && (mant & 0x1fff) === 0) return 25;
  if (e < -14 && e >= -24) {
    const shift = -14 - e; // extra bits the subnormal half loses
    const full = mant | 0x800000;
    if ((full & ((1 << (13 + shift)) - 1)) === 0) return 25;
  }
  return 26;
}

/** The smallest additional-information value for an argument. */
function preferredInfo(arg: number | bigint): number {
  const n = typeof arg === 'bigint' ? arg : BigInt(arg);
  if (n < 24n) return Number(n);
  if (n < 0x100n) return 24;
  if (n < 0x10000n) return 25;
  if (n < 0x100000000n) return 26;
  return 27;
}

/** `_N` when the argument was encoded longer than needed, `_` for an indefinite length, else ''. */
function indicator(info: number, arg: number | bigint): string {
  if (info === INDEFINITE) return '_';
  return info >= 24 && info !== preferredInfo(arg) ? `_${info - 24}` : '';
}

// ---------------------------------------------------------------------------------------------
// Printing

/** How to annotate one item; every field is optional. */
export interface Annotation {
  /** A comment printed before the item: `/label/ item`. */
  label?: string;
  /** A comment printed after the item: `item /comment/`. */
  comment?: string;
  /** For a byte string that holds CBOR (a sequence): print `<< … >>`, annotating its items with this. */
  embedded?: Annotate;
  /** For an array: how to annotate item `index`. */
  item?: (index: number, item: CborItem) => Annotate | undefined;
  /** For a map: how to annotate one entry's key and value. */
  entry?: (key: CborItem, value: CborItem) => { key?: Annotate; value?: Annotate } | undefined;
  /** For a tag: how to annotate the tagged item. */
  content?: Annotate;
}

/** Decides the annotation of an item from the item itself. */
export type Annotate = (item: CborItem) => Annotation | undefined;

/** Use as `embedded` to show a byte string's CBOR content without further annotation. */
export const plainCbor: Annotate = () => undefined;

export interface DiagnosticOptions {
  annotate?: Annotate;
  /** Spaces per nesting level when an array or map is broken over lines; default 2. */
  indent?: number;
  /** Arrays and maps that fit in this many columns stay on one line; default 100. 0 prints everything on one line. */
  lineWidth?: number;
  /** Nesting limit for byte strings parsed as embedded CBOR; default 64. */
  maxDepth?: number;
  /** Byte strings inside byte strings shown as `<< … >>` at most this deep (then as hex); default 8. */
  maxEmbedding?: number;
}

/** Parses `bytes` (one item) and prints it; throws `CborError` when it is not well-formed CBOR. */
export function diagnose(bytes: Uint8Array, options: DiagnosticOptions = {}): string {
  const parseOptions = options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth };
  return diagnostic(parseItem(bytes, parseOptions), options);
}

/** Prints an item in diagnostic notation. */
export function diagnostic(item: CborItem, options: DiagnosticOptions = {}): string {
  return new Printer(options).render(item, options.annotate, 0, 0);
}

/** Text for a `/comment/`: a comment ends at the next slash, so slashes become '∕'; no line breaks. */
function commentText(text: string): string {
  return text.replace(/\//g, '\u2215').replace(/[\r\n]+/g, ' ');
}

function formatFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (Object.is(value, -0)) return '-0.0';
  const s = String(value);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

function simpleName(value: number): string {
  switch (value) {
    case 20:
      return 'false';
    case 21:
      return 'true';
    case 22:
      return 'null';
    case 23:
      return 'undefined';
    default:
      return `simple(${value})`;
  }
}

class Printer {
  private readonly indent: string;
  private readonly width: number;
  private readonly maxDepth: number;
  private readonly maxEmbedding: number;
  /** How many `<< … >>` levels the item being printed is inside. */
  private embedding = 0;
  private readonly embeddedCache = new Map<CborItem, CborItem[] | string>();

  constructor(options: DiagnosticOptions) {
    this.indent = ' '.repeat(options.indent ?? 2);
    this.width = options.lineWidth ?? 100;
    this.maxDepth = options.maxDepth ?? 64;
    this.maxEmbedding = options.maxEmbedding ?? 8;
  }

  /**
   * `item` at nesting `level`, its first line starting at column `column`. Later lines are
   * indented absolutely. `flat` forces one line.
   */
  render(item: CborItem, annotate: Annotate | undefined, level: number, column: number, flat = false): string {
    const annotation = annotate?.(item);
    const label = annotation?.label === undefined ? '' : `/${commentText(annotation.label)}/ `;
    const comment = annotation?.comment === undefined ? '' : ` /${commentText(annotation.comment)}/`;
    return label + this.body(item, annotation, level, column + label.length, flat) + comment;
  }

  private body(item: CborItem, a: Annotation | undefined, level: number, column: number, flat: boolean): string {
    switch (item.kind) {
      case 'uint':
      case 'nint':
        return `${item.value}${indicator(item.info, item.kind === 'uint' ? item.value : -1n - BigInt(item.value))}`;
      case 'float': {
        const preferred = preferredFloatInfo(item.value);
        return formatFloat(item.value) + (item.info !== preferred ? `_${item.info - 24}` : '');
      }
      case 'simple':
        return simpleName(item.value); // values ≥ 32 need the two-byte form, which is then preferred
      case 'text':
        if (item.chunks !== undefined) return this.chunks(item.chunks);
        if (item.invalidUtf8 !== undefined) {
          return `h'${toHex(item.invalidUtf8)}'${indicator(item.info, item.invalidUtf8.length)} /text string with invalid UTF-8/`;
        }
        return JSON.stringify(item.value) + indicator(item.info, utf8Length(item.value));
      case 'bytes':
        if (a?.embedded !== undefined && item.value.length > 0) {
          if (this.embedding >= this.maxEmbedding) {
            return `h'${toHex(item.value)}' /not expanded: CBOR embedded more than ${this.maxEmbedding} levels deep/`;
          }
          const inner = this.embeddedItems(item);
          if (typeof inner === 'string') return `h'${toHex(item.value)}' /not CBOR: ${commentText(inner)}/`;
          this.embedding++;
          try {
            const parts = inner.map((x, i) =>
              this.render(x, a.embedded, level, column + 3 + (i === 0 ? 0 : 2), flat || inner.length > 1),
            );
            return `<< ${parts.join(', ')} >>${indicator(item.info, item.value.length)}`;
          } finally {
            this.embedding--;
          }
        }
        if (item.chunks !== undefined) return this.chunks(item.chunks);
        return `h'${toHex(item.value)}'${indicator(item.info, item.value.length)}`;
      case 'tag': {
        const head = `${item.tag}${indicator(item.info, item.tag)}(`;
        return `${head}${this.render(item.item, a?.content, level, column + head.length, flat)})`;
      }
      case 'array': {
        const open = `[${item.info === INDEFINITE ? '_ ' : indicatorPrefix(item.info, item.items.length)}`;
        const children = item.items.map(
          (x, i) => (lvl: number, col: number, f: boolean) => this.render(x, a?.item?.(i, x), lvl, col, f),
        );
        return this.container(open, ']', children, level, column, flat);
      }
      case 'map': {
        const open = `{${item.info === INDEFINITE ? '_ ' : indicatorPrefix(item.info, item.entries.length)}`;
        const children = item.entries.map(([k, v]) => (lvl: number, col: number, f: boolean) => {
          const which = a?.entry?.(k, v);
          const key = this.render(k, which?.key, lvl, col, true);
          return `${key}: ${this.render(v, which?.value, lvl, col + key.length + 2, f)}`;
        });
        return this.container(open, '}', children, level, column, flat);
      }
    }
  }

  private chunks(chunks: CborItem[]): string {
    return `(_ ${chunks.map((c) => this.body(c, undefined, 0, 0, true)).join(', ')})`;
  }

  private container(
    open: string,
    close: string,
    children: ((level: number, column: number, flat: boolean) => string)[],
    level: number,
    column: number,
    flat: boolean,
  ): string {
    if (children.length === 0) return (open.endsWith('_ ') ? open : open.trimEnd()) + close;
    const oneLine = open + children.map((c) => c(level + 1, 0, true)).join(', ') + close;
    if (flat || this.width === 0 || column + oneLine.length <= this.width) return oneLine;
    const pad = this.indent.repeat(level + 1);
    const lines = children.map((c) => pad + c(level + 1, pad.length, false));
    return `${open.trimEnd()}\n${lines.join(',\n')}\n${this.indent.repeat(level)}${close}`;
  }

  /** The items of a byte string parsed as a CBOR sequence, or why it is not CBOR. */
  private embeddedItems(item: CborItem & { kind: 'bytes' }): CborItem[] | string {
    let cached = this.embeddedCache.get(item);
    if (cached === undefined) {
      try {
        cached = parseSequence(item.value, { maxDepth: this.maxDepth });
      } catch (e) {
        cached = e instanceof CborError ? e.message : String(e);
      }
      this.embeddedCache.set(item, cached);
    }
    return cached;
  }
}

/** For arrays and maps the indicator follows the bracket: `[_1 1, 2]`. */
function indicatorPrefix(info: number, count: number): string {
  const ind = indicator(info, count);
  return ind === '' ? '' : `${ind} `;
}

function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}
