/**
 * Control messages (cloud → device, `{prefix}/{deviceId}/control`, QoS 1):
 *
 *   COSE_Sign1 (tag 18) protected {1: -7 (ES256), 3: 60 (application/cbor)}, unprotected {},
 *   payload = {1: request ("rekey" / "cloud-certificate"), 2: the device's current session kid,
 *              3: issued-at (seconds since the epoch), ? 4: new cloud certificate (DER)},
 *   signature by the cloud private key over external AAD = the device id (UTF-8).
 *
 * The external AAD binds a request to one device: a request made for device A does not verify on
 * device B's topic. The kid binds it to one session: a device acts only on a request that names
 * its current kid, so a request recorded earlier and replayed later does nothing. `request` 4 is
 * present exactly when the request is "cloud-certificate". A receiver checks what costs no signature
 * check first (`peekControlMessage`), then the signature (`openControlMessage`); `receiveControlMessage`
 * is that whole sequence as a device runs it — peek, the receiver's own cheap checks, open, then the
 * announced cloud certificate checked against the CA. See docs/PROTOCOL.md §4.9.
 */
import { utf8Encode } from '../bytes.js';
import { CborError, decode, encode } from '../cbor/index.js';
import { CoseError } from '../cose/errors.js';
import { Alg, bstr, Header, refuseCrit, requireAlg, requireLabels } from '../cose/headers.js';
import { decodeSign1, makeSign1, verifySign1 } from '../cose/sign1.js';
import type { CryptoProvider, P256PrivateKey } from '../crypto/provider.js';
import { verifyCloudCertificate } from '../pki/certificate.js';
import { decodeKid } from './counter.js';
import { checkDeviceId } from './topics.js';

/** Control messages are small: a request and at most one certificate. */
export const CONTROL_MAX_BYTES = 8 * 1024;

/** COSE content type of the control payload: CoAP content format 60, application/cbor. */
export const CONTROL_CONTENT_TYPE = 60;

export type ControlRequest = 'rekey' | 'cloud-certificate';
export const CONTROL_REQUESTS: readonly ControlRequest[] = ['rekey', 'cloud-certificate'];

/** Payload labels. */
const Label = { request: 1, kid: 2, issuedAt: 3, cloudCertificate: 4 } as const;

export interface ControlMessage {
  request: ControlRequest;
  /** The session kid the request is for: the device's current kid when it was made. */
  kid: Uint8Array;
  /** When the cloud made the request, seconds since the epoch. */
  issuedAt: number;
  /** The new cloud certificate (DER): present exactly for "cloud-certificate". */
  cloudCertificate?: Uint8Array;
}

export interface MakeControlMessage extends ControlMessage {
  /** The device the request is for (its topic's device id): the external AAD. */
  deviceId: string;
}

/** Builds a control message signed with the cloud private key (the cloud service calls this). */
export function makeControlMessage(
  crypto: CryptoProvider,
  cloudKey: P256PrivateKey,
  input: MakeControlMessage,
): Uint8Array {
  const deviceId = checkDeviceId(input.deviceId);
  if (!CONTROL_REQUESTS.includes(input.request))
    throw new RangeError(`unknown control request ${String(input.request)}`);
  decodeKid(input.kid);
  if (!Number.isSafeInteger(input.issuedAt) || input.issuedAt < 0) {
    throw new RangeError(`issuedAt must be whole seconds ≥ 0, got ${input.issuedAt}`);
  }
  const certificate = input.cloudCertificate;
  if ((input.request === 'cloud-certificate') !== (certificate !== undefined)) {
    throw new RangeError('a cloud certificate goes with the "cloud-certificate" request, and only with it');
  }
  const payload = new Map<number, unknown>([
    [Label.request, input.request],
    [Label.kid, input.kid],
    [Label.issuedAt, input.issuedAt],
  ]);
  if (certificate !== undefined) payload.set(Label.cloudCertificate, certificate);
  return makeSign1(crypto, cloudKey, {
    protected: new Map<number, unknown>([
      [Header.alg, Alg.ES256],
      [Header.contentType, CONTROL_CONTENT_TYPE],
    ]),
    payload: encode(payload),
    externalAad: utf8Encode(deviceId),
  });
}

