/**
 * The certificates a device keeps: its own, the CA's, and the cloud's, in one durable record
 * (two slots, src/device/durable.ts) so that replacing the cloud certificate survives a power cut.
 *
 *   record "certs" = CBOR {1: device certificate DER, 2: CA certificate DER, 3: cloud certificate DER}
 *
 * They come from enrollment (src/device/enrollment.ts) or from configuration (offline
 * provisioning: `DeviceConfig.provisioned`); `verifyCredentials` is the one check both pass
 * before anything is stored or used. The device key is not stored: it is derived from the HUK on
 * every boot. Runtime-neutral.
 */
import { equal, toHex } from '../bytes.js';
import { CborError, decode, encode } from '../cbor/index.js';
import { bstr } from '../cose/headers.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { certificateVerifier, parseCertificate, verifyCloudCertificate } from '../pki/certificate.js';
import type { KeyValueStore } from '../platform/store.js';
import { DurableRecord } from './durable.js';

export interface Credentials {
  deviceCertificate: Uint8Array;
  caCertificate: Uint8Array;
  cloudCertificate: Uint8Array;
}

const RECORD = 'certs';

/** Certificates to be checked: a device certificate, its CA, and one or more cloud certificates. */
export interface CredentialCandidate {
  deviceCertificate: Uint8Array;
  caCertificate: Uint8Array;
  /** The one to use first, then any others (enrollment may hand out several). */
  cloudCertificates: Uint8Array[];
}

export interface CredentialExpectations {
  /** The device id the certificate must name (its subject CN). */
  deviceId: string;
  /** The device's own public key (65-byte point, derived from the HUK): what it must certify. */
  publicKey: Uint8Array;
  /** The CA pinned in the firmware (DER): the CA certificate must be exactly it. */
  ca?: Uint8Array;
  /** … or its SHA-256 (32 bytes). */
  caFingerprint?: Uint8Array;
  /** Epoch milliseconds, or undefined while the time is unknown (validity periods not checked). */
  now: () => number | undefined;
}

export interface VerifiedCredentials {
  /** The cloud certificates' P-256 public keys, in order. */
  cloudPublicKeys: Uint8Array[];
  /** Which pin the CA certificate matched: `none` when no pin is configured. */
  pin: 'ca' | 'fingerprint' | 'none';
}

/**
 * Whether certificate `a` has a later notBefore than `b` (false when either does not parse): what
 * makes a cloud certificate newer than another. Serial numbers are random (no order); two cloud
 * certificates of one CA get distinct notBefore seconds (`cloudKeygen --rotate`).
 */
export function issuedLater(a: Uint8Array, b: Uint8Array): boolean {
  try {
    return parseCertificate(a).notBefore > parseCertificate(b).notBefore;
  } catch {
    return false;
  }
}

/** The first 8 bytes of a public key's SHA-256, hex: enough to tell two keys apart in a log line. */
function keyTag(crypto: CryptoProvider, publicKey: Uint8Array): string {
  return toHex(crypto.sha256(publicKey).subarray(0, 8));
}

/**
 * The checks every set of certificates passes before a device believes it (an enrollment result
 * and offline provisioning alike): the CA certificate is a CA and matches the pin when there is
 * one; the device certificate is issued by that CA for a device, names exactly `deviceId` and
 * certifies exactly this device's key; every cloud certificate is issued by that CA for key
 * agreement; validity periods when the clock knows the time. Throws an Error whose message
 * starts with the certificate that failed ("device certificate: …").
 */
