/** The fixed numbers of cose-flow/1. */

/** Default MQTT topic prefix: topics are `{prefix}/{deviceId}/{session|data|control|enroll…}`. */
export const DEFAULT_PREFIX = 'cose-flow/v1';

/** Messages larger than this (64 KiB) are refused before any parsing (configurable per receiver). */
export { DEFAULT_MAX_MESSAGE_BYTES } from '../cose/message.js';

/**
 * Sequence numbers run 0 … 2^32 − 1 under one session key (RFC 9053 §4.1 limits one AES-GCM key
 * to 2^32 messages with 96-bit nonces); a device re-keys before it would need 2^32.
 */
export const MAX_SEQ = 0xffffffff;
/** The Partial IV is the sequence number in at most 4 bytes. */
export const MAX_PARTIAL_IV_BYTES = 4;

/** A session kid is a counter of at most 8 bytes (this implementation counts up to 2^53 − 1). */
export const MAX_KID_BYTES = 8;

export const SESSION_KEY_BYTES = 16;
export const BASE_IV_BYTES = 12;
/** Cloud key id: the first 8 bytes of SHA-256 over the cloud public key (65-byte point). */
export const CLOUD_KID_BYTES = 8;
