/**
 * Enrollment messages: how a device without a certificate gets one over MQTT.
 *
 * Request (device → `{prefix}/{deviceId}/enroll`, QoS 1):
 *   payload = {1: CSR (PKCS#10 DER, CN = device id, signed by the device key), 2: request id (8–16 bytes)}
 *   - with an enrollment credential: COSE_Mac0 (tag 17) protected {1: 5 (HMAC 256/256), 4: batch id},
 *     unprotected {}, payload, external AAD = the device id (UTF-8); the MAC key is
 *     `enrollmentKey(batch secret, device id)`, so a device holds only its own key;
 *   - without (allow-list enrollment): the payload map itself.
 * Result (enrollment service → `{prefix}/{deviceId}/enroll/result`, QoS 1):
 *   {1: "issued" / "refused", 2: request id, 3: device certificate, 4: CA certificate,
 *    5: [cloud certificate, …], 6: reason text}. The device trusts nothing in it that does not
 *   verify against the CA it was provisioned with.
 */
import { utf8Decode, utf8Encode } from '../bytes.js';
import { CborError, decode, encode } from '../cbor/index.js';
import { CoseError } from '../cose/errors.js';
import { Alg, bstr, Header, refuseCrit, requireAlg, requireLabels } from '../cose/headers.js';
import { decodeMac0, type Mac0, makeMac0, verifyMac0 } from '../cose/mac0.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { checkDeviceId } from './topics.js';

/**
 * The stable codes a refused enrollment result starts its reason with ("key-conflict: …"). Each
 * is final for the device: asking again changes nothing until an operator acts.
 */
export type EnrollRefusalCode =
  /** The device id is not on the allow-list and the request carries no credential. */
  | 'not-allowed'
  /** The enrollment credential is malformed, names an unknown batch, or its MAC does not verify. */
  | 'bad-credential'
  /** The CSR is malformed, its self-signature (proof of possession) does not verify, or its subject or key is not of this profile. */
  | 'bad-csr'
  /** The device id is enrolled with another key; an operator must allow a re-key. */
  | 'key-conflict'
  /** The CSR's device id (CN) differs from the device id of the topic. */
  | 'device-mismatch'
  /** The device's certificate for this key has been revoked. */
  | 'revoked';

export const ENROLL_REFUSAL_CODES: readonly EnrollRefusalCode[] = [
  'not-allowed',
  'bad-credential',
  'bad-csr',
  'key-conflict',
  'device-mismatch',
  'revoked',
];

export const ENROLL_MAX_BYTES = 16 * 1024;
const REQUEST_ID_MIN = 8;
const REQUEST_ID_MAX = 16;

/** The per-device enrollment MAC key: HMAC-SHA-256(batch secret, "cose-flow/1 enroll " ‖ device id). */
export function enrollmentKey(crypto: CryptoProvider, batchSecret: Uint8Array, deviceId: string): Uint8Array {
  if (batchSecret.length < 16) throw new RangeError('an enrollment batch secret must be at least 16 bytes');
  return crypto.hmacSha256(batchSecret, utf8Encode(`cose-flow/1 enroll ${checkDeviceId(deviceId)}`));
}

export interface EnrollCredential {
  batchId: string;
  /** `enrollmentKey(batch secret, device id)`, provisioned into the device. */
  key: Uint8Array;
}

export interface MakeEnrollRequest {
  deviceId: string;
  csr: Uint8Array;
  requestId: Uint8Array;
  credential?: EnrollCredential;
}

export function makeEnrollRequest(crypto: CryptoProvider, input: MakeEnrollRequest): Uint8Array {
  if (input.requestId.length < REQUEST_ID_MIN || input.requestId.length > REQUEST_ID_MAX) {
    throw new RangeError(`request id must be ${REQUEST_ID_MIN}–${REQUEST_ID_MAX} bytes`);
  }
  const payload = encode(
    new Map<number, unknown>([
      [1, input.csr],
      [2, input.requestId],
    ]),
  );
  if (input.credential === undefined) return payload;
  return makeMac0(crypto, input.credential.key, {
    protected: new Map<number, unknown>([
      [Header.alg, Alg.HMAC256],
      [Header.kid, utf8Encode(input.credential.batchId)],
    ]),
    payload,
    externalAad: utf8Encode(checkDeviceId(input.deviceId)),
  });
}

export interface EnrollRequest {
  csr: Uint8Array;
  requestId: Uint8Array;
  /** Present when the request carries a credential; check it with `verifyEnrollRequest`. */
  batchId?: string;
  mac?: Mac0;
}

