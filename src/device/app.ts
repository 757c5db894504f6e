/**
 * The device application: one explicit state machine, the same on the ESP32, in the Moddable
 * desktop simulator and in the Node host simulator. Everything it touches comes through the
 * `Platform` (src/platform); runtime-neutral (no Node or Moddable APIs).
 *
 *   boot ──▶ enrolling ──▶ (cloud certificate checked) ──▶ session ──▶ sending ──▶ session …
 *     │          ▲ no certificate yet: retried with backoff        │ key message    │ re-key: seq limit,
 *     └──────────┘                                                  │ QoS 2 pending  │ count, age, cloud
 *   untrusted: the cloud certificate, or the configured certificates, do not verify — nothing is
 *   ever sent (one clear log line)
 *
 * - boot: the device identity from the HUK; the certificates — configured (offline provisioning:
 *   checked as an enrollment result is, never replaced by enrolling) or stored; the cloud
 *   certificate is verified against the CA (signature, key usage, validity when the clock is
 *   known) before its key is trusted. `printCsr`: log the certification request and stop.
 * - session: the next kid from the persisted reservation (src/device/kid-allocator.ts: a reset at
 *   any moment never reuses a kid), a session key and Base IV from the platform RNG, the key
 *   message published with QoS 2. No data under that kid leaves before its QoS 2 flow completed;
 *   the same key message bytes are sent again after a reconnect or a timeout until it does.
 * - sending: each reading is encoded (src/device/reading.ts), sealed with the next sequence number
 *   into the bounded offline queue (src/device/outbox.ts) and published with the configured QoS.
 * - re-key: near the sequence-number limit, after `rekey.afterMessages` messages or `rekey.afterMs`
 *   of session age, after every reboot, and when the cloud asks (rate-limited).
 * - control: `{prefix}/{id}/control` (QoS 1) COSE_Sign1 by the cloud key (src/profile/control.ts),
 *   acted on only when it names the current kid; size, request and kid are checked before any
 *   signature, signature checks are capped per interval (config.control); a new cloud certificate
 *   must be announced by the cloud key in use and be newer than its certificate (no rollback);
 *   anything else is ignored with a (rate-limited) log line.
 * - connectivity: one connection attempt at a time, exponential backoff with jitter between them.
 */

import { Backoff } from '../backoff.js';
import { equal, toHex } from '../bytes.js';
import { isCoseError } from '../cose/errors.js';
import { parseCertificate, verifyCloudCertificate } from '../pki/certificate.js';
import { makeCsr } from '../pki/csr.js';
import { toBase64 } from '../pki/pem.js';
import type { Platform } from '../platform/index.js';
import type { LogFields, LogLevel } from '../platform/log.js';
import { randomFraction } from '../platform/rng.js';
import { openControlMessage, peekControlMessage } from '../profile/control.js';
import { encodeKid } from '../profile/counter.js';
import { sealData } from '../profile/data-message.js';
import { makeKeyMessage } from '../profile/key-message.js';
import type { SessionKey } from '../profile/session.js';
import { topic } from '../profile/topics.js';
import type { DeviceConfig } from './config.js';
import { CredentialStore, type Credentials, issuedLater, verifyCredentials } from './credentials.js';
import { EnrollmentError, enrollDevice } from './enrollment.js';
import { defaultDeviceId } from './identity.js';
import { KidAllocator } from './kid-allocator.js';
import { Outbox, type OutboxItem } from './outbox.js';
import { encodeReading } from './reading.js';

export type DeviceState =
  | 'boot'
  | 'enrolling'
  | 'untrusted'
  | 'session' // key message published, QoS 2 flow not yet complete
  | 'sending'
  | 'stopped';

export type RekeyReason = 'boot' | 'seq-limit' | 'messages' | 'age' | 'cloud' | 'retry';

