/**
 * Who the service tells what it did: payload handlers (each stored payload, after its commit and
 * before its acknowledgement; one that throws is logged, the payload stays stored) and event
 * handlers (sessions stored, refusals, duplicates), in the order they were added. Plug-ins
 * (`ServicePlugin`, e.g. the live dashboard) add one of each.
 */
import type { ServiceEvent, ServiceEventHandler } from '../telemetry/events.js';
import type { DeliveredPayload } from '../telemetry/payload.js';
import type { ServicePlugin } from '../telemetry/plugin.js';
import type { Logger } from './log.js';

export type PayloadHandler = (payload: DeliveredPayload) => void | Promise<void>;

export class ServiceObservers {
  readonly #log: Logger;
  readonly #payloads = new Set<PayloadHandler>();
  readonly #events = new Set<ServiceEventHandler>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Adds a payload handler; returns its removal. */
  onPayload(handler: PayloadHandler): () => void {
    this.#payloads.add(handler);
    return () => this.#payloads.delete(handler);
  }

  /** Adds an event handler; returns its removal. */
  onEvent(handler: ServiceEventHandler): () => void {
    this.#events.add(handler);
    return () => this.#events.delete(handler);
  }

  /** Feeds a plug-in from now on. */
  plug(plugin: ServicePlugin): void {
    if (plugin.onEvent !== undefined) this.onEvent(plugin.onEvent);
    if (plugin.onPayload !== undefined) this.onPayload(plugin.onPayload);
  }

  /**
   * Runs every payload handler, one after another (an async one finishes before the next starts).
   * Returns a promise only when a handler returned one; with synchronous handlers it is done when
   * it returns (no promise per payload).
   */
  deliver(payload: DeliveredPayload): Promise<void> | void {
    const handlers = this.#payloads.values();
    for (let next = handlers.next(); !next.done; next = handlers.next()) {
      let result: void | Promise<void>;
      try {
        result = next.value(payload);
      } catch (e) {
        this.#failed(payload, e);
        continue;
      }
      if (result !== undefined && typeof (result as Promise<void>).then === 'function')
        return this.#rest(payload, result as Promise<void>, handlers);
    }
  }

  /** Once `running` (a handler's promise) settles, the handlers after it, one after another. */
  async #rest(payload: DeliveredPayload, running: Promise<void>, handlers: Iterator<PayloadHandler>): Promise<void> {
    try {
      await running;
    } catch (e) {
      this.#failed(payload, e);
    }
    for (let next = handlers.next(); !next.done; next = handlers.next()) {
      try {
        await next.value(payload);
      } catch (e) {
        this.#failed(payload, e);
      }
    }
  }

  #failed(payload: DeliveredPayload, e: unknown): void {
    this.#log.error(
      {
        event: 'handler-failed',
        deviceId: payload.deviceId,
        kid: payload.kidHex,
        seq: payload.seq,
        error: String(e),
      },
      'a payload handler threw (the payload is stored)',
    );
  }

  /** Tells every event handler (a handler that throws: the settler logs it). */
  emit(event: ServiceEvent): void {
    for (const handler of this.#events) handler(event);
  }
}