/** Parses a request (no keys needed); `bad-structure`/`bad-cbor`/… on anything malformed. */
export function parseEnrollRequest(bytes: Uint8Array): EnrollRequest {
  if (bytes.length > ENROLL_MAX_BYTES) throw new CoseError('too-large', `enroll request of ${bytes.length} bytes`);
  let mac: Mac0 | undefined;
  let payload = bytes;
  let batchId: string | undefined;
  if (bytes.length > 0 && bytes[0] === 0xd1) {
    mac = decodeMac0(bytes, { maxBytes: ENROLL_MAX_BYTES });
    refuseCrit(mac.protected, mac.unprotected);
    requireLabels(mac.protected, [Header.alg, Header.kid], [Header.alg, Header.kid], 'enroll request protected header');
    requireAlg(mac.protected.get(Header.alg), Alg.HMAC256, 'enroll request');
    try {
      batchId = utf8Decode(bstr(mac.protected.get(Header.kid), 'batch id'));
    } catch (e) {
      if (e instanceof CoseError) throw e;
      throw new CoseError('bad-structure', 'batch id is not UTF-8');
    }
    payload = mac.payload;
  }
  let map: unknown;
  try {
    map = decode(payload, { maxDepth: 2 });
  } catch (e) {
    if (e instanceof CborError) throw new CoseError('bad-cbor', `enroll request: ${e.message}`);
    throw e;
  }
  if (!(map instanceof Map)) throw new CoseError('bad-structure', 'enroll request is not a map');
  const csr = bstr(map.get(1), 'CSR');
  const requestId = bstr(map.get(2), 'request id');
  if (requestId.length < REQUEST_ID_MIN || requestId.length > REQUEST_ID_MAX) {
    throw new CoseError('bad-structure', `request id of ${requestId.length} bytes`);
  }
  return { csr, requestId, ...(mac === undefined ? {} : { mac, batchId: batchId! }) };
}

/** Verifies a credentialed request's MAC for `deviceId`; `bad-signature` when it does not match. */
export function verifyEnrollRequest(
  crypto: CryptoProvider,
  request: EnrollRequest,
  key: Uint8Array,
  deviceId: string,
): void {
  if (request.mac === undefined) throw new CoseError('missing-header', 'the enroll request carries no credential');
  verifyMac0(crypto, request.mac, key, utf8Encode(deviceId));
}

export interface EnrollResult {
  status: 'issued' | 'refused';
  requestId: Uint8Array;
  deviceCertificate?: Uint8Array;
  caCertificate?: Uint8Array;
  cloudCertificates?: Uint8Array[];
  /** Why it was refused (human-readable; a stable code first, e.g. "key-conflict: …"). */
  reason?: string;
}

export function makeEnrollResult(result: EnrollResult): Uint8Array {
  const map = new Map<number, unknown>([
    [1, result.status],
    [2, result.requestId],
  ]);
  if (result.deviceCertificate) map.set(3, result.deviceCertificate);
  if (result.caCertificate) map.set(4, result.caCertificate);
  if (result.cloudCertificates) map.set(5, result.cloudCertificates);
  if (result.reason !== undefined) map.set(6, result.reason);
  return encode(map);
}

export function parseEnrollResult(bytes: Uint8Array): EnrollResult {
  if (bytes.length > ENROLL_MAX_BYTES) throw new CoseError('too-large', `enroll result of ${bytes.length} bytes`);
  let map: unknown;
  try {
    map = decode(bytes, { maxDepth: 3 });
  } catch (e) {
    if (e instanceof CborError) throw new CoseError('bad-cbor', `enroll result: ${e.message}`);
    throw e;
  }
  if (!(map instanceof Map)) throw new CoseError('bad-structure', 'enroll result is not a map');
  const status = map.get(1);
  if (status !== 'issued' && status !== 'refused') throw new CoseError('bad-structure', 'enroll result status');
  const result: EnrollResult = { status, requestId: bstr(map.get(2), 'request id') };
  if (map.has(3)) result.deviceCertificate = bstr(map.get(3), 'device certificate');
  if (map.has(4)) result.caCertificate = bstr(map.get(4), 'CA certificate');
  if (map.has(5)) {
    const list = map.get(5);
    if (!Array.isArray(list)) throw new CoseError('bad-structure', 'cloud certificates is not an array');
    result.cloudCertificates = list.map((c) => bstr(c, 'cloud certificate'));
  }
  if (map.has(6)) {
    const reason = map.get(6);
    if (typeof reason !== 'string') throw new CoseError('bad-structure', 'reason is not text');
    result.reason = reason;
  }
  if (
    status === 'issued' &&
    (!result.deviceCertificate || !result.caCertificate || !result.cloudCertificates?.length)
  ) {
    throw new CoseError('bad-structure', 'an issued result lacks a certificate');
  }
  return result;
}
