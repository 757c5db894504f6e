/**
 * The receiver's fast reader of a key message (cloud side; the device only makes them): one pass
 * over the bytes that recognises exactly the shape `makeKeyMessage` produces (docs/PROTOCOL.md
 * §4.3, core deterministic encoding, shortest heads)
 *
 *   D2 84 bstr[A3 01 26 03 18 60 18 21 bstr(certificate)] A0
 *         bstr[D8 60 84 bstr[A2 01 01 04 bstr(kid)] A1 05 4C IV(12) bstr(ciphertext)
 *                   81 83 44 A101381C A2 04 48 cloud-kid(8) 20 A4 01 02 20 01 21 58 20 x 22 58 20 y
 *                      58 18 wrapped(24)]
 *         58 40 signature(64)
 *
 * and builds the same COSE_Sign1 and COSE_Encrypt the general decoder would (byte strings are
 * views into `bytes`). It never refuses: any other shape returns `undefined` and
 * `openKeyMessage` decodes with the general strict decoder, which decides the refusal. Every
 * profile check (kid rules, certificate, signature, alg values, sizes) still runs in
 * `openKeyMessage` on what this returns, in the order of §4.4: a message this reader accepts is one
 * the general decoder accepts with the same structures, so no step can change its outcome.
 * test/profile/key-fast-path.test.ts compares both on mutated messages.
 */
import type { Encrypt } from '../cose/encrypt.js';
import type { Sign1 } from '../cose/sign1.js';

export interface KeyMessageParts {
  sign1: Sign1 & { payload: Uint8Array };
  encrypt: Encrypt;
}

/** [start, length] of a byte string with its shortest head at `at`, or undefined. */
function bstrAt(b: Uint8Array, at: number, end: number): [number, number] | undefined {
  if (at >= end) return undefined;
  const head = b[at]!;
  let start: number;
  let len: number;
  if (head >= 0x40 && head <= 0x57) {
    start = at + 1;
    len = head - 0x40;
  } else if (head === 0x58) {
    if (at + 2 > end) return undefined;
    len = b[at + 1]!;
    if (len < 24) return undefined;
    start = at + 2;
  } else if (head === 0x59) {
    if (at + 3 > end) return undefined;
    len = (b[at + 1]! << 8) | b[at + 2]!;
    if (len < 256) return undefined;
    start = at + 3;
  } else return undefined; // key messages are far below 64 KiB
  if (start + len > end) return undefined;
  return [start, len];
}

/** Whether `b[at..]` holds exactly `expected`. */
function fixed(b: Uint8Array, at: number, expected: readonly number[]): boolean {
  if (at + expected.length > b.length) return false;
  for (let i = 0; i < expected.length; i++) if (b[at + i] !== expected[i]) return false;
  return true;
}

const SIGN1_PROTECTED_HEAD = [0xa3, 0x01, 0x26, 0x03, 0x18, 0x60, 0x18, 0x21];
const ENCRYPT_PROTECTED_HEAD = [0xa2, 0x01, 0x01, 0x04];
const IV_HEAD = [0xa1, 0x05, 0x4c];
const RECIPIENT_HEAD = [0x81, 0x83, 0x44, 0xa1, 0x01, 0x38, 0x1c, 0xa2, 0x04, 0x48];
const EPK_HEAD = [0x20, 0xa4, 0x01, 0x02, 0x20, 0x01, 0x21, 0x58, 0x20];
const EPK_Y_HEAD = [0x22, 0x58, 0x20];
const WRAPPED_HEAD = [0x58, 0x18];
const SIGNATURE_HEAD = [0x58, 0x40];

