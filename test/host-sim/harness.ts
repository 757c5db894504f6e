/**
 * What the device integration tests share: a throwaway PKI made with the CA library, simulated
 * devices (the real device application on the host platform) provisioned with certificates, and
 * a "cloud" that opens what arrives with the cloud key (node:crypto, as the cloud service does).
 */
import assert from 'node:assert/strict';
import { type CertificateAuthority, createCa, generateKeyPair, issueCertificate } from '../../cloud/pki/authority.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { hostClock } from '../../host-sim/clock.js';
import { seededHuk } from '../../host-sim/huk.js';
import { collectingLogger, type LogEntry } from '../../host-sim/log.js';
import { HostMqttLink } from '../../host-sim/mqtt.js';
import { simulatedSensor } from '../../host-sim/sensor.js';
import { MemoryStore } from '../../host-sim/store.js';
import { hostTimers } from '../../host-sim/timers.js';
import { nodeCrypto } from '../../node/crypto.js';
import { equal, utf8Encode } from '../../src/bytes.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import type { CryptoProvider, P256PrivateKey } from '../../src/crypto/provider.js';
import { DeviceApp, type DeviceEvent } from '../../src/device/app.js';
import { type DeviceConfig, deviceConfig } from '../../src/device/config.js';
import { CredentialStore } from '../../src/device/credentials.js';
import type { Platform } from '../../src/platform/index.js';
import type { KeyValueStore } from '../../src/platform/store.js';
import { decodeKid } from '../../src/profile/counter.js';
import { openData, parseDataMessage } from '../../src/profile/data-message.js';
import { type OpenedKeyMessage, openKeyMessage } from '../../src/profile/key-message.js';
import { cloudKeyId, type SessionKey } from '../../src/profile/session.js';
import { parseTopic } from '../../src/profile/topics.js';

export const host = nodeCrypto();

export interface CloudIdentity {
  certificate: Uint8Array;
  key: P256PrivateKey;
  publicKey: Uint8Array;
  kid: Uint8Array;
}

export interface TestPki {
  ca: CertificateAuthority;
  caDer: Uint8Array;
  cloud: CloudIdentity;
  /** Another cloud key and certificate from the same CA (rotation tests). */
  newCloud(): Promise<CloudIdentity>;
  deviceCertificate(deviceId: string, publicKey: Uint8Array): Promise<Uint8Array>;
}

/** A new cloud key pair with a certificate from `ca`, valid for a year from `notBefore`. */
export async function cloudIdentityAt(ca: CertificateAuthority, notBefore: Date): Promise<CloudIdentity> {
  const pair = generateKeyPair();
  const issued = await issueCertificate(ca, {
    commonName: 'cose-flow test cloud',
    publicKey: pair.publicKey,
    keyUsage: 'cloud',
    notBefore,
    notAfter: new Date(notBefore.getTime() + 365 * 86_400_000),
  });
  return {
    certificate: issued.der,
    key: host.p256Import(pair.privateScalar),
    publicKey: pair.publicKey,
    kid: cloudKeyId(host, pair.publicKey),
  };
}

export async function makeTestPki(): Promise<TestPki> {
  const ca = await createCa({ name: 'cose-flow device tests CA' });
  let lastNotBefore = 0;
  const newCloud = async (): Promise<CloudIdentity> => {
    // Each new cloud certificate strictly newer (notBefore) than the last, as devices require.
    const notBefore = new Date(Math.max(Math.floor((Date.now() - 3600_000) / 1000) * 1000, lastNotBefore + 1000));
    lastNotBefore = notBefore.getTime();
    return cloudIdentityAt(ca, notBefore);
  };
  return {
    ca,
    caDer: ca.der,
    cloud: await newCloud(),
    newCloud,
    deviceCertificate: async (deviceId, publicKey) =>
      (await issueCertificate(ca, { commonName: deviceId, publicKey, keyUsage: 'device' })).der,
  };
}

