/**
 * The data pump: every `intervalMs` a reading is taken from the sensor, encoded
 * (src/device/reading.ts), sealed with the current session's next sequence number
 * (src/profile/data-message.ts) into the bounded offline queue (src/device/outbox.ts) and published
 * with the configured QoS — only once the key message of its kid has completed its QoS 2 flow, at
 * most `maxInFlight` at a time. A session due for a re-key is replaced before its next message.
 * `drain` ends the readings and waits for the queue to empty. Runtime-neutral.
 */
import type { Backoff } from '../backoff.js';
import { sealData } from '../profile/data-message.js';
import { topic } from '../profile/topics.js';
import type { DeviceContext, RekeyReason } from './context.js';
import { Outbox, type OutboxItem } from './outbox.js';
import { encodeReading } from './reading.js';
import type { Sessions } from './session.js';

export class Pump {
  readonly #ctx: DeviceContext;
  readonly #sessions: Sessions;
  readonly #retry: Backoff;
  /** Starts a new session (through the app: its state follows). */
  readonly #rekey: (reason: RekeyReason) => void;
  readonly #outbox: Outbox;
  #draining = false;

  constructor(ctx: DeviceContext, sessions: Sessions, retry: Backoff, rekey: (reason: RekeyReason) => void) {
    this.#ctx = ctx;
    this.#sessions = sessions;
    this.#retry = retry;
    this.#rekey = rekey;
    this.#outbox = new Outbox(ctx.config.outboxCapacity);
  }

  /** Sealed data messages waiting in the offline queue (in flight included). */
  get queued(): number {
    return this.#outbox.size;
  }

  /** Takes a reading every `intervalMs` from now on. */
  start(): void {
    this.#ctx.after(this.#ctx.config.intervalMs, () => {
      this.#takeReading();
      this.start();
    });
  }

  /**
   * No more readings; resolves true once every queued message has been acknowledged, false when
   * `timeoutMs` passes first or the app stops.
   */
  drain(timeoutMs: number): Promise<boolean> {
    const ctx = this.#ctx;
    this.#draining = true;
    const deadline = ctx.p.clock.uptimeMs() + timeoutMs;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (drained: boolean) => {
        if (settled) return;
        settled = true;
        offStop();
        resolve(drained);
      };
      const offStop = ctx.onStop(() => settle(false));
      const check = () => {
        if (this.#outbox.size === 0) settle(true);
        else if (ctx.stopped || ctx.p.clock.uptimeMs() >= deadline) settle(false);
        else ctx.after(20, check);
      };
      check();
    });
  }

  /** The link went down and rejected every publish in flight: they wait for the next connection. */
  linkDown(): void {
    this.#outbox.retryAll();
  }

  /** Publishes queued messages whose session key is known to the cloud, up to `maxInFlight`. */
  pump(): void {
    const ctx = this.#ctx;
    const mqtt = ctx.p.mqtt;
    const dataTopic = topic('data', ctx.deviceId, ctx.config.prefix);
    while (!ctx.stopped && mqtt.connected && this.#outbox.inFlight < ctx.config.maxInFlight) {
      const item = this.#outbox.take((kid) => this.#sessions.acked(kid));
      if (item === undefined) return;
      if (item.attempts === 1) ctx.stats.sent++;
      else ctx.stats.resent++;
      mqtt.publish(dataTopic, item.bytes, { qos: item.qos }).then(
        () => this.#published(item),
        (e: unknown) => this.#publishFailed(item, e),
      );
    }
  }

  #takeReading(): void {
    const ctx = this.#ctx;
    if (this.#sessions.current === undefined || this.#draining) return;
    const qos = ctx.config.dataQos;
    if (!this.#outbox.hasRoom(qos)) {
      ctx.stats.skipped++;
      return;
    }
    const due = this.#sessions.rekeyDue();
    if (due !== undefined) {
      this.#rekey(due);
      if (this.#sessions.rekeyDue() !== undefined) return;
    }
    const session = this.#sessions.current!;
    const reading = ctx.p.sensor.read();
    const time = ctx.p.clock.now();
    const payload = encodeReading(time === undefined ? reading : { ...reading, time });
    const seq = session.seq++;
    const bytes = sealData(ctx.p.crypto, session.key, seq, payload);
    const before = this.#outbox.counters.droppedQos0;
    this.#outbox.add({ kid: session.kid, seq, qos, bytes });
    ctx.stats.dropped += this.#outbox.counters.droppedQos0 - before;
    ctx.stats.sealed++;
    ctx.emit({ type: 'sealed', kid: session.kid, seq, qos });
    this.pump();
  }

  #published(item: OutboxItem): void {
    const ctx = this.#ctx;
    if (ctx.stopped) return;
    this.#outbox.done(item);
    ctx.stats.acknowledged++;
    ctx.emit({ type: 'acknowledged', kid: item.kid, seq: item.seq });
    this.pump();
  }

  #publishFailed(item: OutboxItem, error: unknown): void {
    const ctx = this.#ctx;
    if (ctx.stopped) return;
    this.#outbox.retry(item);
    ctx.log('debug', 'publish-failed', { kid: item.kid, seq: item.seq, error: String(error) });
    // Lost connections are retried on the next connection; a refusal on a live one after a pause.
    if (ctx.p.mqtt.connected) ctx.after(this.#retry.next(), () => this.pump());
  }
}