export interface DeviceStats {
  /** Readings sealed into data messages. */
  sealed: number;
  /** Data messages published at least once. */
  sent: number;
  /** Data messages acknowledged: PUBACK at QoS 1, handed to the network at QoS 0. */
  acknowledged: number;
  /** Publish attempts after the first (reconnects, failures). */
  resent: number;
  /** QoS 0 messages dropped from a full queue. */
  dropped: number;
  /** Readings not taken because the queue was full of QoS 1 messages. */
  skipped: number;
  /** Sessions started (the first after boot included) and re-keys (every one after it). */
  sessions: number;
  rekeys: number;
  /** Key messages published (resends included) and completed (QoS 2). */
  keyMessages: number;
  keyAcked: number;
  controlAccepted: number;
  controlIgnored: number;
  /** Connections made and lost. */
  connects: number;
  disconnects: number;
  /** Failures worth a look: store writes, publishes, enrollment attempts, … */
  errors: number;
}

export type DeviceEvent =
  | { type: 'state'; state: DeviceState }
  | { type: 'session'; kid: number; reason: RekeyReason; keyMessage: Uint8Array }
  | { type: 'key-acked'; kid: number }
  | { type: 'sealed'; kid: number; seq: number; qos: 0 | 1 }
  | { type: 'acknowledged'; kid: number; seq: number }
  | { type: 'control'; request: string; accepted: boolean; reason: string }
  | { type: 'connected' }
  | { type: 'disconnected'; reason: string };

export interface DeviceAppOptions {
  onEvent?: (event: DeviceEvent) => void;
}

interface CurrentSession {
  kid: number;
  key: SessionKey;
  seq: number;
  startedAt: number;
  keyMessage: Uint8Array;
  keyAcked: boolean;
  keyInFlight: boolean;
}

interface TrustedCloud {
  certificate: Uint8Array;
  publicKey: Uint8Array;
}

/** control-ignored log lines per control interval; the rest are counted (`suppressed`). */
const CONTROL_LOG_LINES = 20;

const newStats = (): DeviceStats => ({
  sealed: 0,
  sent: 0,
  acknowledged: 0,
  resent: 0,
  dropped: 0,
  skipped: 0,
  sessions: 0,
  rekeys: 0,
  keyMessages: 0,
  keyAcked: 0,
  controlAccepted: 0,
  controlIgnored: 0,
  connects: 0,
  disconnects: 0,
  errors: 0,
});

export class DeviceApp {
  readonly config: DeviceConfig;
  readonly stats: DeviceStats = newStats();
  readonly #p: Platform;
  readonly #emit: (event: DeviceEvent) => void;
  readonly #kids: KidAllocator;
  readonly #credentialStore: CredentialStore;
  readonly #outbox: Outbox;
  #draining = false;
  /** Called once by stop(): whatever waits (sleeps, drains, enrollment) ends. */
  readonly #stopHooks = new Set<() => void>();
  readonly #reconnect: Backoff;
  readonly #retry: Backoff;
  readonly #timers = new Set<unknown>();
  readonly #removers: (() => void)[] = [];
  /** Kids whose key message completed its QoS 2 flow in this boot: their data may be sent. */
  readonly #ackedKids = new Set<number>();

  #state: DeviceState = 'boot';
  #deviceId = '';
  #identity: ReturnType<Platform['huk']['identity']> | undefined;
  #credentials: Credentials | undefined;
  #cloud: TrustedCloud | undefined;
  /** A newer cloud certificate from a control message, used from the next session on. */
  #nextCloud: TrustedCloud | undefined;
  #session: CurrentSession | undefined;
  #startingSession = false;
  #rekeyPending: RekeyReason | undefined;
  #lastCloudRekey = -Infinity;
  /** The control verification budget (config.control) and the control-ignored log lines, per interval. */
  #verifyFrom = -Infinity;
  #verifications = 0;
  #controlLogFrom = -Infinity;
  #controlLogLines = 0;
  #controlLogSuppressed = 0;
  #controlSubscribed = false;
  #connecting = false;
  #reconnectTimer: unknown;
  #waitingForLink: (() => void)[] = [];

  constructor(platform: Platform, config: DeviceConfig, options: DeviceAppOptions = {}) {
    this.#p = platform;
    this.config = config;
    this.#emit = options.onEvent ?? (() => {});
    this.#kids = new KidAllocator(platform.store, { block: config.kidBlock });
    this.#credentialStore = new CredentialStore(platform.store);
    this.#outbox = new Outbox(config.outboxCapacity);
    const random = () => randomFraction(platform.rng);
    this.#reconnect = new Backoff(config.reconnect, random);
    this.#retry = new Backoff(config.retry, random);
  }

