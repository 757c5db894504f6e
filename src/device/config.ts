/**
 * The device application's configuration: defaults, checks, and one reader for flat settings
 * (`{ broker: "mqtt://…", qos: 1, rate: 0.2, … }`), the same on every platform: the Moddable
 * manifest's `config` (mc/config) on the device, CLI flags and the environment in the host
 * simulator. Runtime-neutral.
 */

import { type BackoffPolicy, checkBackoff, DEFAULT_RECONNECT } from '../backoff.js';
import { fromHex } from '../bytes.js';
import { pemDecode } from '../pki/pem.js';
import type { EnrollCredential } from '../profile/enrollment.js';
import { DEFAULT_PREFIX, MAX_SEQ } from '../profile/limits.js';
import { checkDeviceId, checkPrefix } from '../profile/topics.js';
import type { Credentials } from './credentials.js';
import type { RetryPolicy } from './enrollment.js';
import { DEFAULT_KID_BLOCK } from './kid-allocator.js';

export interface RekeyPolicy {
  /** Start a new session after this many data messages (0: never for this reason). */
  afterMessages: number;
  /** … or when the session is this old, in milliseconds (0: never for this reason). */
  afterMs: number;
  /** … or before the sequence number would pass this (at most 2^32 − 1, the profile's limit). */
  seqLimit: number;
  /** Re-keys the cloud asks for are honoured at most once per this many milliseconds. */
  minIntervalMs: number;
}

/**
 * What a control message may cost (docs/PROTOCOL.md §4.9): size, request and kid are checked
 * without any signature check; at most `maxVerifications` signatures are checked per `intervalMs`,
 * more control messages in that interval are ignored unverified (`verification-limit`).
 */
export interface ControlPolicy {
  maxVerifications: number;
  intervalMs: number;
}

export interface EnrollSettings {
  credential?: EnrollCredential;
  /** The CA certificate (DER) pinned in the firmware, or its SHA-256; with neither: trust on first use. */
  ca?: Uint8Array;
  caFingerprint?: Uint8Array;
  retry?: Partial<RetryPolicy>;
}

export interface DeviceConfig {
  /** The device id (certificate CN, topic level); default derived from the HUK (`cf-<hex>`). */
  deviceId?: string;
  prefix: string;
  /** Milliseconds between readings. */
  intervalMs: number;
  /** QoS of data messages. */
  dataQos: 0 | 1;
  rekey: RekeyPolicy;
  control: ControlPolicy;
  /** Session kids reserved per store write (src/device/kid-allocator.ts). */
  kidBlock: number;
  /** Data messages the offline queue holds. */
  outboxCapacity: number;
  /** Data messages published and not yet acknowledged at most. */
  maxInFlight: number;
  /** The key message is sent again when its QoS 2 flow has not completed in this time. */
  keyAckTimeoutMs: number;
  reconnect: BackoffPolicy;
  /** Waits before trying a failed session start or enrollment again. */
  retry: BackoffPolicy;
  enroll: EnrollSettings;
  /**
   * Offline provisioning: the device certificate, CA certificate and cloud certificate (DER)
   * given at flashing time. Checked at boot as an enrollment result is (verifyCredentials); the
   * device never enrolls while they are configured, and sends nothing when they do not verify.
   */
  provisioned?: Credentials;
  /** Log this device's certification request (event `csr`, base64 of the DER) at boot and stop: the factory's first step. */
  printCsr?: boolean;
}

export const DEFAULT_CONFIG: Readonly<DeviceConfig> = {
  prefix: DEFAULT_PREFIX,
  intervalMs: 5000,
  dataQos: 1,
  rekey: { afterMessages: 0, afterMs: 24 * 3600_000, seqLimit: MAX_SEQ, minIntervalMs: 60_000 },
  control: { maxVerifications: 8, intervalMs: 60_000 },
  kidBlock: DEFAULT_KID_BLOCK,
  outboxCapacity: 64,
  maxInFlight: 8,
  keyAckTimeoutMs: 20_000,
  reconnect: DEFAULT_RECONNECT,
  retry: { initialMs: 2000, multiplier: 2, maxMs: 300_000, jitter: 0.5 },
  enroll: {},
};

