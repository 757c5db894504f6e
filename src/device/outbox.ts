/**
 * The bounded offline queue of sealed data messages, oldest first.
 *
 * - A message is sealed once (its kid and sequence number fixed) and sent as the same bytes on
 *   every attempt, so a resend is a duplicate the cloud recognises, never a new message.
 * - QoS 1 messages stay until the broker acknowledges them (PUBACK). A failed or interrupted
 *   publish puts the message back, in its place, for the next connection.
 * - QoS 0 messages leave when handed to the network. When the queue is full, the oldest QoS 0
 *   message not in flight is dropped to make room (counted); a QoS 1 message is never dropped.
 *   When the queue holds only QoS 1 messages, `hasRoom(1)` is false: the application then skips
 *   readings instead of sealing messages it could not keep (counted by the application).
 * Runtime-neutral.
 */
import type { QoS } from '../platform/mqtt.js';

export interface OutboxItem {
  /** The session kid counter the message was sealed under. */
  kid: number;
  seq: number;
  qos: 0 | 1;
  bytes: Uint8Array;
  inFlight: boolean;
  /** Publish attempts so far. */
  attempts: number;
}

export interface OutboxCounters {
  /** QoS 0 messages dropped because the queue was full (oldest first). */
  droppedQos0: number;
}

export class Outbox {
  readonly capacity: number;
  readonly counters: OutboxCounters = { droppedQos0: 0 };
  readonly #items: OutboxItem[] = [];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`outbox capacity ${capacity}: at least 1`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.#items.length;
  }

  get inFlight(): number {
    let n = 0;
    for (const item of this.#items) if (item.inFlight) n++;
    return n;
  }

  /** Whether a message of `qos` can be added now (possibly by dropping the oldest QoS 0 message). */
  hasRoom(qos: QoS): boolean {
    if (this.#items.length < this.capacity) return true;
    if (qos === 0) return true; // a new QoS 0 message replaces the oldest droppable one, or itself
    return this.#oldestDroppable() >= 0;
  }

  /**
   * Adds a sealed message at the end. When full, drops the oldest QoS 0 message not in flight;
   * when there is none, a QoS 0 message is itself dropped (returns false) and a QoS 1 message
   * throws (check `hasRoom` first).
   */
  add(item: Omit<OutboxItem, 'inFlight' | 'attempts'>): boolean {
    if (this.#items.length >= this.capacity) {
      const victim = this.#oldestDroppable();
      if (victim < 0) {
        if (item.qos === 0) {
          this.counters.droppedQos0++;
          return false;
        }
        throw new RangeError('the outbox is full of QoS 1 messages');
      }
      this.#items.splice(victim, 1);
      this.counters.droppedQos0++;
    }
    this.#items.push({ ...item, inFlight: false, attempts: 0 });
    return true;
  }

  /** The oldest message not in flight for which `ready(kid)` holds, marked in flight. */
  take(ready: (kid: number) => boolean): OutboxItem | undefined {
    for (const item of this.#items) {
      if (!item.inFlight && ready(item.kid)) {
        item.inFlight = true;
        item.attempts++;
        return item;
      }
    }
    return undefined;
  }

  /** The publish of `item` completed: it leaves the queue. */
  done(item: OutboxItem): void {
    const at = this.#items.indexOf(item);
    if (at >= 0) this.#items.splice(at, 1);
  }

  /** The publish of `item` failed or was interrupted: it waits, in its place, for the next try. */
  retry(item: OutboxItem): void {
    item.inFlight = false;
  }

  /** Every message back to waiting (the connection is gone). */
  retryAll(): void {
    for (const item of this.#items) item.inFlight = false;
  }

  #oldestDroppable(): number {
    return this.#items.findIndex((item) => item.qos === 0 && !item.inFlight);
  }
}