/** A deterministic random source that remembers every draw (to replay the device's key messages). */
export class RecordingRandom {
  readonly draws: Uint8Array[] = [];
  #counter = 0;
  readonly #seed: Uint8Array;

  constructor(seed: string) {
    this.#seed = host.sha256(utf8Encode(seed));
  }

  readonly next = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let at = 0; at < n; at += 32) {
      const block = host.hmacSha256(this.#seed, utf8Encode(String(this.#counter++)));
      out.set(block.subarray(0, Math.min(32, n - at)), at);
    }
    this.draws.push(out.slice());
    return out;
  };

  /** A random source that hands out the recorded draws from `index` on. */
  replayFrom(index: number): (n: number) => Uint8Array {
    let i = index;
    return (n) => {
      const draw = this.draws[i++];
      assert.ok(draw !== undefined && draw.length === n, `replay: draw ${i - 1} is not ${n} bytes`);
      return draw.slice();
    };
  }
}

export interface SimDevice {
  deviceId: string;
  app: DeviceApp;
  platform: Platform;
  store: KeyValueStore;
  link: HostMqttLink;
  events: DeviceEvent[];
  log: ReturnType<typeof collectingLogger>;
  crypto: CryptoProvider;
  random?: RecordingRandom;
}

export interface SimDeviceOptions {
  broker: string;
  deviceId: string;
  pki: TestPki;
  config?: Partial<DeviceConfig>;
  /** The device's store (kept across "reboots" by the caller); default a new MemoryStore. */
  store?: KeyValueStore;
  /** Provision certificates into the store first (default true). */
  provision?: boolean;
  /** Record the device's randomness (for byte-for-byte replays). */
  recordRandom?: string;
  /** Called for each event (after it is recorded). */
  onEvent?: (event: DeviceEvent) => void;
  /** mqtts:// only: the broker's CA certificate (DER), the device's `brokerCa`. */
  brokerCa?: Uint8Array;
}

/** Fast timings for tests: readings every 20 ms, reconnects from 50 ms. */
export const FAST: Partial<DeviceConfig> = {
  intervalMs: 20,
  keyAckTimeoutMs: 2000,
  reconnect: { initialMs: 50, multiplier: 2, maxMs: 400, jitter: 0.5 },
  retry: { initialMs: 50, multiplier: 2, maxMs: 400, jitter: 0.5 },
};

const hukSeed = utf8Encode('cose-flow device tests');

/** A simulated device with its certificates already in its store (unless `provision: false`). */
export async function simDevice(options: SimDeviceOptions): Promise<SimDevice> {
  const random = options.recordRandom === undefined ? undefined : new RecordingRandom(options.recordRandom);
  const crypto = nobleCrypto(random?.next);
  const store = options.store ?? new MemoryStore();
  const huk = seededHuk(crypto, hukSeed, options.deviceId);
  if (options.provision ?? true) {
    const credentials = new CredentialStore(store);
    if (credentials.load() === undefined) {
      const publicKey = huk.identity().key.publicKey;
      credentials.save({
        deviceCertificate: await options.pki.deviceCertificate(options.deviceId, publicKey),
        caCertificate: options.pki.caDer,
        cloudCertificate: options.pki.cloud.certificate,
      });
    }
  }
  const clock = hostClock();
  const link = new HostMqttLink(options.broker, {
    mqtt: { clientId: `${options.deviceId}-${Math.random().toString(16).slice(2, 8)}` },
    ...(options.brokerCa === undefined ? {} : { brokerCa: options.brokerCa }),
  });
  const log = collectingLogger();
  const platform: Platform = {
    clock,
    timers: hostTimers,
    store,
    rng: crypto,
    huk,
    sensor: simulatedSensor(clock),
    mqtt: link,
    log,
    crypto,
  };
  const events: DeviceEvent[] = [];
  const config = deviceConfig({ ...FAST, deviceId: options.deviceId, ...options.config });
  const app = new DeviceApp(platform, config, {
    onEvent: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
  });
  return { deviceId: options.deviceId, app, platform, store, link, events, log, crypto, ...(random ? { random } : {}) };
}