/** `DEFAULT_CONFIG` overlaid with `partial` (nested objects merged one level deep), checked. */
export function deviceConfig(partial: Partial<DeviceConfig> = {}): DeviceConfig {
  const config: DeviceConfig = {
    ...DEFAULT_CONFIG,
    ...partial,
    rekey: { ...DEFAULT_CONFIG.rekey, ...partial.rekey },
    control: { ...DEFAULT_CONFIG.control, ...partial.control },
    reconnect: { ...DEFAULT_CONFIG.reconnect, ...partial.reconnect },
    retry: { ...DEFAULT_CONFIG.retry, ...partial.retry },
    enroll: { ...DEFAULT_CONFIG.enroll, ...partial.enroll },
  };
  return checkConfig(config);
}

export function checkConfig(c: DeviceConfig): DeviceConfig {
  if (c.deviceId !== undefined) checkDeviceId(c.deviceId);
  checkPrefix(c.prefix);
  const positive = (name: string, v: number, min = 1) => {
    if (!Number.isFinite(v) || v < min) throw new RangeError(`${name} must be a number ≥ ${min}, got ${v}`);
  };
  positive('intervalMs', c.intervalMs);
  if (c.dataQos !== 0 && c.dataQos !== 1) throw new RangeError(`data QoS must be 0 or 1, got ${String(c.dataQos)}`);
  positive('rekey.afterMessages', c.rekey.afterMessages, 0);
  positive('rekey.afterMs', c.rekey.afterMs, 0);
  positive('rekey.minIntervalMs', c.rekey.minIntervalMs, 0);
  if (!Number.isInteger(c.rekey.seqLimit) || c.rekey.seqLimit < 1 || c.rekey.seqLimit > MAX_SEQ) {
    throw new RangeError(`rekey.seqLimit must be 1 … ${MAX_SEQ}`);
  }
  positive('control.maxVerifications', c.control.maxVerifications, 0);
  positive('control.intervalMs', c.control.intervalMs);
  positive('kidBlock', c.kidBlock);
  positive('outboxCapacity', c.outboxCapacity);
  positive('maxInFlight', c.maxInFlight);
  positive('keyAckTimeoutMs', c.keyAckTimeoutMs, 100);
  checkBackoff(c.reconnect, 'reconnect');
  checkBackoff(c.retry, 'retry');
  if (c.provisioned !== undefined) {
    for (const key of ['deviceCertificate', 'caCertificate', 'cloudCertificate'] as const) {
      const der = c.provisioned[key];
      if (!(der instanceof Uint8Array) || der.length === 0)
        throw new RangeError(`provisioned.${key} must be DER bytes`);
    }
  }
  return c;
}

/** Flat settings, as a manifest's config or a command line gives them. Unknown keys are ignored. */
export type Settings = Record<string, string | number | boolean | undefined>;

export interface ConnectionSettings {
  /** mqtt://host[:port] or mqtts://host[:port]. */
  broker: string;
  username?: string;
  password?: string;
  clientId?: string;
  /** MQTT keepalive in seconds. */
  keepalive?: number;
  /** mqtts:// only: the DER certificate of the CA that issued the broker's TLS certificate. */
  brokerCa?: Uint8Array;
}

/**
 * Reads `settings` (numbers may be given as text):
 *   broker, mqttUsername, mqttPassword, clientId, keepalive  the MQTT connection (not `password`:
 *                                                            the SDK's Wi-Fi takes `ssid` and `password`)
 *   deviceId, prefix                                         names
 *   rate (messages per second) or interval (ms), qos (0|1)  data
 *   rekeyMessages, rekeyAge (s), rekeyMinInterval (s)        re-key policy
 *   kidBlock, outbox, inFlight, keyAckTimeout (ms)           tuning
 *   ca (DER, hex), caFingerprint (SHA-256, hex)              the pinned CA
 *   batch, enrollKey (hex)                                   the enrollment credential
 *   deviceCertificate, caCertificate, cloudCertificate       offline provisioning: all three or none,
 *     each PEM (the text of a .pem file, or only its base64 body; whitespace ignored)
 *   printCsr (true)                                          log the device's CSR at boot and stop
 *   brokerCa (PEM)                                           mqtts:// only: the broker's TLS CA
 */
