/**
 * The device application, the same on the ESP32, in the Moddable desktop simulator and in the
 * Node host simulator: one explicit state machine (`TRANSITIONS`, states × inputs → next state)
 * composing parts that each do one job. Everything it touches comes through the `Platform`
 * (src/platform); runtime-neutral (no Node or Moddable APIs).
 *
 *   boot ──▶ enrolling ──▶ (cloud certificate checked) ──▶ session ──▶ sending ──▶ session …
 *     │          ▲ no certificate yet: retried with backoff        │ key message    │ re-key: seq limit,
 *     └──────────┘                                                  │ QoS 2 pending  │ count, age, cloud
 *   untrusted: the cloud certificate, or the configured certificates, do not verify — nothing is
 *   ever sent (one clear log line)
 *
 * The parts (src/device/):
 * - context.ts: platform, config, stats, events, log lines, timers (all cancelled by stop());
 * - link.ts: connecting, one attempt at a time, backoff between them, up/down;
 * - trust.ts: the certificates (configured, stored or enrolled) and the cloud certificate in use;
 * - session.ts: kids, session keys, the key message's QoS 2 life cycle, when to re-key;
 * - pump.ts: reading → seal → offline queue → publish;
 * - control.ts: what a control message (`{prefix}/{id}/control`, src/profile/control.ts) asks,
 *   decided without I/O; signature checks and control-ignored log lines are capped per interval.
 * Failed session starts, enrollment attempts and publishes on a live link wait one shared backoff
 * (`config.retry`, src/backoff.ts). `printCsr`: boot logs the certification request and stops.
 */

import { Backoff } from '../backoff.js';
import { makeCsr } from '../pki/csr.js';
import { toBase64 } from '../pki/pem.js';
import type { Platform } from '../platform/index.js';
import type { LogFields } from '../platform/log.js';
import { randomFraction } from '../platform/rng.js';
import { receiveControlMessage } from '../profile/control.js';
import { topic } from '../profile/topics.js';
import type { DeviceConfig } from './config.js';
import { DeviceContext, type DeviceEvent, type DeviceState, type DeviceStats, type RekeyReason } from './context.js';
import { type ControlView, decideControl, overBudget, RateWindow, screenControl } from './control.js';
import { defaultDeviceId } from './identity.js';
import { Link } from './link.js';
import { Pump } from './pump.js';
import { Sessions } from './session.js';
import { Trust } from './trust.js';

export type { DeviceEvent, DeviceState, DeviceStats, RekeyReason } from './context.js';

export interface DeviceAppOptions {
  onEvent?: (event: DeviceEvent) => void;
}

/**
 * What moves the state machine: no certificates at boot (`enroll`), certificates that do not verify
 * (`refuse`), a session started, its key message's QoS 2 flow completed (`key-acked`), `stop()`.
 */
export type DeviceInput = 'enroll' | 'refuse' | 'session' | 'key-acked' | 'stop';

/** The transitions; an input a state does not list leaves it as it is. */
export const TRANSITIONS: Readonly<Record<DeviceState, Partial<Record<DeviceInput, DeviceState>>>> = {
  boot: { enroll: 'enrolling', refuse: 'untrusted', session: 'session', stop: 'stopped' },
  enrolling: { refuse: 'untrusted', session: 'session', stop: 'stopped' },
  untrusted: { stop: 'stopped' },
  session: { session: 'session', 'key-acked': 'sending', stop: 'stopped' },
  sending: { session: 'session', stop: 'stopped' },
  stopped: {},
};

/** control-ignored log lines per control interval; the rest are counted (`suppressed`). */
const CONTROL_LOG_LINES = 20;

export class DeviceApp {
  readonly config: DeviceConfig;
  readonly stats: DeviceStats;
  readonly #p: Platform;
  readonly #ctx: DeviceContext;
  readonly #retry: Backoff;
  readonly #link: Link;
  readonly #sessions: Sessions;
  readonly #pump: Pump;
  readonly #verifications: RateWindow;
  readonly #controlLog: RateWindow;
  #controlLogSuppressed = 0;
  #trust: Trust | undefined;
  #state: DeviceState = 'boot';
  #lastCloudRekey = -Infinity;

