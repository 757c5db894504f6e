/**
 * The receiver's fast path for a data message (cloud side; the device only seals): one pass over
 * the bytes that recognises exactly the shape every sender produces (docs/PROTOCOL.md §4.5, core
 * deterministic encoding, shortest heads)
 *
 *   D0 83 (40+n) [A3 01 01 04 (40+k) kid 06 (40+p) piv] A0 (ciphertext bstr head) ciphertext
 *
 * with a minimal 1–8 byte kid ≥ 1, a minimal 1–4 byte Partial IV and nothing after the
 * ciphertext. It never refuses: anything else — another head length, another key order, a
 * non-empty unprotected map, a bad kid, too large — returns `undefined`, and the caller runs the
 * general strict decoder (src/cbor + src/cose), which decides the refusal and its reason. So the
 * fast path can only accept what the general path accepts (test/profile/data-fast-path.test.ts
 * checks both paths agree on thousands of random and mutated messages).
 *
 * Everything it returns is a view into `bytes` (no copies): the kid and the ciphertext; the
 * protected bucket as an offset and length (the caller writes the Enc_structure from them).
 */

/** The parts of an accepted data message, each a view into the message bytes. */
export interface DataMessageParts {
  kid: Uint8Array;
  seq: number;
  /** Where the protected bucket (exactly as received: the Enc_structure covers it) lies in the message. */
  protectedAt: number;
  protectedLength: number;
  ciphertext: Uint8Array;
}

/**
 * Reads a data message of the canonical shape, or returns undefined (then only the general
 * parser may decide). `maxBytes` is checked first, as the general path does.
 */
export function readCanonicalDataMessage(bytes: Uint8Array, maxBytes: number): DataMessageParts | undefined {
  const n = bytes.length;
  // Shortest canonical message: D0 83 4A A3 01 01 04 41 kid 06 41 piv A0 40 = 15 bytes.
  if (n > maxBytes || n < 15) return undefined;
  if (bytes[0] !== 0xd0 || bytes[1] !== 0x83) return undefined;
  const protLen = bytes[2]! - 0x40; // one-byte bstr head: 0..23 bytes (canonical buckets are 8–19)
  if (protLen < 8 || protLen > 19) return undefined;
  // Protected map {1: 1, 4: kid, 6: piv} in deterministic order.
  if (bytes[3] !== 0xa3 || bytes[4] !== 0x01 || bytes[5] !== 0x01 || bytes[6] !== 0x04) return undefined;
  const kidLen = bytes[7]! - 0x40;
  if (kidLen < 1 || kidLen > 8 || bytes[8] === 0) return undefined; // empty, long or leading zero: general path
  let at = 8 + kidLen;
  if (bytes[at] !== 0x06) return undefined;
  const pivLen = bytes[at + 1]! - 0x40;
  if (pivLen < 1 || pivLen > 4) return undefined;
  const pivAt = at + 2;
  if (pivLen > 1 && bytes[pivAt] === 0) return undefined; // not minimal
  at = pivAt + pivLen;
  if (at !== 3 + protLen) return undefined; // the map must fill the bucket exactly
  if (bytes[at] !== 0xa0) return undefined; // unprotected {}
  at++;
  if (at >= n) return undefined;
  const head = bytes[at]!;
  let ctLen: number;
  if (head >= 0x40 && head <= 0x57) {
    ctLen = head - 0x40;
    at += 1;
  } else if (head === 0x58) {
    if (at + 2 > n) return undefined;
    ctLen = bytes[at + 1]!;
    if (ctLen < 24) return undefined;
    at += 2;
  } else if (head === 0x59) {
    if (at + 3 > n) return undefined;
    ctLen = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    if (ctLen < 256) return undefined;
    at += 3;
  } else if (head === 0x5a) {
    if (at + 5 > n) return undefined;
    ctLen = bytes[at + 1]! * 0x1000000 + ((bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!);
    if (ctLen < 65536) return undefined;
    at += 5;
  } else return undefined;
  if (at + ctLen !== n) return undefined; // truncated, or trailing bytes
  let seq = 0;
  for (let i = 0; i < pivLen; i++) seq = seq * 256 + bytes[pivAt + i]!;
  const buffer = bytes.buffer;
  const base = bytes.byteOffset;
  return {
    kid: new Uint8Array(buffer, base + 8, kidLen),
    seq,
    protectedAt: 3,
    protectedLength: protLen,
    ciphertext: new Uint8Array(buffer, base + at, ctLen),
  };
}