export interface OpenControlMessage {
  /**
   * The cloud public keys (65-byte points) a signature may verify under: the key of the cloud
   * certificate in use (and, during a rotation, the one announced next). The first that verifies wins.
   */
  cloudPublicKeys: readonly Uint8Array[];
  /** The device id of the topic the message arrived on: the external AAD. */
  deviceId: string;
  maxBytes?: number;
}

export interface OpenedControlMessage extends ControlMessage {
  /** Index into `cloudPublicKeys` of the key that verified the signature. */
  signedBy: number;
}

/**
 * Parses and verifies a control message: strict structure, headers, signature (under one of the
 * given cloud keys, with the device id as external AAD), payload. Throws `CoseError` with a reason
 * code (`bad-signature` when no key verifies it). Whether the kid is current is the caller's check.
 */
export function openControlMessage(
  crypto: CryptoProvider,
  bytes: Uint8Array,
  options: OpenControlMessage,
): OpenedControlMessage {
  const sign1 = parseControlSign1(bytes, options.maxBytes);
  const aad = utf8Encode(checkDeviceId(options.deviceId));
  let signedBy = -1;
  for (let i = 0; i < options.cloudPublicKeys.length && signedBy < 0; i++) {
    try {
      verifySign1(crypto, sign1, options.cloudPublicKeys[i]!, { externalAad: aad });
      signedBy = i;
    } catch (e) {
      if (!(e instanceof CoseError) || e.reason !== 'bad-signature') throw e;
    }
  }
  if (signedBy < 0) throw new CoseError('bad-signature', 'control message: no cloud key verifies the signature');
  return { ...readControlPayload(sign1.payload!), signedBy };
}

/** A refusal: the request as far as it could be read (`?` when not at all) and why. */
export interface ControlRefusal {
  request: string;
  reason: string;
  /** Details for the log line (e.g. the kid named and the current one). */
  fields?: Record<string, string>;
}

export interface ReceiveControlMessage extends OpenControlMessage {
  /** The CA certificate (DER) an announced cloud certificate must be issued by. */
  caCertificate: Uint8Array;
  /** Epoch milliseconds, or undefined when the time is unknown (validity not checked). */
  now: number | undefined;
  /**
   * The receiver's checks of the unverified message (its kid, rate limits, a budget for the
   * `signatureChecks` the open will cost), before any signature is checked: a refusal, or undefined.
   */
  admit?: (claimed: ControlMessage, signatureChecks: number) => ControlRefusal | undefined;
}

export type ReceivedControlMessage =
  | {
      ok: true;
      message: OpenedControlMessage;
      /** For "cloud-certificate": the announced certificate, issued by the CA for key agreement, and its key. */
      announced?: { certificate: Uint8Array; publicKey: Uint8Array };
    }
  | ({ ok: false } & ControlRefusal);

/**
 * A device's whole reading of one control message, cheapest check first: the structure
 * (`peekControlMessage`, no signature check), the receiver's `admit`, the signature
 * (`openControlMessage`), and for "cloud-certificate" the announced certificate against the CA
 * (`verifyCloudCertificate`). Never throws for a bad message: it says why in a refusal. Whether
 * an announced certificate is newer than the one in use is the receiver's decision.
 */
