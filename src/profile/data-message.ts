/**
 * The data message (device → cloud, `{prefix}/{deviceId}/data`, QoS 0 or 1):
 *
 *   COSE_Encrypt0 (tag 16) protected {1: 1, 4: session kid, 6: Partial IV = sequence number},
 *   unprotected {}, ciphertext = A128GCM(session key, Base IV ⊕ Partial IV, payload), external AAD empty.
 */
import { equal } from '../bytes.js';
import { decodeEncrypt0, decryptEncrypt0, type Encrypt0, makeEncrypt0, nonceFromPartialIv } from '../cose/encrypt0.js';
import { CoseError } from '../cose/errors.js';
import { Alg, bstr, Header, refuseCrit, requireAlg, requireLabels } from '../cose/headers.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { decodeKid, decodePartialIv, encodePartialIv } from './counter.js';
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
  message: Encrypt0;
}

/** Strictly parses a data message (no key needed): receivers look the session up by `kid`. */
export function parseDataMessage(bytes: Uint8Array, maxBytes: number = DEFAULT_MAX_MESSAGE_BYTES): ParsedDataMessage {
  const message = decodeEncrypt0(bytes, { requireTag: true, maxBytes });
  refuseCrit(message.protected, message.unprotected);
  const labels = [Header.alg, Header.kid, Header.partialIv];
  requireLabels(message.protected, labels, labels, 'data message protected header');
  requireAlg(message.protected.get(Header.alg), Alg.A128GCM, 'data message');
  if (message.unprotected.has(Header.iv)) throw new CoseError('bad-structure', 'data message carries a full IV');
  const kid = bstr(message.protected.get(Header.kid), 'session kid');
  decodeKid(kid);
  const seq = decodePartialIv(bstr(message.protected.get(Header.partialIv), 'Partial IV'));
  return { kid, seq, message };
}

/** Decrypts a parsed data message with its session key. `kid-mismatch` when the kids differ. */
export function openData(crypto: CryptoProvider, parsed: ParsedDataMessage, session: SessionKey): Uint8Array {
  if (!equal(parsed.kid, session.kid)) throw new CoseError('kid-mismatch', 'the message kid is not this session');
  return decryptEncrypt0(crypto, parsed.message, session.key, { baseIv: session.baseIv });
}
