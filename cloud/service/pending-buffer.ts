/**
 * The pending buffer of PROTOCOL.md §6.1/§6.3: data messages whose kid is above the device's kid
 * floor but whose session has not arrived yet. MQTT orders messages per topic, not across the
 * `session` and `data` topics, and with a shared subscription the key message may even go to
 * another instance, so data can overtake its key message.
 *
 * Bounded, because what it holds is not yet authenticated: at most `perKid` messages per
 * (device, kid), `perDevice` per device (one sender cannot take the whole buffer) and `total`
 * overall, each for at most `ttlMs`. Entries are marked `plausible` by the caller (a known device,
 * a kid just above its floor) or not (an unknown device, a kid far above the floor: what cannot be
 * real). A plausible message that does not fit evicts an implausible one — of the same device when
 * the device's quota is full, the largest such group when the buffer is — and the evicted entry is
 * handed to `onEvict`. A message that still does not fit is refused with the reason; one that
 * expires is handed back by `expire()`. The caller decides what refusal means (the receiver leaves
 * such data unacknowledged, so the broker delivers it again).
 */
import { toHex } from '../../src/bytes.js';

export interface PendingEntry<T> {
  deviceId: string;
  kid: Uint8Array;
  seq: number;
  addedAt: number;
  value: T;
  /** Could be real (a known device, a kid near its floor): evicted last. Default true. */
  plausible?: boolean;
}

export interface PendingGroup {
  deviceId: string;
  kid: Uint8Array;
  /** When the group was last looked for in the store (set by the caller). */
  checkedAt: number;
  oldest: number;
}

export interface PendingLimits {
  /** Messages per (device, kid) (default 64, at most perDevice). */
  perKid?: number;
  /** Messages per device (default 64). */
  perDevice?: number;
  /** Messages overall (default 1024). */
  total?: number;
  /** How long a message waits for its session, ms (default 10 000). */
  ttlMs?: number;
}

export const DEFAULT_PENDING: Required<PendingLimits> = { perKid: 64, perDevice: 64, total: 1024, ttlMs: 10_000 };

export type PendingRefusal = 'kid-full' | 'device-full' | 'buffer-full';

interface Group<T> extends PendingGroup {
  entries: PendingEntry<T>[];
  plausible: boolean;
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

  /**
   * Holds the message, or returns why it cannot. A plausible message may evict implausible ones
   * to fit: each goes to `onEvict` (no longer held).
   */
  add(entry: PendingEntry<T>, onEvict: (evicted: PendingEntry<T>) => void = () => {}): 'held' | PendingRefusal {
    const key = groupKey(entry.deviceId, entry.kid);
    const plausible = entry.plausible !== false;
    if ((this.#groups.get(key)?.entries.length ?? 0) >= Math.min(this.limits.perKid, this.limits.perDevice))
      return 'kid-full';
    if ((this.#perDevice.get(entry.deviceId) ?? 0) >= this.limits.perDevice) {
      const victim = plausible ? this.#implausible(entry.deviceId, key) : undefined;
      if (victim === undefined) return 'device-full';
      onEvict(this.#evict(victim));
    }
    if (this.#size >= this.limits.total) {
      const victim = plausible ? this.#implausible(undefined, key) : undefined;
      if (victim === undefined) return 'buffer-full';
      onEvict(this.#evict(victim));
    }
    let group = this.#groups.get(key);
    if (group === undefined) {
      group = {
        deviceId: entry.deviceId,
        kid: entry.kid.slice(),
        checkedAt: entry.addedAt,
        oldest: entry.addedAt,
        entries: [],
        plausible,
      };
      this.#groups.set(key, group);
    }
    group.entries.push(entry);
    this.#perDevice.set(entry.deviceId, (this.#perDevice.get(entry.deviceId) ?? 0) + 1);
    this.#size++;
    return 'held';
  }

  /** The largest implausible group (of `deviceId` if given), other than `except`. */
  #implausible(deviceId: string | undefined, except: string): [string, Group<T>] | undefined {
    let best: [string, Group<T>] | undefined;
    for (const [key, group] of this.#groups) {
      if (group.plausible || key === except || (deviceId !== undefined && group.deviceId !== deviceId)) continue;
      if (best === undefined || group.entries.length > best[1].entries.length) best = [key, group];
    }
    return best;
  }

  /** Removes the newest entry of a group. */
  #evict([key, group]: [string, Group<T>]): PendingEntry<T> {
    const entry = group.entries.pop()!;
    if (group.entries.length === 0) this.#groups.delete(key);
    this.#release(group.deviceId, 1);
    return entry;
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