export function readSettings(settings: Settings): { config: DeviceConfig; connection: ConnectionSettings } {
  const text = (key: string): string | undefined => {
    const v = settings[key];
    if (v === undefined || v === '') return undefined;
    return String(v);
  };
  const number = (key: string): number | undefined => {
    const v = text(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new RangeError(`setting ${key}: ${JSON.stringify(v)} is not a number`);
    return n;
  };
  const hex = (key: string): Uint8Array | undefined => {
    const v = text(key);
    return v === undefined ? undefined : fromHex(v.replace(/[\s:]/g, ''));
  };
  const broker = text('broker');
  if (broker === undefined) throw new RangeError('setting broker (mqtt://host:port) is required');
  if (!/^mqtts?:\/\/[^/\s]+/.test(broker))
    throw new RangeError(`setting broker ${JSON.stringify(broker)}: mqtt:// or mqtts:// URL`);

  const partial: Partial<DeviceConfig> = {};
  const deviceId = text('deviceId');
  if (deviceId !== undefined) partial.deviceId = deviceId;
  const prefix = text('prefix');
  if (prefix !== undefined) partial.prefix = prefix;
  const rate = number('rate');
  const interval = number('interval');
  if (rate !== undefined) {
    if (rate <= 0) throw new RangeError('setting rate must be > 0 messages per second');
    partial.intervalMs = 1000 / rate;
  } else if (interval !== undefined) partial.intervalMs = interval;
  const qos = number('qos');
  if (qos !== undefined) partial.dataQos = qos as 0 | 1;
  const rekey: Partial<RekeyPolicy> = {};
  const rekeyMessages = number('rekeyMessages');
  if (rekeyMessages !== undefined) rekey.afterMessages = rekeyMessages;
  const rekeyAge = number('rekeyAge');
  if (rekeyAge !== undefined) rekey.afterMs = rekeyAge * 1000;
  const rekeyMin = number('rekeyMinInterval');
  if (rekeyMin !== undefined) rekey.minIntervalMs = rekeyMin * 1000;
  partial.rekey = { ...DEFAULT_CONFIG.rekey, ...rekey };
  const kidBlock = number('kidBlock');
  if (kidBlock !== undefined) partial.kidBlock = kidBlock;
  const outbox = number('outbox');
  if (outbox !== undefined) partial.outboxCapacity = outbox;
  const inFlight = number('inFlight');
  if (inFlight !== undefined) partial.maxInFlight = inFlight;
  const keyAckTimeout = number('keyAckTimeout');
  if (keyAckTimeout !== undefined) partial.keyAckTimeoutMs = keyAckTimeout;

  const enroll: EnrollSettings = {};
  const ca = hex('ca');
  if (ca !== undefined) enroll.ca = ca;
  const caFingerprint = hex('caFingerprint');
  if (caFingerprint !== undefined) enroll.caFingerprint = caFingerprint;
  const batch = text('batch');
  const enrollKey = hex('enrollKey');
  if ((batch === undefined) !== (enrollKey === undefined))
    throw new RangeError('settings batch and enrollKey go together');
  if (batch !== undefined && enrollKey !== undefined) enroll.credential = { batchId: batch, key: enrollKey };
  partial.enroll = enroll;

  const certificate = (key: string): Uint8Array | undefined => {
    const v = text(key);
    if (v === undefined) return undefined;
    try {
      return pemDecode(v, 'CERTIFICATE');
    } catch (e) {
      throw new RangeError(`setting ${key}: not a PEM certificate (${(e as Error).message})`);
    }
  };
  const deviceCertificate = certificate('deviceCertificate');
  const caCertificate = certificate('caCertificate');
  const cloudCertificate = certificate('cloudCertificate');
  if (deviceCertificate !== undefined && caCertificate !== undefined && cloudCertificate !== undefined) {
    partial.provisioned = { deviceCertificate, caCertificate, cloudCertificate };
  } else if (deviceCertificate !== undefined || caCertificate !== undefined || cloudCertificate !== undefined) {
    throw new RangeError(
      'settings deviceCertificate, caCertificate and cloudCertificate go together (offline provisioning); ' +
        'to pin only the CA for enrollment, use ca or caFingerprint',
    );
  }
  const printCsr = text('printCsr');
  if (printCsr !== undefined) {
    if (printCsr !== 'true' && printCsr !== 'false') throw new RangeError('setting printCsr is true or false');
    partial.printCsr = printCsr === 'true';
  }

  const connection: ConnectionSettings = { broker };
  const username = text('mqttUsername');
  if (username !== undefined) connection.username = username;
  const password = text('mqttPassword');
  if (password !== undefined) connection.password = password;
  const clientId = text('clientId');
  if (clientId !== undefined) connection.clientId = clientId;
  const keepalive = number('keepalive');
  if (keepalive !== undefined) connection.keepalive = keepalive;
  const brokerCa = certificate('brokerCa');
  if (brokerCa !== undefined) {
    if (!broker.startsWith('mqtts:')) throw new RangeError('setting brokerCa is for an mqtts:// broker');
    connection.brokerCa = brokerCa;
  }
  return { config: deviceConfig(partial), connection };
}
