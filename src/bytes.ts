/** Small byte-string helpers used across the protocol code (no Node APIs: this runs in XS). */

const HEX = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]! >> 4]! + HEX[bytes[i]! & 15]!;
  return out;
}

/** Parses hex (either case, even length, no separators); throws RangeError on anything else. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new RangeError('hex string has an odd length');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexDigit(hex.charCodeAt(2 * i));
    const lo = hexDigit(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new RangeError(`not a hex digit at offset ${hi < 0 ? 2 * i : 2 * i + 1}`);
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Constant-time comparison for secrets of equal, public length. */
export function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Overwrites a secret in place (best effort in a garbage-collected runtime). */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}

/** A plain Uint8Array view of the same bytes (normalises Node Buffers and other subclasses). */
export function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A plain Uint8Array copy of the same bytes: a Node Buffer (e.g. from a database driver) becomes
 * one that compares equal to caller bytes and no longer shares the driver's memory. `plain` is
 * the same without the copy.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/**
 * Copies `src` into `dst` at `at`: a plain loop for a few dozen bytes (a kid, a reading), where
 * `set` costs more than the copy on V8; `set` above that.
 */
export function copyInto(dst: Uint8Array, src: Uint8Array, at: number): void {
  const n = src.length;
  if (n > 64) dst.set(src, at);
  else for (let j = 0; j < n; j++) dst[at + j] = src[j]!;
}

/** UTF-8 encode without TextEncoder (XS provides it only as an optional module). */
export function utf8Encode(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

/** Strict UTF-8 decode: throws RangeError on malformed input instead of substituting. */
export function utf8Decode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    let c: number;
    let n: number;
    if (b < 0x80) {
      c = b;
      n = 0;
    } else if (b >= 0xc2 && b <= 0xdf) {
      c = b & 0x1f;
      n = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      c = b & 0x0f;
      n = 2;
    } else if (b >= 0xf0 && b <= 0xf4) {
      c = b & 0x07;
      n = 3;
    } else throw new RangeError(`invalid UTF-8 lead byte at offset ${i}`);
    if (i + n >= bytes.length) throw new RangeError(`truncated UTF-8 sequence at offset ${i}`);
    for (let k = 1; k <= n; k++) {
      const t = bytes[i + k]!;
      if ((t & 0xc0) !== 0x80) throw new RangeError(`invalid UTF-8 continuation at offset ${i + k}`);
      c = (c << 6) | (t & 0x3f);
    }
    if ((n === 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (n === 3 && (c < 0x10000 || c > 0x10ffff))) {
      throw new RangeError(`invalid UTF-8 code point at offset ${i}`);
    }
    out += String.fromCodePoint(c);
    i += n + 1;
  }
  return out;
}
