/**
 * Every refusal in the protocol code is a `CoseError` with a stable reason code: callers
 * count, log and test by `reason`, never by message text. Nothing here carries key material.
 */
export type CoseReason =
  /** Not well-formed or not strict CBOR (indefinite length, duplicate key, trailing bytes, …). */
  | 'bad-cbor'
  /** Well-formed CBOR but not the COSE structure expected (wrong types, counts, lengths). */
  | 'bad-structure'
  /** Missing, wrong or unexpected CBOR tag on the message. */
  | 'bad-tag'
  /** An algorithm this profile does not use for that layer (including alg substitution). */
  | 'unsupported-alg'
  /** A header the profile requires is absent. */
  | 'missing-header'
  /** A header label the profile does not define appears in a protected bucket. */
  | 'unknown-header'
  /** The message marks a header critical (label 2); the profile never does. */
  | 'crit-not-supported'
  | 'bad-signature'
  /** AES-GCM authentication failed: wrong key, wrong nonce, or tampered data. */
  | 'decrypt-failed'
  /** AES key unwrap integrity check failed: wrong recipient key or tampered wrapped key. */
  | 'unwrap-failed'
  /** A key is malformed: a point not on P-256, a wrong-size symmetric key, a bad COSE_Key. */
  | 'bad-key'
  /** The Partial IV (sequence number) is not a minimal 1–4 byte unsigned integer. */
  | 'bad-partial-iv'
  /** The session kid is not a minimal 1–8 byte encoding of a counter value ≥ 1. */
  | 'bad-kid'
  /** Two kids that must be equal differ (COSE_Key kid vs protected kid, message vs session). */
  | 'kid-mismatch'
  /** The message is larger than the configured limit; nothing was parsed. */
  | 'too-large'
  /** The recipient names a cloud key id this receiver does not hold. */
  | 'unknown-recipient'
  /** The device certificate is malformed, untrusted, expired, revoked or not for this use. */
  | 'bad-certificate'
  /** The certificate's device id differs from the device id of the topic. */
  | 'device-mismatch'
  /** The sequence number is past the profile's limit for one session key. */
  | 'seq-exhausted';

export class CoseError extends Error {
  // A field (defined), not `this.name = …` (assigned): XS freezes Error.prototype, where an
  // assignment to the inherited read-only `name` throws "set name: not writable".
  override name = 'CoseError';
  readonly reason: CoseReason;
  constructor(reason: CoseReason, message: string) {
    super(`${reason}: ${message}`);
    this.reason = reason;
  }
}

export function isCoseError(e: unknown): e is CoseError {
  return e instanceof CoseError;
}