export function receiveControlMessage(
  crypto: CryptoProvider,
  bytes: Uint8Array,
  options: ReceiveControlMessage,
): ReceivedControlMessage {
  let claimed: ControlMessage;
  try {
    claimed = peekControlMessage(bytes, options.maxBytes); // unverified: only to refuse cheaply
  } catch (e) {
    return { ok: false, request: '?', reason: describe(e) };
  }
  const refusal = options.admit?.(claimed, options.cloudPublicKeys.length);
  if (refusal !== undefined) return { ok: false, ...refusal };
  let message: OpenedControlMessage;
  try {
    message = openControlMessage(crypto, bytes, options);
  } catch (e) {
    return { ok: false, request: claimed.request, reason: describe(e) };
  }
  if (message.cloudCertificate === undefined) return { ok: true, message };
  const certificate = message.cloudCertificate;
  try {
    const publicKey = verifyCloudCertificate(crypto, certificate, options.caCertificate, options.now);
    return { ok: true, message, announced: { certificate, publicKey } };
  } catch (e) {
    return { ok: false, request: message.request, reason: describe(e) };
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The structure and payload of a control message read WITHOUT checking the signature (size,
 * strict CBOR, headers, request, kid): what a device checks before it spends a signature check,
 * so that a message naming another kid, or not well formed, costs no ECDSA verification. Nothing
 * in it is to be believed: act only on what `openControlMessage` returns.
 */
export function peekControlMessage(bytes: Uint8Array, maxBytes?: number): ControlMessage {
  return readControlPayload(parseControlSign1(bytes, maxBytes).payload!);
}

function parseControlSign1(bytes: Uint8Array, maxBytes = CONTROL_MAX_BYTES) {
  const sign1 = decodeSign1(bytes, { requireTag: true, maxBytes });
  refuseCrit(sign1.protected, sign1.unprotected);
  const labels = [Header.alg, Header.contentType];
  requireLabels(sign1.protected, labels, labels, 'control message protected header');
  requireAlg(sign1.protected.get(Header.alg), Alg.ES256, 'control message');
  if (sign1.protected.get(Header.contentType) !== CONTROL_CONTENT_TYPE) {
    throw new CoseError(
      'bad-structure',
      `control message content type is not ${CONTROL_CONTENT_TYPE} (application/cbor)`,
    );
  }
  if (sign1.payload === null) throw new CoseError('bad-structure', 'control message has no payload');
  return sign1;
}

function readControlPayload(payload: Uint8Array): ControlMessage {
  let map: unknown;
  try {
    map = decode(payload, { maxDepth: 1 });
  } catch (e) {
    if (e instanceof CborError) throw new CoseError('bad-cbor', `control payload: ${e.message}`);
    throw e;
  }
  if (!(map instanceof Map)) throw new CoseError('bad-structure', 'control payload is not a map');
  for (const key of map.keys()) {
    if (key !== Label.request && key !== Label.kid && key !== Label.issuedAt && key !== Label.cloudCertificate) {
      throw new CoseError('bad-structure', `control payload has an unknown label ${String(key)}`);
    }
  }
  const request = map.get(Label.request);
  if (!CONTROL_REQUESTS.includes(request as ControlRequest)) {
    throw new CoseError('bad-structure', `control request ${JSON.stringify(String(request))} is not known`);
  }
  const kid = bstr(map.get(Label.kid), 'control kid');
  decodeKid(kid);
  const issuedAt = map.get(Label.issuedAt);
  if (typeof issuedAt !== 'number' || !Number.isSafeInteger(issuedAt) || issuedAt < 0) {
    throw new CoseError('bad-structure', 'control issued-at is not whole seconds ≥ 0');
  }
  const message: ControlMessage = { request: request as ControlRequest, kid: kid.slice(), issuedAt };
  if (map.has(Label.cloudCertificate)) {
    if (request !== 'cloud-certificate')
      throw new CoseError('bad-structure', 'a "rekey" request carries a certificate');
    message.cloudCertificate = bstr(map.get(Label.cloudCertificate), 'cloud certificate').slice();
  } else if (request === 'cloud-certificate') {
    throw new CoseError('missing-header', 'a "cloud-certificate" request carries no certificate');
  }
  return message;
}
