/**
 * Minimal big-endian unsigned encodings used on the wire: the session kid (a counter ≥ 1,
 * 1–8 bytes) and the Partial IV (the sequence number ≥ 0, 1–4 bytes, 0 = h'00').
 * Receivers refuse non-minimal forms, so one number has exactly one encoding.
 */
import { CoseError } from '../cose/errors.js';
import { MAX_KID_BYTES, MAX_PARTIAL_IV_BYTES, MAX_SEQ } from './limits.js';

function minimalBytes(n: number): Uint8Array {
  const out: number[] = [];
  do {
    out.unshift(n % 256);
    n = Math.floor(n / 256);
  } while (n > 0);
  return Uint8Array.from(out);
}

function readMinimal(bytes: Uint8Array, maxBytes: number): number | undefined {
  if (bytes.length === 0 || bytes.length > maxBytes) return undefined;
  if (bytes.length > 1 && bytes[0] === 0) return undefined; // leading zero: not minimal
  let n = 0;
  for (const b of bytes) n = n * 256 + b;
  return n;
}

/** Encodes a session kid counter value (1 … 2^64 − 1; a number must be a safe integer). */
export function encodeKid(counter: number | bigint): Uint8Array {
  const n = typeof counter === 'bigint' ? counter : Number.isSafeInteger(counter) ? BigInt(counter) : -1n;
  if (n < 1n || n >= 1n << 64n)
    throw new RangeError(`session kid counter must be an integer in 1 … 2^64 − 1, got ${counter}`);
  const out: number[] = [];
  for (let v = n; v > 0n; v >>= 8n) out.unshift(Number(v & 0xffn));
  return Uint8Array.from(out);
}

/** Decodes a session kid; `bad-kid` unless it is a minimal 1–8 byte encoding of a counter ≥ 1. */
export function decodeKid(kid: Uint8Array): bigint {
  if (kid.length === 0 || kid.length > MAX_KID_BYTES || kid[0] === 0) {
    throw new CoseError('bad-kid', `session kid of ${kid.length} bytes is not a minimal counter value ≥ 1`);
  }
  let n = 0n;
  for (const b of kid) n = (n << 8n) | BigInt(b);
  return n;
}

/**
 * Orders two valid session kids by the counter values they encode (negative, zero, positive).
 * For minimal encodings that is: shorter first, then bytewise.
 */
export function compareKids(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** Encodes a sequence number (0 … 2^32 − 1) as the Partial IV. */
export function encodePartialIv(seq: number): Uint8Array {
  if (!Number.isInteger(seq) || seq < 0) throw new RangeError(`sequence number must be an integer ≥ 0, got ${seq}`);
  if (seq > MAX_SEQ)
    throw new CoseError('seq-exhausted', `sequence number ${seq} is past the per-key limit ${MAX_SEQ}`);
  return minimalBytes(seq);
}

/** Decodes a Partial IV; `bad-partial-iv` unless minimal and at most 4 bytes. */
export function decodePartialIv(piv: Uint8Array): number {
  const n = readMinimal(piv, MAX_PARTIAL_IV_BYTES);
  if (n === undefined)
    throw new CoseError('bad-partial-iv', `Partial IV of ${piv.length} bytes is not a minimal 1–4 byte number`);
  return n;
}
