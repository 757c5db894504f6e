/**
 * The pending buffer of PROTOCOL.md §6.1/§6.3: data messages whose kid is above the device's kid
 * floor but whose session has not arrived yet. MQTT orders messages per topic, not across the
 * `session` and `data` topics, and with a shared subscription the key message may even go to
 * another instance, so data can overtake its key message.
 *
 * Bounded, because what it holds is not yet authenticated: at most `perDevice` messages per device
 * (one sender cannot take the whole buffer) and `total` overall, each for at most `ttlMs`. A
 * message that does not fit is refused at once; one that expires is handed back by `expire()`;
 * the caller drops both as `unknown-kid`.
 */
import { toHex } from '../../src/bytes.js';

export interface PendingEntry<T> {
  deviceId: string;
  kid: Uint8Array;
  seq: number;
  addedAt: number;
  value: T;
}

export interface PendingGroup {
  deviceId: string;
  kid: Uint8Array;
  /** When the group was last looked for in the store (set by the caller). */
  checkedAt: number;
  oldest: number;
}

export interface PendingLimits {
  /** Messages per device (default 64). */
  perDevice?: number;
  /** Messages overall (default 1024). */
  total?: number;
  /** How long a message waits for its session, ms (default 10 000). */
  ttlMs?: number;
}

export const DEFAULT_PENDING: Required<PendingLimits> = { perDevice: 64, total: 1024, ttlMs: 10_000 };

interface Group<T> extends PendingGroup {
  entries: PendingEntry<T>[];
}

export class PendingBuffer<T> {
  readonly limits: Required<PendingLimits>;
  readonly #groups = new Map<string, Group<T>>();
  readonly #perDevice = new Map<string, number>();
  #size = 0;

  constructor(limits: PendingLimits = {}) {
    this.limits = { ...DEFAULT_PENDING, ...limits };
    for (const [name, v] of Object.entries(this.limits))
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`pending ${name} must be an integer ≥ 0, got ${v}`);
  }

  get size(): number {
    return this.#size;
  }

  /** Holds the message, or returns why it cannot. */
  add(entry: PendingEntry<T>): 'held' | 'device-full' | 'buffer-full' {
    const device = this.#perDevice.get(entry.deviceId) ?? 0;
    if (device >= this.limits.perDevice) return 'device-full';
    if (this.#size >= this.limits.total) return 'buffer-full';
    const key = groupKey(entry.deviceId, entry.kid);
    let group = this.#groups.get(key);
    if (group === undefined) {
      group = {
        deviceId: entry.deviceId,
        kid: entry.kid.slice(),
        checkedAt: entry.addedAt,
        oldest: entry.addedAt,
        entries: [],
      };
      this.#groups.set(key, group);
    }
    group.entries.push(entry);
    this.#perDevice.set(entry.deviceId, device + 1);
    this.#size++;
    return 'held';
  }

  /** Removes and returns the messages of (deviceId, kid), in sequence-number order. */
  take(deviceId: string, kid: Uint8Array): PendingEntry<T>[] {
    const key = groupKey(deviceId, kid);
    const group = this.#groups.get(key);
    if (group === undefined) return [];
    this.#groups.delete(key);
    this.#release(deviceId, group.entries.length);
    return group.entries.sort((a, b) => a.seq - b.seq);
  }

  /** The (device, kid) groups held now. */
  groups(): PendingGroup[] {
    return [...this.#groups.values()];
  }

  /** Removes and returns every message older than the TTL at `now`. */
  expire(now: number): PendingEntry<T>[] {
    const out: PendingEntry<T>[] = [];
    for (const [key, group] of this.#groups) {
      if (now - group.oldest < this.limits.ttlMs) continue;
      const keep = group.entries.filter((e) => now - e.addedAt < this.limits.ttlMs);
      const gone = group.entries.filter((e) => now - e.addedAt >= this.limits.ttlMs);
      out.push(...gone);
      this.#release(group.deviceId, gone.length);
      if (keep.length === 0) this.#groups.delete(key);
      else {
        group.entries = keep;
        group.oldest = Math.min(...keep.map((e) => e.addedAt));
      }
    }
    return out;
  }

  /** Removes and returns everything (shutdown). */
  clear(): PendingEntry<T>[] {
    const out = [...this.#groups.values()].flatMap((g) => g.entries);
    this.#groups.clear();
    this.#perDevice.clear();
    this.#size = 0;
    return out;
  }

  #release(deviceId: string, n: number): void {
    const left = (this.#perDevice.get(deviceId) ?? 0) - n;
    if (left > 0) this.#perDevice.set(deviceId, left);
    else this.#perDevice.delete(deviceId);
    this.#size -= n;
  }
}

function groupKey(deviceId: string, kid: Uint8Array): string {
  return `${deviceId}\u0000${toHex(kid)}`;
}