/** Resolves when `check()` holds (polled every 10 ms); fails after `ms` with `what`. */
export async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function logged(entries: LogEntry[], event: string, reason?: string): LogEntry[] {
  return entries.filter(
    (e) => e.event === event && (reason === undefined || String(e.fields.reason ?? '').includes(reason)),
  );
}

/** What the cloud saw: every key and data message that arrived, opened with the cloud key. */
export interface CloudSession {
  deviceId: string;
  kid: bigint;
  session: SessionKey;
  keyMessages: Uint8Array[];
}

export interface ArrivedData {
  deviceId: string;
  kid: bigint;
  seq: number;
  bytes: Uint8Array;
  payload?: Uint8Array;
}

/**
 * A receiver in the style of the cloud service: key messages opened with the cloud keys (node
 * crypto), data messages decrypted with the session they name. Duplicates are kept (counted).
 */
export class CloudView {
  readonly sessions = new Map<string, CloudSession>();
  readonly data: ArrivedData[] = [];
  readonly refused: { topic: string; reason: string }[] = [];
  readonly #keys: CloudIdentity[];
  readonly #verify;

  constructor(pki: TestPki, keys: CloudIdentity[] = [pki.cloud]) {
    this.#keys = keys;
    this.#verify = deviceCertificateVerifier({ crypto: host, trustAnchors: [pki.caDer], cacheSize: 0 });
  }

  addKey(key: CloudIdentity): void {
    this.#keys.push(key);
  }

  receive(name: string, payload: Uint8Array): void {
    const parsed = parseTopic(name);
    if (parsed === undefined) return;
    try {
      if (parsed.kind === 'session') this.#keyMessage(parsed.deviceId, payload);
      else if (parsed.kind === 'data') this.#dataMessage(parsed.deviceId, payload);
    } catch (e) {
      this.refused.push({ topic: name, reason: (e as Error).message });
    }
  }

  #keyMessage(deviceId: string, bytes: Uint8Array): OpenedKeyMessage {
    const opened = openKeyMessage(host, bytes, {
      cloudKey: (kid) => this.#keys.find((k) => equal(k.kid, kid))?.key,
      verifyCertificate: this.#verify,
      topicDeviceId: deviceId,
    });
    const kid = decodeKid(opened.session.kid);
    const id = `${deviceId}/${kid}`;
    const known = this.sessions.get(id);
    if (known === undefined) {
      this.sessions.set(id, { deviceId, kid, session: opened.session, keyMessages: [bytes] });
      // Data that overtook its key message on the way to this observer (different QoS flows).
      for (const d of this.data) {
        if (d.deviceId === deviceId && d.kid === kid && d.payload === undefined) {
          d.payload = openData(host, parseDataMessage(d.bytes), opened.session);
        }
      }
    } else {
      known.keyMessages.push(bytes);
      if (!equal(known.session.key, opened.session.key))
        throw new Error(`kid ${kid} of ${deviceId} announced twice with different keys`);
    }
    return opened;
  }

  #dataMessage(deviceId: string, bytes: Uint8Array): void {
    const parsed = parseDataMessage(bytes);
    const kid = decodeKid(parsed.kid);
    const session = this.sessions.get(`${deviceId}/${kid}`);
    const arrived: ArrivedData = { deviceId, kid, seq: parsed.seq, bytes };
    if (session !== undefined) arrived.payload = openData(host, parsed, session.session);
    this.data.push(arrived);
  }

  /** Distinct (kid, seq) pairs that arrived for `deviceId`. */
  distinct(deviceId: string): Set<string> {
    return new Set(this.data.filter((d) => d.deviceId === deviceId).map((d) => `${d.kid}/${d.seq}`));
  }
}