export function verifyCredentials(
  crypto: CryptoProvider,
  candidate: CredentialCandidate,
  expect: CredentialExpectations,
): VerifiedCredentials {
  const ca = candidate.caCertificate;
  let pin: VerifiedCredentials['pin'] = 'none';
  if (expect.ca !== undefined) {
    if (!equal(ca, expect.ca)) throw new Error('CA certificate: it is not the pinned CA');
    pin = 'ca';
  } else if (expect.caFingerprint !== undefined) {
    if (!equal(crypto.sha256(ca), expect.caFingerprint)) {
      throw new Error(
        `CA certificate: its SHA-256 ${toHex(crypto.sha256(ca))} is not the pinned fingerprint ${toHex(expect.caFingerprint)}`,
      );
    }
    pin = 'fingerprint';
  }
  let device: ReturnType<ReturnType<typeof certificateVerifier>>;
  try {
    device = certificateVerifier({ crypto, trustAnchors: [ca], now: expect.now })(candidate.deviceCertificate);
  } catch (e) {
    throw new Error(`device certificate: ${(e as Error).message}`);
  }
  if (device.deviceId !== expect.deviceId) {
    throw new Error(`device certificate: it is for ${JSON.stringify(device.deviceId)}, not ${expect.deviceId}`);
  }
  if (!equal(device.publicKey, expect.publicKey)) {
    throw new Error(
      `device certificate: it certifies another key (SHA-256 ${keyTag(crypto, device.publicKey)}…), ` +
        `not this device's (SHA-256 ${keyTag(crypto, expect.publicKey)}…, derived from its HUK)`,
    );
  }
  if (candidate.cloudCertificates.length === 0) throw new Error('cloud certificate: none given');
  const cloudPublicKeys: Uint8Array[] = [];
  for (const der of candidate.cloudCertificates) {
    try {
      cloudPublicKeys.push(verifyCloudCertificate(crypto, der, ca, expect.now()));
    } catch (e) {
      throw new Error(`cloud certificate: ${(e as Error).message}`);
    }
  }
  return { cloudPublicKeys, pin };
}

export class CredentialStore {
  readonly #record: DurableRecord;

  constructor(store: KeyValueStore) {
    this.#record = new DurableRecord(store, RECORD);
  }

  /** The stored certificates, or undefined when the device has none (not enrolled). Throws when corrupt. */
  load(): Credentials | undefined {
    const stored = this.#record.read();
    if (stored === undefined) return undefined;
    let map: unknown;
    try {
      map = decode(stored.value, { maxDepth: 1 });
    } catch (e) {
      if (e instanceof CborError) throw new Error(`the stored certificates are not readable: ${e.message}`);
      throw e;
    }
    if (!(map instanceof Map)) throw new Error('the stored certificates are not a map');
    return {
      deviceCertificate: bstr(map.get(1), 'stored device certificate').slice(),
      caCertificate: bstr(map.get(2), 'stored CA certificate').slice(),
      cloudCertificate: bstr(map.get(3), 'stored cloud certificate').slice(),
    };
  }

  /**
   * Offline provisioning, once `configured` has passed `verifyCredentials`: the stored record is
   * kept when it holds the same device and CA certificates and the same cloud certificate or one
   * issued later (a newer one from a `cloud-certificate` control message); otherwise — none
   * stored, unreadable, or others (enrolled before, re-flashed with new certificates) — the
   * configured certificates replace it.
   */
  adopt(configured: Credentials): { credentials: Credentials; stored: 'kept' | 'saved' | 'replaced' } {
    let stored: Credentials | undefined;
    try {
      stored = this.load();
    } catch {
      stored = undefined; // overwritten below
    }
    if (
      stored !== undefined &&
      equal(stored.deviceCertificate, configured.deviceCertificate) &&
      equal(stored.caCertificate, configured.caCertificate) &&
      (equal(stored.cloudCertificate, configured.cloudCertificate) ||
        issuedLater(stored.cloudCertificate, configured.cloudCertificate))
    ) {
      return { credentials: stored, stored: 'kept' };
    }
    this.save(configured);
    return { credentials: configured, stored: stored === undefined ? 'saved' : 'replaced' };
  }

  save(credentials: Credentials): void {
    this.#record.write(
      encode(
        new Map<number, Uint8Array>([
          [1, credentials.deviceCertificate],
          [2, credentials.caCertificate],
          [3, credentials.cloudCertificate],
        ]),
      ),
    );
  }
}