  get state(): DeviceState {
    return this.#state;
  }

  get deviceId(): string {
    return this.#deviceId;
  }

  /** The current session's kid counter (undefined before the first session). */
  get kid(): number | undefined {
    return this.#session?.kid;
  }

  /** Whether the MQTT connection is up. */
  get connected(): boolean {
    return this.#p.mqtt.connected;
  }

  /** Sealed data messages waiting in the offline queue (in flight included). */
  get queued(): number {
    return this.#outbox.size;
  }

  /**
   * Boots: identity, certificates, connection; then enrolls when needed, checks the cloud
   * certificate, starts the first session and the readings. Resolves once the first session has
   * been started (or the device has stopped, or refuses to send).
   */
  async start(): Promise<void> {
    if (this.#state !== 'boot') throw new Error(`start() in state ${this.#state}`);
    const identity = this.#p.huk.identity();
    this.#identity = identity;
    this.#deviceId = this.config.deviceId ?? defaultDeviceId(identity);
    this.#log('info', 'boot', {
      deviceId: this.#deviceId,
      keySource: identity.source,
      kidReserved: this.#kids.reservation(),
    });
    if (this.config.printCsr === true) {
      // One token (no spaces, no quoting) on the serial console: `base64 -d` makes it the DER `ca issue --csr` takes.
      this.#log('info', 'csr', { csr: toBase64(makeCsr(this.#p.crypto, identity.key, this.#deviceId)) });
      await this.stop();
      return;
    }
    if (this.config.provisioned !== undefined) {
      if (!this.#adoptProvisioned(this.config.provisioned)) {
        this.#setState('untrusted'); // never enrolls instead: the factory's certificates are wrong
        return;
      }
    } else this.#loadStored();
    const mqtt = this.#p.mqtt;
    this.#removers.push(
      mqtt.onUp(() => this.#onUp()),
      mqtt.onDown((down) => this.#onDown(down.reason)),
      mqtt.onMessage((name, payload) => this.#onMessage(name, payload)),
    );
    this.#connect();

    if (this.#credentials === undefined) {
      this.#setState('enrolling');
      const credentials = await this.#enroll();
      if (credentials === undefined) return; // stopped
      this.#credentials = credentials;
    }
    if (this.#stopped) return;
    const cloud = this.#verifyCloud(this.#credentials.cloudCertificate);
    if (cloud === undefined) {
      this.#setState('untrusted');
      return;
    }
    this.#cloud = cloud;
    this.#subscribeControl();
    this.#startSession('boot');
    this.#scheduleReading();
  }

  /** Stops everything: timers, the connection. Nothing is written to the store. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#setState('stopped');
    for (const handle of this.#timers) this.#p.timers.clearTimeout(handle);
    this.#timers.clear();
    for (const remove of this.#removers.splice(0)) remove();
    for (const wake of this.#waitingForLink.splice(0)) wake();
    for (const hook of [...this.#stopHooks]) hook();
    this.#stopHooks.clear();
    await this.#p.mqtt.close();
  }

  /**
   * Stops taking readings and waits until every queued data message has been acknowledged (true),
   * or `timeoutMs` has passed (false); then `stop()`. For a clean end of a run (the demo, tests):
   * what was sealed is delivered rather than left in the queue.
   */
  drain(timeoutMs: number): Promise<boolean> {
    this.#draining = true;
    const deadline = this.#p.clock.uptimeMs() + timeoutMs;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (drained: boolean) => {
        if (settled) return;
        settled = true;
        this.#stopHooks.delete(stopped);
        resolve(drained);
      };
      const stopped = () => settle(false);
      this.#stopHooks.add(stopped);
      const check = () => {
        if (this.#outbox.size === 0) settle(true);
        else if (this.#stopped || this.#p.clock.uptimeMs() >= deadline) settle(false);
        else this.#after(20, check);
      };
      check();
    });
  }

  /** Starts a new session now (for tools and tests; the cloud's way is the control topic). */
  rekey(reason: RekeyReason = 'cloud'): void {
    if (this.#session !== undefined) this.#startSession(reason);
  }

  get #stopped(): boolean {
    return this.#state === 'stopped';
  }

  // ------------------------------------------------------------------------------ state & logs

  #setState(state: DeviceState): void {
    if (this.#state === state || this.#state === 'stopped') return;
    this.#state = state;
    this.#log('info', 'state', { state });
    this.#emit({ type: 'state', state });
  }

  #log(level: LogLevel, event: string, fields: LogFields = {}): void {
    this.#p.log.log(level, event, { device: this.#deviceId, ...fields });
  }

