/**
 * The data message (device → cloud, `{prefix}/{deviceId}/data`, QoS 0 or 1):
 *
 *   COSE_Encrypt0 (tag 16) protected {1: 1, 4: session kid, 6: Partial IV = sequence number},
 *   unprotected {}, ciphertext = A128GCM(session key, Base IV ⊕ Partial IV, payload), external AAD empty.
 *
 * Receiving has a fast path (docs/CLOUD.md, "Data path"): `parseDataMessage` first tries
 * `readCanonicalDataMessage` (./data-message-fast.ts), one pass over the shape every sender
 * produces, views only; anything else goes through the general strict decoder, which alone
 * refuses, with the reasons and order of docs/PROTOCOL.md §4.6. `openData` builds the nonce and the
 * Enc_structure straight from the views (the protected bytes as received), with the same checks
 * in the same order as `decryptEncrypt0`. The device never opens data: these functions are
 * tree-shaken out of its bundle.
 */
import { equal } from '../bytes.js';
import {
  decodeEncrypt0,
  type Encrypt0,
  encStructure,
  gcmOpen,
  makeEncrypt0,
  nonceFromPartialIv,
} from '../cose/encrypt0.js';
import { CoseError } from '../cose/errors.js';
import { Alg, bstr, Header, refuseCrit, requireAlg, requireLabels } from '../cose/headers.js';
import { type CryptoProvider, GCM_IV_BYTES } from '../crypto/provider.js';
import { decodeKid, decodePartialIv, encodePartialIv } from './counter.js';
import { type DataMessageParts, readCanonicalDataMessage } from './data-message-fast.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './limits.js';
import type { SessionKey } from './session.js';

/** Seals `payload` (already-encoded application bytes, CBOR by convention) as message `seq` of `session`. */
export function sealData(crypto: CryptoProvider, session: SessionKey, seq: number, payload: Uint8Array): Uint8Array {
  const partialIv = encodePartialIv(seq);
  return makeEncrypt0(crypto, {
    protected: new Map<number, unknown>([
      [Header.alg, Alg.A128GCM],
      [Header.kid, session.kid],
      [Header.partialIv, partialIv],
    ]),
    plaintext: payload,
    key: session.key,
    nonce: nonceFromPartialIv(session.baseIv, partialIv),
  });
}

/** A data message whose structure has been checked but not yet decrypted. */
export interface ParsedDataMessage {
  /** The session kid (validated: a minimal 1–8 byte counter value). */
  kid: Uint8Array;
  seq: number;
  /** The protected bucket exactly as received: the Enc_structure is built over these bytes. */
  readonly protectedBytes: Uint8Array;
  ciphertext: Uint8Array;
  /** The decoded COSE_Encrypt0 (built on first use when the fast path parsed the message). */
  readonly message: Encrypt0;
}

/**
 * Strictly parses a data message (no key needed): receivers look the session up by `kid`.
 * The canonical shape takes the fast path; everything else, including every refusal, the general one.
 */
export function parseDataMessage(bytes: Uint8Array, maxBytes: number = DEFAULT_MAX_MESSAGE_BYTES): ParsedDataMessage {
  const parts = readCanonicalDataMessage(bytes, maxBytes);
  return parts === undefined ? parseDataMessageGeneral(bytes, maxBytes) : new FastParsed(bytes, parts);
}

/** `83 68 "Encrypt0"`: the Enc_structure's first bytes (docs/PROTOCOL.md §4.2). */
const ENC0_HEAD = [0x83, 0x68, 0x45, 0x6e, 0x63, 0x72, 0x79, 0x70, 0x74, 0x30];

/**
 * A data message the fast path read: the protected bytes view and the COSE_Encrypt0 are only
 * built when someone asks for them; `openData` writes the Enc_structure straight from the message.
 */
class FastParsed implements ParsedDataMessage {
  readonly kid: Uint8Array;
  readonly seq: number;
  readonly ciphertext: Uint8Array;
  readonly #bytes: Uint8Array;
  readonly #protectedAt: number;
  readonly #protectedLength: number;
  #message: Encrypt0 | undefined;

  constructor(bytes: Uint8Array, parts: DataMessageParts) {
    this.kid = parts.kid;
    this.seq = parts.seq;
    this.ciphertext = parts.ciphertext;
    this.#bytes = bytes;
    this.#protectedAt = parts.protectedAt;
    this.#protectedLength = parts.protectedLength;
  }