/** Reads a key message of the canonical shape, or returns undefined (then the general decoder decides). */
export function readCanonicalKeyMessage(bytes: Uint8Array, maxBytes: number): KeyMessageParts | undefined {
  const n = bytes.length;
  if (n > maxBytes || n < 4 || bytes[0] !== 0xd2 || bytes[1] !== 0x84) return undefined;
  const view = (start: number, len: number) => new Uint8Array(bytes.buffer, bytes.byteOffset + start, len);

  // COSE_Sign1 protected {1: -7, 3: 96, 33: certificate}
  const prot = bstrAt(bytes, 2, n);
  if (prot === undefined) return undefined;
  const [protAt, protLen] = prot;
  const protEnd = protAt + protLen;
  if (!fixed(bytes, protAt, SIGN1_PROTECTED_HEAD)) return undefined;
  const cert = bstrAt(bytes, protAt + SIGN1_PROTECTED_HEAD.length, protEnd);
  if (cert === undefined || cert[0] + cert[1] !== protEnd) return undefined;
  if (bytes[protEnd] !== 0xa0) return undefined; // unprotected {}
  const payload = bstrAt(bytes, protEnd + 1, n);
  if (payload === undefined) return undefined;
  const [payAt, payLen] = payload;
  const payEnd = payAt + payLen;
  if (!fixed(bytes, payEnd, SIGNATURE_HEAD) || payEnd + 2 + 64 !== n) return undefined;

  // The payload: COSE_Encrypt 96([protected {1: 1, 4: kid}, {5: IV}, ciphertext, [recipient]])
  if (!fixed(bytes, payAt, [0xd8, 0x60, 0x84])) return undefined;
  const encProt = bstrAt(bytes, payAt + 3, payEnd);
  if (encProt === undefined || !fixed(bytes, encProt[0], ENCRYPT_PROTECTED_HEAD)) return undefined;
  const kid = bstrAt(bytes, encProt[0] + ENCRYPT_PROTECTED_HEAD.length, payEnd);
  if (kid === undefined || kid[0] + kid[1] !== encProt[0] + encProt[1]) return undefined;
  let at = encProt[0] + encProt[1];
  if (!fixed(bytes, at, IV_HEAD)) return undefined;
  const ivAt = at + IV_HEAD.length;
  const ct = bstrAt(bytes, ivAt + 12, payEnd);
  if (ct === undefined) return undefined;
  at = ct[0] + ct[1];
  // [[h'A101381C', {4: cloud kid, -1: {1: 2, -1: 1, -2: x, -3: y}}, wrapped]]
  if (!fixed(bytes, at, RECIPIENT_HEAD)) return undefined;
  const recipientProtAt = at + 3;
  const cloudKidAt = at + RECIPIENT_HEAD.length;
  at = cloudKidAt + 8;
  if (!fixed(bytes, at, EPK_HEAD)) return undefined;
  const xAt = at + EPK_HEAD.length;
  if (!fixed(bytes, xAt + 32, EPK_Y_HEAD)) return undefined;
  const yAt = xAt + 32 + EPK_Y_HEAD.length;
  if (!fixed(bytes, yAt + 32, WRAPPED_HEAD)) return undefined;
  const wrappedAt = yAt + 32 + WRAPPED_HEAD.length;
  if (wrappedAt + 24 !== payEnd) return undefined;

  const certificate = view(cert[0], cert[1]);
  const kidBytes = view(kid[0], kid[1]);
  const sign1 = {
    protectedBytes: view(protAt, protLen),
    protected: new Map<number, unknown>([
      [1, -7],
      [3, 96],
      [33, certificate],
    ]),
    unprotected: new Map(),
    payload: view(payAt, payLen),
    signature: view(payEnd + 2, 64),
  };
  const encrypt: Encrypt = {
    protectedBytes: view(encProt[0], encProt[1]),
    protected: new Map<number, unknown>([
      [1, 1],
      [4, kidBytes],
    ]),
    unprotected: new Map<number, unknown>([[5, view(ivAt, 12)]]),
    ciphertext: view(ct[0], ct[1]),
    recipients: [
      {
        protectedBytes: view(recipientProtAt, 4),
        protected: new Map<number, unknown>([[1, -29]]),
        unprotected: new Map<number, unknown>([
          [4, view(cloudKidAt, 8)],
          [
            -1,
            new Map<number, unknown>([
              [1, 2],
              [-1, 1],
              [-2, view(xAt, 32)],
              [-3, view(yAt, 32)],
            ]),
          ],
        ]),
        ciphertext: view(wrappedAt, 24),
      },
    ],
  };
  return { sign1, encrypt };
}

/**
 * Reads the session COSE_Key (the decrypted content) of the canonical shape
 * `A5 01 04 02 bstr(kid) 03 01 05 4C baseIv(12) 20 50 k(16)` = {1: 4, 2: kid, 3: 1, 5: Base IV, -1: k},
 * or returns undefined (then `decodeSymmetricKey` decides). Returns copies: the caller wipes the
 * plaintext.
 */
export function readCanonicalSessionKey(
  plaintext: Uint8Array,
): { kid: Uint8Array; alg: number; baseIv: Uint8Array; k: Uint8Array } | undefined {
  if (!fixed(plaintext, 0, [0xa5, 0x01, 0x04, 0x02])) return undefined;
  const kidLen = plaintext[4]! - 0x40;
  if (kidLen < 0 || kidLen > 23) return undefined;
  const at = 5 + kidLen;
  if (!fixed(plaintext, at, [0x03, 0x01, 0x05, 0x4c])) return undefined;
  const ivAt = at + 4;
  if (!fixed(plaintext, ivAt + 12, [0x20, 0x50]) || ivAt + 14 + 16 !== plaintext.length) return undefined;
  return {
    kid: plaintext.slice(5, 5 + kidLen),
    alg: 1,
    baseIv: plaintext.slice(ivAt, ivAt + 12),
    k: plaintext.slice(ivAt + 14, ivAt + 30),
  };
}