  #fail(event: string, error: unknown, fields: LogFields = {}): void {
    this.stats.errors++;
    this.#log('error', event, { ...fields, error: error instanceof Error ? error.message : String(error) });
  }

  #after(ms: number, work: () => void): unknown {
    const handle = this.#p.timers.setTimeout(() => {
      this.#timers.delete(handle);
      if (this.#stopped) return;
      try {
        work();
      } catch (e) {
        this.#fail('internal-error', e);
      }
    }, ms);
    this.#timers.add(handle);
    return handle;
  }

  #cancel(handle: unknown): void {
    if (handle === undefined) return;
    this.#p.timers.clearTimeout(handle);
    this.#timers.delete(handle);
  }

  // ------------------------------------------------------------------------------ connectivity

  #connect(): void {
    if (this.#stopped || this.#connecting || this.#p.mqtt.connected) return;
    this.#connecting = true;
    this.#p.mqtt.connect().then(
      () => {
        this.#connecting = false;
        this.#reconnect.reset();
      },
      (e: unknown) => {
        this.#connecting = false;
        if (this.#stopped) return;
        this.#scheduleReconnect(e instanceof Error ? e.message : String(e));
      },
    );
  }

  #scheduleReconnect(reason: string): void {
    if (this.#stopped || this.#reconnectTimer !== undefined) return;
    const delayMs = this.#reconnect.next();
    this.#log('warn', 'reconnect', { attempt: this.#reconnect.attempts, delayMs, reason });
    this.#reconnectTimer = this.#after(delayMs, () => {
      this.#reconnectTimer = undefined;
      this.#connect();
    });
  }

  #onUp(): void {
    if (this.#stopped) return;
    this.stats.connects++;
    this.#log('info', 'connected');
    this.#emit({ type: 'connected' });
    for (const wake of this.#waitingForLink.splice(0)) wake();
    if (this.#cloud !== undefined) this.#subscribeControl();
    this.#sendKeyMessage();
    this.#pump();
  }

  #onDown(reason: string): void {
    if (this.#stopped) return;
    this.stats.disconnects++;
    this.#emit({ type: 'disconnected', reason });
    // The link has rejected every unacknowledged publish; make sure nothing waits as "in flight".
    this.#outbox.retryAll();
    if (this.#session !== undefined) this.#session.keyInFlight = false;
    this.#scheduleReconnect(reason);
  }

  #linkUp(): Promise<void> {
    if (this.#p.mqtt.connected || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#waitingForLink.push(resolve));
  }

  /** Resolves after `ms`, or at once when the app stops. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#stopHooks.delete(done);
        resolve();
      };
      const handle = this.#p.timers.setTimeout(() => {
        this.#timers.delete(handle);
        done();
      }, ms);
      this.#timers.add(handle);
      this.#stopHooks.add(done);
    });
  }

  // ------------------------------------------------------------------------------ enrollment & trust

  async #enroll(): Promise<Credentials | undefined> {
    const identity = this.#identity!;
    const settings = this.config.enroll;
    this.#retry.reset();
    while (!this.#stopped) {
      await this.#linkUp();
      if (this.#stopped) return undefined;
      try {
        const enrolled = await enrollDevice({
          mqtt: this.#p.mqtt,
          crypto: this.#p.crypto,
          key: identity.key,
          deviceId: this.#deviceId,
          prefix: this.config.prefix,
          ...(settings.credential === undefined ? {} : { credential: settings.credential }),
          ...(settings.ca === undefined ? {} : { ca: settings.ca }),
          ...(settings.caFingerprint === undefined ? {} : { caFingerprint: settings.caFingerprint }),
          now: () => this.#p.clock.now(),
          timers: this.#p.timers,
          ...(settings.retry === undefined ? {} : { retry: settings.retry }),
          cancel: {
            cancelled: () => this.#stopped,
            onCancel: (fn) => {
              this.#stopHooks.add(fn);
              return () => this.#stopHooks.delete(fn);
            },
          },
          onEvent: (e) =>
            this.#log(e.type === 'enrolled' ? 'info' : 'debug', `enroll-${e.type}`, { attempt: e.attempt }),
        });
        if (this.#stopped) return undefined;
        const credentials: Credentials = {
          deviceCertificate: enrolled.deviceCertificate,
          caCertificate: enrolled.caCertificate,
          cloudCertificate: enrolled.cloudCertificates[0]!,
        };
        this.#credentialStore.save(credentials);
        this.#log('info', 'enrolled', { attempts: enrolled.attempts, caTrust: enrolled.caTrust });
        return credentials;
      } catch (e) {
        if (this.#stopped) return undefined;
        const final = e instanceof EnrollmentError && e.final;
        this.#fail(final ? 'enroll-refused' : 'enroll-failed', e);
        // Keep trying: an operator may fix a refusal (allow-list, re-key); a final refusal waits longest.
        const delay = final ? this.config.retry.maxMs : this.#retry.next();
        await this.#sleep(delay);
      }
    }
    return undefined;
  }

  #loadStored(): void {
    try {
      this.#credentials = this.#credentialStore.load();
    } catch (e) {
      this.#fail('credentials-unreadable', e);
      this.#credentials = undefined;
    }
    if (this.#credentials !== undefined && !this.#certifiesOurKey(this.#credentials.deviceCertificate)) {
      this.#log('warn', 'credentials-mismatch', {
        reason: 'the stored device certificate is not for this key; enrolling again',
      });
      this.#credentials = undefined;
    }
  }

  /**
   * Offline provisioning: the configured certificates, checked exactly as an enrollment result is
   * (verifyCredentials), then stored (or the stored ones kept, see CredentialStore.adopt). False,
   * with one error line saying which certificate failed and why, when they do not verify.
   */
  #adoptProvisioned(configured: Credentials): boolean {
    const settings = this.config.enroll;
    try {
      verifyCredentials(
        this.#p.crypto,
        { ...configured, cloudCertificates: [configured.cloudCertificate] },
        {
          deviceId: this.#deviceId,
          publicKey: this.#identity!.key.publicKey,
          ...(settings.ca === undefined ? {} : { ca: settings.ca }),
          ...(settings.caFingerprint === undefined ? {} : { caFingerprint: settings.caFingerprint }),
          now: () => this.#p.clock.now(),
        },
      );
    } catch (e) {
      this.#fail('provisioning-refused', e, {
        action: 'refusing to send anything and not enrolling: the configured certificates do not verify',
      });
      return false;
    }
    try {
      const { credentials, stored } = this.#credentialStore.adopt(configured);
      this.#credentials = credentials;
      this.#log('info', 'provisioned', { source: 'configuration', stored });
    } catch (e) {
      // They verified: use them from memory this boot; the store is tried again on the next one.
      this.#fail('credentials-not-stored', e);
      this.#credentials = configured;
    }
    return true;
  }

  #certifiesOurKey(certificate: Uint8Array): boolean {
    // Only whether the certificate is for this device's key: it was checked against the CA when
    // it was stored, and the cloud checks it on every key message.
    try {
      return equal(parseCertificate(certificate).publicKey, this.#identity!.key.publicKey);
    } catch {
      return false;
    }
  }

  /** The cloud certificate checked against the stored CA, or undefined (logged) when it fails. */
  #verifyCloud(certificate: Uint8Array): TrustedCloud | undefined {
    try {
      return this.#checkCloud(certificate);
    } catch (e) {
      this.#fail('cloud-certificate-untrusted', e, {
        action: 'refusing to send anything: the cloud certificate does not verify against the CA',
      });
      return undefined;
    }
  }

  #subscribeControl(): void {
    if (this.#controlSubscribed || !this.#p.mqtt.connected) return;
    this.#controlSubscribed = true;
    this.#p.mqtt.subscribe(topic('control', this.#deviceId, this.config.prefix), { qos: 1 }).then(
      () => this.#log('debug', 'control-subscribed'),
      (e: unknown) => {
        this.#controlSubscribed = false; // tried again on the next connection
        if (!this.#stopped) this.#log('warn', 'control-subscribe-failed', { error: String(e) });
      },
    );
  }

  // ------------------------------------------------------------------------------ sessions

  #startSession(reason: RekeyReason): void {
    if (this.#stopped || this.#cloud === undefined) return;
    if (this.#startingSession) {
      this.#rekeyPending = reason;
      return;
    }
    this.#startingSession = true;
    try {
      if (this.#nextCloud !== undefined) {
        this.#cloud = this.#nextCloud;
        this.#nextCloud = undefined;
      }
      let kid: number;
      try {
        kid = this.#kids.next(); // persisted (reserved) before it is used anywhere
      } catch (e) {
        this.#fail('kid-allocation-failed', e);
        this.#after(this.#retry.next(), () => this.#startSession('retry'));
        return;
      }
      const rng = this.#p.rng;
      const key: SessionKey = { kid: encodeKid(kid), key: rng.randomBytes(16), baseIv: rng.randomBytes(12) };
      const keyMessage = makeKeyMessage(this.#p.crypto, {
        deviceId: this.#deviceId,
        deviceKey: this.#identity!.key,
        deviceCertificate: this.#credentials!.deviceCertificate,
        cloudPublicKey: this.#cloud.publicKey,
        session: key,
      });
      const previous = this.#session;
      if (previous !== undefined) {
        previous.key.key.fill(0);
        previous.key.baseIv.fill(0);
      }
      this.#session = {
        kid,
        key,
        seq: 0,
        startedAt: this.#p.clock.uptimeMs(),
        keyMessage,
        keyAcked: false,
        keyInFlight: false,
      };
      this.#retry.reset();
      this.stats.sessions++;
      if (reason !== 'boot') this.stats.rekeys++;
      this.#log('info', 'session', { kid, reason });
      this.#emit({ type: 'session', kid, reason, keyMessage });
      this.#setState('session');
      this.#sendKeyMessage();
    } finally {
      this.#startingSession = false;
    }
    const pending = this.#rekeyPending;
    if (pending !== undefined) {
      this.#rekeyPending = undefined;
      this.#startSession(pending);
    }
  }

  /** Publishes the current key message (QoS 2) unless it is acknowledged or in flight. */
  #sendKeyMessage(): void {
    const session = this.#session;
    if (session === undefined || session.keyAcked || session.keyInFlight || !this.#p.mqtt.connected || this.#stopped) {
      return;
    }
    session.keyInFlight = true;
    this.stats.keyMessages++;
    const timeout = this.#after(this.config.keyAckTimeoutMs, () => {
      // The QoS 2 flow did not complete in time: send the same bytes again (a duplicate for the cloud).
      if (this.#session === session && !session.keyAcked) {
        this.#log('warn', 'key-message-timeout', { kid: session.kid });
        session.keyInFlight = false;
        this.#sendKeyMessage();
      }
    });
    this.#p.mqtt.publish(topic('session', this.#deviceId, this.config.prefix), session.keyMessage, { qos: 2 }).then(
      () => {
        this.#cancel(timeout);
        if (this.#stopped) return;
        session.keyInFlight = false;
        if (session.keyAcked) return;
        session.keyAcked = true;
        this.stats.keyAcked++;
        this.#ackedKids.add(session.kid);
        this.#log('info', 'key-acked', { kid: session.kid });
        this.#emit({ type: 'key-acked', kid: session.kid });
        if (this.#session === session) this.#setState('sending');
        this.#pump();
      },
      (e: unknown) => {
        this.#cancel(timeout);
        if (this.#stopped) return;
        session.keyInFlight = false;
        this.#log('warn', 'key-message-failed', { kid: session.kid, error: String(e) });
        // Sent again on the next connection (#onUp), or soon when the link is still up.
        if (this.#p.mqtt.connected) this.#after(this.#retry.next(), () => this.#sendKeyMessage());
      },
    );
  }

  #rekeyDue(session: CurrentSession): RekeyReason | undefined {
    const policy = this.config.rekey;
    if (session.seq > policy.seqLimit) return 'seq-limit';
    if (policy.afterMessages > 0 && session.seq >= policy.afterMessages) return 'messages';
    if (policy.afterMs > 0 && this.#p.clock.uptimeMs() - session.startedAt >= policy.afterMs) return 'age';
    return undefined;
  }

  // ------------------------------------------------------------------------------ data

  #scheduleReading(): void {
    this.#after(this.config.intervalMs, () => {
      this.#takeReading();
      this.#scheduleReading();
    });
  }

  #takeReading(): void {
    let session = this.#session;
    if (session === undefined || this.#draining) return;
    const qos = this.config.dataQos;
    if (!this.#outbox.hasRoom(qos)) {
      this.stats.skipped++;
      return;
    }
    const due = this.#rekeyDue(session);
    if (due !== undefined) {
      this.#startSession(due);
      session = this.#session!;
      if (this.#rekeyDue(session) !== undefined) return;
    }
    const reading = this.#p.sensor.read();
    const time = this.#p.clock.now();
    const payload = encodeReading(time === undefined ? reading : { ...reading, time });
    const seq = session.seq++;
    const bytes = sealData(this.#p.crypto, session.key, seq, payload);
    const before = this.#outbox.counters.droppedQos0;
    this.#outbox.add({ kid: session.kid, seq, qos, bytes });
    this.stats.dropped += this.#outbox.counters.droppedQos0 - before;
    this.stats.sealed++;
    this.#emit({ type: 'sealed', kid: session.kid, seq, qos });
    this.#pump();
  }

  /** Publishes queued messages whose session key is known to the cloud, up to `maxInFlight`. */
  #pump(): void {
    const mqtt = this.#p.mqtt;
    const dataTopic = topic('data', this.#deviceId, this.config.prefix);
    while (!this.#stopped && mqtt.connected && this.#outbox.inFlight < this.config.maxInFlight) {
      const item = this.#outbox.take((kid) => this.#ackedKids.has(kid));
      if (item === undefined) return;
      if (item.attempts === 1) this.stats.sent++;
      else this.stats.resent++;
      mqtt.publish(dataTopic, item.bytes, { qos: item.qos }).then(
        () => this.#published(item),
        (e: unknown) => this.#publishFailed(item, e),
      );
    }
  }

  #published(item: OutboxItem): void {
    if (this.#stopped) return;
    this.#outbox.done(item);
    this.stats.acknowledged++;
    this.#emit({ type: 'acknowledged', kid: item.kid, seq: item.seq });
    this.#pump();
  }

  #publishFailed(item: OutboxItem, error: unknown): void {
    if (this.#stopped) return;
    this.#outbox.retry(item);
    this.#log('debug', 'publish-failed', { kid: item.kid, seq: item.seq, error: String(error) });
    // Lost connections are retried on the next connection; a refusal on a live one after a pause.
    if (this.#p.mqtt.connected) this.#after(this.#retry.next(), () => this.#pump());
  }

  // ------------------------------------------------------------------------------ control

  #onMessage(name: string, payload: Uint8Array): void {
    if (this.#stopped || name !== topic('control', this.#deviceId, this.config.prefix)) return;
    try {
      this.#control(payload);
    } catch (e) {
      this.#ignoreControl('?', `internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  #ignoreControl(request: string, reason: string, fields: LogFields = {}): void {
    this.stats.controlIgnored++;
    // A flood must not become a flood of log lines: at most CONTROL_LOG_LINES per interval.
    const now = this.#p.clock.uptimeMs();
    if (now - this.#controlLogFrom >= this.config.control.intervalMs) {
      this.#controlLogFrom = now;
      this.#controlLogLines = 0;
    }
    if (this.#controlLogLines < CONTROL_LOG_LINES) {
      this.#controlLogLines++;
      const suppressed = this.#controlLogSuppressed;
      this.#controlLogSuppressed = 0;
      this.#log('warn', 'control-ignored', { request, reason, ...fields, ...(suppressed > 0 ? { suppressed } : {}) });
    } else this.#controlLogSuppressed++;
    this.#emit({ type: 'control', request, accepted: false, reason });
  }

  /** Whether `count` more signature checks fit in this interval's budget (config.control). */
  #takeVerifications(count: number): boolean {
    const now = this.#p.clock.uptimeMs();
    const policy = this.config.control;
    if (now - this.#verifyFrom >= policy.intervalMs) {
      this.#verifyFrom = now;
      this.#verifications = 0;
    }
    if (this.#verifications + count > policy.maxVerifications) return false;
    this.#verifications += count;
    return true;
  }

  /**
   * docs/PROTOCOL.md §4.9. What costs no signature check comes first — size, structure, request,
   * the kid naming the current session, the re-key rate limit —, then the verification budget,
   * then the signature: under the cloud key in use, or the next one that key announced. A new
   * cloud certificate is taken only from a message signed so (never by its own key), issued by
   * the CA, and newer than the one in use: a retired (older) certificate cannot come back.
   */
  #control(payload: Uint8Array): void {
    const cloud = this.#cloud;
    const session = this.#session;
    if (cloud === undefined || session === undefined) {
      this.#ignoreControl('?', 'no session yet');
      return;
    }
    let claimed: ReturnType<typeof peekControlMessage>;
    try {
      claimed = peekControlMessage(payload); // unverified: only to refuse cheaply
    } catch (e) {
      this.#ignoreControl('?', describeError(e));
      return;
    }
    const kid = encodeKid(session.kid);
    if (!equal(claimed.kid, kid)) {
      this.#ignoreControl(claimed.request, 'stale-kid', { kid: toHex(claimed.kid), current: toHex(kid) });
      return;
    }
    const now = this.#p.clock.uptimeMs();
    if (claimed.request === 'rekey' && now - this.#lastCloudRekey < this.config.rekey.minIntervalMs) {
      this.#ignoreControl('rekey', 'rate-limited');
      return;
    }
    // Each key tried is one signature check (the message does not say which key signed it).
    const keys = [cloud.publicKey];
    if (this.#nextCloud !== undefined) keys.push(this.#nextCloud.publicKey);
    if (!this.#takeVerifications(keys.length)) {
      this.#ignoreControl(claimed.request, 'verification-limit', {
        limit: `${this.config.control.maxVerifications} per ${this.config.control.intervalMs} ms`,
      });
      return;
    }
    let opened: ReturnType<typeof openControlMessage>;
    try {
      opened = openControlMessage(this.#p.crypto, payload, { cloudPublicKeys: keys, deviceId: this.#deviceId });
    } catch (e) {
      this.#ignoreControl(claimed.request, describeError(e));
      return;
    }
    if (opened.request === 'rekey') {
      this.#lastCloudRekey = now;
      this.#accepted('rekey');
      this.#startSession('cloud');
      return;
    }
    // "cloud-certificate": checked against the CA, newer than the one in use, stored, used from the next session on.
    let next: TrustedCloud;
    try {
      next = this.#checkCloud(opened.cloudCertificate!);
    } catch (e) {
      this.#ignoreControl('cloud-certificate', describeError(e));
      return;
    }
    if (equal(next.certificate, cloud.certificate)) {
      this.#accepted('cloud-certificate', 'already in use');
      return;
    }
    const announced = this.#nextCloud;
    if (announced !== undefined && equal(next.certificate, announced.certificate)) {
      this.#accepted('cloud-certificate', 'already announced');
      return;
    }
    for (const [than, name] of [
      [cloud, 'the cloud certificate in use'],
      [announced, 'the one announced before'],
    ] as const) {
      if (than !== undefined && !issuedLater(next.certificate, than.certificate)) {
        this.#ignoreControl('cloud-certificate', `not newer than ${name} (a rollback): notBefore must be later`);
        return;
      }
    }
    try {
      this.#credentialStore.save({ ...this.#credentials!, cloudCertificate: next.certificate });
      this.#credentials = { ...this.#credentials!, cloudCertificate: next.certificate };
    } catch (e) {
      this.#fail('cloud-certificate-not-stored', e);
      return;
    }
    this.#nextCloud = next;
    this.#accepted('cloud-certificate', 'used from the next session on');
  }

  #checkCloud(certificate: Uint8Array): TrustedCloud {
    const publicKey = verifyCloudCertificate(
      this.#p.crypto,
      certificate,
      this.#credentials!.caCertificate,
      this.#p.clock.now(),
    );
    return { certificate, publicKey };
  }

  #accepted(request: string, reason = 'ok'): void {
    this.stats.controlAccepted++;
    this.#log('info', 'control-accepted', { request, reason });
    this.#emit({ type: 'control', request, accepted: true, reason });
  }
}

function describeError(e: unknown): string {
  if (isCoseError(e)) return e.message;
  return e instanceof Error ? e.message : String(e);
}