  get protectedBytes(): Uint8Array {
    const b = this.#bytes;
    return new Uint8Array(b.buffer, b.byteOffset + this.#protectedAt, this.#protectedLength);
  }

  /** ["Encrypt0", protected as received, h'']: the canonical bucket is < 24 bytes (one-byte bstr head). */
  encStructure(): Uint8Array {
    const b = this.#bytes;
    const n = this.#protectedLength;
    const aad = new Uint8Array(ENC0_HEAD.length + n + 2);
    for (let i = 0; i < ENC0_HEAD.length; i++) aad[i] = ENC0_HEAD[i]!;
    // the bucket's head byte (0x40 + n) precedes it in the message: copy both
    for (let i = 0, from = this.#protectedAt - 1, to = ENC0_HEAD.length; i <= n; i++) aad[to + i] = b[from + i]!;
    aad[aad.length - 1] = 0x40;
    return aad;
  }

  get message(): Encrypt0 {
    this.#message ??= {
      protectedBytes: this.protectedBytes,
      protected: new Map<number, unknown>([
        [Header.alg, Alg.A128GCM],
        [Header.kid, this.kid],
        [Header.partialIv, encodePartialIv(this.seq)],
      ]),
      unprotected: new Map(),
      ciphertext: this.ciphertext,
    };
    return this.#message;
  }
}

/**
 * The general path of `parseDataMessage`: the strict CBOR/COSE decoder and the profile's checks
 * in the order of docs/PROTOCOL.md §4.6. Exported for the differential test of the fast path.
 */
export function parseDataMessageGeneral(
  bytes: Uint8Array,
  maxBytes: number = DEFAULT_MAX_MESSAGE_BYTES,
): ParsedDataMessage {
  const message = decodeEncrypt0(bytes, { requireTag: true, maxBytes });
  refuseCrit(message.protected, message.unprotected);
  const labels = [Header.alg, Header.kid, Header.partialIv];
  requireLabels(message.protected, labels, labels, 'data message protected header');
  requireAlg(message.protected.get(Header.alg), Alg.A128GCM, 'data message');
  if (message.unprotected.has(Header.iv)) throw new CoseError('bad-structure', 'data message carries a full IV');
  const kid = bstr(message.protected.get(Header.kid), 'session kid');
  decodeKid(kid);
  const seq = decodePartialIv(bstr(message.protected.get(Header.partialIv), 'Partial IV'));
  return { kid, seq, protectedBytes: message.protectedBytes, ciphertext: message.ciphertext, message };
}

/**
 * Decrypts a parsed data message with its session key. `kid-mismatch` when the kids differ; then,
 * as `decryptEncrypt0` would: `bad-key` for a Base IV or key of the wrong size, `decrypt-failed`
 * for a ciphertext shorter than the tag or one that does not authenticate.
 */
export function openData(crypto: CryptoProvider, parsed: ParsedDataMessage, session: SessionKey): Uint8Array {
  if (!equal(parsed.kid, session.kid)) throw new CoseError('kid-mismatch', 'the message kid is not this session');
  const { baseIv, key } = session;
  if (baseIv.length !== GCM_IV_BYTES) throw new CoseError('bad-key', `Base IV is ${baseIv.length} bytes, expected 12`);
  // nonce = Base IV ⊕ Partial IV left-padded to 12 bytes (RFC 9052 §3.1); the Partial IV is the
  // minimal big-endian seq (checked by the parser), so padded it is seq in the last 4 bytes
  const seq = parsed.seq;
  const nonce = new Uint8Array(GCM_IV_BYTES);
  nonce.set(baseIv);
  nonce[8]! ^= seq >>> 24;
  nonce[9]! ^= (seq >>> 16) & 0xff;
  nonce[10]! ^= (seq >>> 8) & 0xff;
  nonce[11]! ^= seq & 0xff;
  // Enc_structure ["Encrypt0", protected as received, h''], written directly
  const aad =
    parsed instanceof FastParsed ? parsed.encStructure() : encStructure('Encrypt0', parsed.protectedBytes, EMPTY);
  return gcmOpen(crypto, key, nonce, parsed.ciphertext, aad);
}

const EMPTY = new Uint8Array(0);