  constructor(platform: Platform, config: DeviceConfig, options: DeviceAppOptions = {}) {
    this.#p = platform;
    this.config = config;
    const ctx = new DeviceContext(platform, config, options.onEvent ?? (() => {}));
    this.#ctx = ctx;
    this.stats = ctx.stats;
    this.#retry = new Backoff(config.retry, () => randomFraction(platform.rng));
    this.#link = new Link(ctx);
    this.#sessions = new Sessions(ctx, this.#retry, {
      material: () => this.#trust!.forNewSession(),
      started: () => this.#input('session'),
      acked: (session) => {
        if (this.#sessions.current === session) this.#input('key-acked');
        this.#pump.pump();
      },
    });
    this.#pump = new Pump(ctx, this.#sessions, this.#retry, (reason) => this.#startSession(reason));
    this.#verifications = new RateWindow(config.control.intervalMs, config.control.maxVerifications);
    this.#controlLog = new RateWindow(config.control.intervalMs, CONTROL_LOG_LINES);
  }

  get state(): DeviceState {
    return this.#state;
  }

  get deviceId(): string {
    return this.#ctx.deviceId;
  }

  /** The current session's kid counter (undefined before the first session). */
  get kid(): number | undefined {
    return this.#sessions.current?.kid;
  }

  /** Whether the MQTT connection is up. */
  get connected(): boolean {
    return this.#link.connected;
  }

  /** Sealed data messages waiting in the offline queue (in flight included). */
  get queued(): number {
    return this.#pump.queued;
  }

  /**
   * Boots: identity, certificates, connection; then enrolls when needed, checks the cloud
   * certificate, starts the first session and the readings. Resolves once the first session has
   * been started (or the device has stopped, or refuses to send).
   */
  async start(): Promise<void> {
    if (this.#state !== 'boot') throw new Error(`start() in state ${this.#state}`);
    const ctx = this.#ctx;
    const identity = this.#p.huk.identity();
    ctx.deviceId = this.config.deviceId ?? defaultDeviceId(identity);
    ctx.log('info', 'boot', {
      deviceId: ctx.deviceId,
      keySource: identity.source,
      kidReserved: this.#sessions.reservation(),
    });
    if (this.config.printCsr === true) {
      // One token (no spaces, no quoting) on the serial console: `base64 -d` makes it the DER `ca issue --csr` takes.
      ctx.log('info', 'csr', { csr: toBase64(makeCsr(this.#p.crypto, identity.key, ctx.deviceId)) });
      await this.stop();
      return;
    }
    const trust = new Trust(ctx, identity);
    this.#trust = trust;
    if (this.config.provisioned !== undefined) {
      if (!trust.adoptProvisioned(this.config.provisioned)) {
        this.#input('refuse'); // never enrolls instead: the factory's certificates are wrong
        return;
      }
    } else trust.loadStored();
    this.#link.start({
      up: () => {
        if (trust.cloud !== undefined) this.#subscribeControl();
        this.#sessions.sendKeyMessage();
        this.#pump.pump();
      },
      down: () => {
        // The link has rejected every unacknowledged publish; make sure nothing waits as "in flight".
        this.#pump.linkDown();
        this.#sessions.linkDown();
      },
      message: (name, payload) => this.#onMessage(name, payload),
    });
    if (trust.credentials === undefined) {
      this.#input('enroll');
      if (!(await trust.enroll(this.#link, this.#retry))) return; // stopped
    }
    if (ctx.stopped) return;
    if (!trust.trustCloud()) {
      this.#input('refuse');
      return;
    }
    this.#subscribeControl();
    this.#startSession('boot');
    this.#pump.start();
  }

  /** Stops everything: timers, the connection. Nothing is written to the store. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#input('stop');
    await this.#p.mqtt.close();
  }

  /**
   * Stops taking readings and waits until every queued data message has been acknowledged (true),
   * or `timeoutMs` has passed (false); then `stop()`. For a clean end of a run (the demo, tests):
   * what was sealed is delivered rather than left in the queue.
   */
  drain(timeoutMs: number): Promise<boolean> {
    return this.#pump.drain(timeoutMs);
  }

  /** Starts a new session now (for tools and tests; the cloud's way is the control topic). */
  rekey(reason: RekeyReason = 'cloud'): void {
    if (this.#sessions.current !== undefined) this.#startSession(reason);
  }

  /** Moves the state machine (TRANSITIONS); each change is logged and emitted. */
  #input(input: DeviceInput): void {
    const next = TRANSITIONS[this.#state][input];
    if (next === undefined || next === this.#state) return;
    this.#state = next;
    if (next === 'stopped') this.#ctx.stop(); // timers cancelled, waits ended, link handlers removed
    this.#ctx.log('info', 'state', { state: next });
    this.#ctx.emit({ type: 'state', state: next });
  }

  #startSession(reason: RekeyReason): void {
    if (!this.#ctx.stopped && this.#trust?.cloud !== undefined) this.#sessions.start(reason);
  }

  #subscribeControl(): void {
    this.#link.subscribe(topic('control', this.#ctx.deviceId, this.config.prefix), 'control');
  }

  // ------------------------------------------------------------------------------ control

  #onMessage(name: string, payload: Uint8Array): void {
    if (this.#ctx.stopped || name !== topic('control', this.#ctx.deviceId, this.config.prefix)) return;
    try {
      this.#control(payload);
    } catch (e) {
      this.#ignoreControl('?', `internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * docs/PROTOCOL.md §4.9: what costs no signature check first (screenControl), then the
   * verification budget, then the signature — under the cloud key in use, or the next one that key
   * announced —, then what the message asks (decideControl).
   */
  #control(payload: Uint8Array): void {
    const ctx = this.#ctx;
    const trust = this.#trust;
    const session = this.#sessions.current;
    if (trust?.cloud === undefined || session === undefined) {
      this.#ignoreControl('?', 'no session yet');
      return;
    }
    const view: ControlView = {
      kid: session.kid,
      now: this.#p.clock.uptimeMs(),
      lastCloudRekey: this.#lastCloudRekey,
      minRekeyIntervalMs: this.config.rekey.minIntervalMs,
      cloud: trust.cloud,
      next: trust.next,
    };
    // Each key tried is one signature check (the message does not say which key signed it).
    const keys = [view.cloud.publicKey];
    if (view.next !== undefined) keys.push(view.next.publicKey);
    const received = receiveControlMessage(this.#p.crypto, payload, {
      cloudPublicKeys: keys,
      deviceId: ctx.deviceId,
      caCertificate: trust.credentials!.caCertificate,
      now: this.#p.clock.now(),
      admit: (claimed, checks) =>
        screenControl(claimed, view) ??
        (this.#verifications.take(view.now, checks) ? undefined : overBudget(claimed, this.config.control)),
    });
    if (!received.ok) {
      this.#ignoreControl(received.request, received.reason, received.fields);
      return;
    }
    const action = decideControl(received.message, received.announced, view);
    if (action.type === 'rekey') {
      this.#lastCloudRekey = view.now;
      this.#accepted('rekey');
      this.#startSession('cloud');
    } else if (action.type === 'accept') this.#accepted(action.request, action.reason);
    else if (action.type === 'ignore') this.#ignoreControl(action.request, action.reason);
    else if (trust.announce(action.cloud)) this.#accepted('cloud-certificate', 'used from the next session on');
  }

  #ignoreControl(request: string, reason: string, fields: LogFields = {}): void {
    const ctx = this.#ctx;
    ctx.stats.controlIgnored++;
    // A flood must not become a flood of log lines: at most CONTROL_LOG_LINES per interval.
    if (this.#controlLog.take(this.#p.clock.uptimeMs())) {
      const suppressed = this.#controlLogSuppressed;
      this.#controlLogSuppressed = 0;
      ctx.log('warn', 'control-ignored', { request, reason, ...fields, ...(suppressed > 0 ? { suppressed } : {}) });
    } else this.#controlLogSuppressed++;
    ctx.emit({ type: 'control', request, accepted: false, reason });
  }

  #accepted(request: string, reason = 'ok'): void {
    this.#ctx.stats.controlAccepted++;
    this.#ctx.log('info', 'control-accepted', { request, reason });
    this.#ctx.emit({ type: 'control', request, accepted: true, reason });
  }
}
