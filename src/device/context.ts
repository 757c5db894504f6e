/**
 * What every part of the device application shares (src/device/app.ts composes them): the
 * platform and configuration, the counters (`DeviceStats`) and events (`DeviceEvent`), log lines
 * tagged with the device id, and the timers — every timer any part sets is cancelled by `stop()`,
 * and every wait ends then. Runtime-neutral (no Node or Moddable APIs).
 */
import type { Platform } from '../platform/index.js';
import type { LogFields, LogLevel } from '../platform/log.js';
import type { DeviceConfig } from './config.js';

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

export class DeviceContext {
  readonly p: Platform;
  readonly config: DeviceConfig;
  readonly stats: DeviceStats = newStats();
  readonly emit: (event: DeviceEvent) => void;
  /** Set by the app once boot has found it (log lines carry it). */
  deviceId = '';
  #stopped = false;
  readonly #timers = new Set<unknown>();
  /** Called once by stop(): whatever waits (sleeps, drains, enrollment, the link) ends. */
  readonly #stopHooks = new Set<() => void>();

  constructor(platform: Platform, config: DeviceConfig, emit: (event: DeviceEvent) => void) {
    this.p = platform;
    this.config = config;
    this.emit = emit;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Cancels every timer and ends every wait; nothing runs after it. */
  stop(): void {
    this.#stopped = true;
    for (const handle of this.#timers) this.p.timers.clearTimeout(handle);
    this.#timers.clear();
    for (const hook of [...this.#stopHooks]) hook();
    this.#stopHooks.clear();
  }

  /** Calls `fn` once on stop(); returns its remover. */
  onStop(fn: () => void): () => void {
    this.#stopHooks.add(fn);
    return () => this.#stopHooks.delete(fn);
  }

  log(level: LogLevel, event: string, fields: LogFields = {}): void {
    this.p.log.log(level, event, { device: this.deviceId, ...fields });
  }

  fail(event: string, error: unknown, fields: LogFields = {}): void {
    this.stats.errors++;
    this.log('error', event, { ...fields, error: error instanceof Error ? error.message : String(error) });
  }

  /** Runs `work` after `ms` unless stopped by then; what it throws is logged (`internal-error`). */
  after(ms: number, work: () => void): unknown {
    const handle = this.p.timers.setTimeout(() => {
      this.#timers.delete(handle);
      if (this.#stopped) return;
      try {
        work();
      } catch (e) {
        this.fail('internal-error', e);
      }
    }, ms);
    this.#timers.add(handle);
    return handle;
  }

  cancel(handle: unknown): void {
    if (handle === undefined) return;
    this.p.timers.clearTimeout(handle);
    this.#timers.delete(handle);
  }

  /** Resolves after `ms`, or at once when stopped. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#stopHooks.delete(done);
        resolve();
      };
      const handle = this.p.timers.setTimeout(() => {
        this.#timers.delete(handle);
        done();
      }, ms);
      this.#timers.add(handle);
      this.#stopHooks.add(done);
    });
  }
}
