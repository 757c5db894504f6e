/**
 * The device's connection to the broker, over the platform's `MqttLink` (src/platform/mqtt.ts):
 * one connection attempt at a time, exponential backoff with jitter between failed ones
 * (src/backoff.ts, `config.reconnect`), a wait for the link to be up (enrollment), subscriptions
 * made once, and the up/down events — counted, logged and emitted here, then handed to the app.
 * Runtime-neutral.
 */
import { Backoff } from '../backoff.js';
import type { MessageHandler } from '../platform/mqtt.js';
import { randomFraction } from '../platform/rng.js';
import type { DeviceContext } from './context.js';

export interface LinkHandlers {
  /** The link is up (and resubscribed). */
  up(): void;
  /** The link went down; every unacknowledged publish has been rejected. */
  down(reason: string): void;
  message: MessageHandler;
}

export class Link {
  readonly #ctx: DeviceContext;
  readonly #reconnect: Backoff;
  readonly #removers: (() => void)[] = [];
  readonly #subscribed = new Set<string>();
  #connecting = false;
  #reconnectTimer: unknown;
  #waiting: (() => void)[] = [];

  constructor(ctx: DeviceContext) {
    this.#ctx = ctx;
    this.#reconnect = new Backoff(ctx.config.reconnect, () => randomFraction(ctx.p.rng));
    ctx.onStop(() => {
      for (const remove of this.#removers.splice(0)) remove();
      for (const wake of this.#waiting.splice(0)) wake();
    });
  }

  get connected(): boolean {
    return this.#ctx.p.mqtt.connected;
  }

  /** Listens to the link and makes the first connection attempt. */
  start(handlers: LinkHandlers): void {
    const mqtt = this.#ctx.p.mqtt;
    this.#removers.push(
      mqtt.onUp(() => this.#up(handlers)),
      mqtt.onDown((down) => this.#down(handlers, down.reason)),
      mqtt.onMessage(handlers.message),
    );
    this.#connect();
  }

  /** Resolves once the link is up (at once when it is), or when the app stops. */
  waitUp(): Promise<void> {
    if (this.connected || this.#ctx.stopped) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /**
   * Subscribes (QoS 1) once the link is up; the link makes it again on every new connection. A
   * failed one is tried again on the next call (the app calls on every link-up). Logged as
   * `{what}-subscribed` / `{what}-subscribe-failed`.
   */
  subscribe(name: string, what: string): void {
    const ctx = this.#ctx;
    if (this.#subscribed.has(name) || !this.connected) return;
    this.#subscribed.add(name);
    ctx.p.mqtt.subscribe(name, { qos: 1 }).then(
      () => ctx.log('debug', `${what}-subscribed`),
      (e: unknown) => {
        this.#subscribed.delete(name); // tried again on the next connection
        if (!ctx.stopped) ctx.log('warn', `${what}-subscribe-failed`, { error: String(e) });
      },
    );
  }

  #connect(): void {
    if (this.#ctx.stopped || this.#connecting || this.connected) return;
    this.#connecting = true;
    this.#ctx.p.mqtt.connect().then(
      () => {
        this.#connecting = false;
        this.#reconnect.reset();
      },
      (e: unknown) => {
        this.#connecting = false;
        if (this.#ctx.stopped) return;
        this.#scheduleReconnect(e instanceof Error ? e.message : String(e));
      },
    );
  }

  #scheduleReconnect(reason: string): void {
    if (this.#ctx.stopped || this.#reconnectTimer !== undefined) return;
    const delayMs = this.#reconnect.next();
    this.#ctx.log('warn', 'reconnect', { attempt: this.#reconnect.attempts, delayMs, reason });
    this.#reconnectTimer = this.#ctx.after(delayMs, () => {
      this.#reconnectTimer = undefined;
      this.#connect();
    });
  }

  #up(handlers: LinkHandlers): void {
    const ctx = this.#ctx;
    if (ctx.stopped) return;
    ctx.stats.connects++;
    ctx.log('info', 'connected');
    ctx.emit({ type: 'connected' });
    for (const wake of this.#waiting.splice(0)) wake();
    handlers.up();
  }

  #down(handlers: LinkHandlers, reason: string): void {
    const ctx = this.#ctx;
    if (ctx.stopped) return;
    ctx.stats.disconnects++;
    ctx.emit({ type: 'disconnected', reason });
    handlers.down(reason);
    this.#scheduleReconnect(reason);
  }
}
