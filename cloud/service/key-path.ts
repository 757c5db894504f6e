/**
 * A key message's way through the receiver (docs/PROTOCOL.md §6.2): admission (the device's
 * session quota) → openKeyMessage (size, CBOR, headers, certificate chain + validity + key usage +
 * revocation, CN = topic id, ES256, cloud key by recipient kid, ECDH + HKDF + unwrap, session
 * COSE_Key) → seal the session key at rest → store.putSession with the certificate serial and the
 * signed-content digest → accept / duplicate / kid-reused / kid-rollback / kid-too-far.
 *
 * A refused kid of an authenticated key message gets a re-key request (the device learns it was
 * refused; the requester signs only for kids at or below the floor).
 */
import { toHex } from '../../src/bytes.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import type { OpenedKeyMessage } from '../../src/profile/key-message.js';
import type { InboundMessage } from '../mqtt/consumer.js';
import type { Store } from '../store/store.js';
import type { Admission } from './admission.js';
import type { SessionSealer } from './at-rest.js';
import { type Outcome, reject, rejectionOf } from './outcome.js';
import type { RekeyRequester } from './rekey.js';
import type { SessionTable } from './session-table.js';
import type { StoreCall } from './store-retry.js';

export interface KeyPathOptions {
  store: Store;
  sessions: SessionTable;
  sealer: SessionSealer;
  rekey: RekeyRequester;
  /** openKeyMessage with the service's cloud keys and certificate verifier. */
  openKeyMessage: (bytes: Uint8Array, topicDeviceId: string) => OpenedKeyMessage;
  withStore: StoreCall;
  admission?: Admission;
  now: () => number;
}

/** A key message's outcome, and its session kid once it opened. */
export interface KeyOutcome {
  outcome: Outcome;
  kid?: Uint8Array;
}

export class KeyPath {
  readonly #o: KeyPathOptions;

  constructor(options: KeyPathOptions) {
    this.#o = options;
  }

  async run(deviceId: string, message: InboundMessage): Promise<KeyOutcome> {
    const quota = this.#o.admission?.admitSession(deviceId);
    if (quota !== undefined) return { outcome: reject(quota.reason, quota.detail) };
    let opened: OpenedKeyMessage;
    try {
      opened = this.#o.openKeyMessage(message.payload, deviceId);
    } catch (e) {
      return { outcome: rejectionOf(e) };
    }
    const { session } = opened;
    return { outcome: await this.#store(deviceId, opened), kid: session.kid };
  }

  async #store(deviceId: string, opened: OpenedKeyMessage): Promise<Outcome> {
    const { session } = opened;
    const sealed = this.#o.sealer.seal(deviceId, session);
    const serial = parseCertificate(opened.deviceCertificate).serialHex;
    const result = await this.#o.withStore('putSession', () =>
      this.#o.store.putSession({
        deviceId,
        kid: session.kid,
        wrappedKey: sealed,
        // §6.2: the signed content (protected bytes + payload), not the whole message.
        keyMessageDigest: opened.signedContentDigest,
        createdAt: this.#o.now(),
        certificateSerial: serial,
      }),
    );
    if (result === 'stored') {
      this.#o.sessions.remember(deviceId, session, sealed, serial);
      this.#o.admission?.sessionStored(deviceId);
      return { type: 'accept', stored: { kind: 'session', cloudKidHex: toHex(opened.cloudKid) } };
    }
    session.key.fill(0);
    switch (result) {
      case 'duplicate':
        return { type: 'duplicate' };
      case 'kid-too-far':
        return reject(
          result,
          'the kid is above 2^53 − 1 or more than 65 536 above the highest kid accepted for this device',
        );
      default:
        // The key message authenticated: tell the device its kid was refused.
        void this.#o.rekey.request(deviceId, session.kid);
        return reject(
          result,
          result === 'kid-reused'
            ? 'a different key message was accepted under this kid'
            : 'the kid is not above the highest kid accepted for this device, or this key message was accepted before (cose-flow cloud reset-kid resets the floor)',
        );
    }
  }
}
