/**
 * The live view of a running cloud service: what the dashboard page (cloud/dashboard/public/) and
 * the demo's terminal view show. Fed by the service's events and delivered payloads; `snapshot()`
 * is a plain JSON-able object, sent to the page once a second over server-sent events.
 *
 * Bounded whatever the traffic: at most `maxDevices` devices (the least recently heard of are
 * forgotten first), a fixed ring of per-second counts, the last `maxRecent` refusals and the last
 * `maxLatencySamples` latencies. Each refusal's `detail` is cut to MAX_DETAIL_CHARS and a reading
 * whose JSON is longer than `maxReadingChars` (default 512) is shown as a short note instead, so a
 * snapshot stays small however large the messages (a few hundred bytes per device).
 *
 * Cheap on the service's message path whatever the rate: a payload is only counted and kept (the
 * device's last one, not copied); readings are decoded when a snapshot is taken (the last one of
 * each device, once), and for the latency a random sample of about `latencySamplesPerSecond`
 * payloads a second (default 100: every payload up to 100 per second; above, each payload with
 * probability 100 ÷ the last second's count, so a burst's last payloads are as likely to be
 * taken as its first).
 */

import { truncateDetail } from '../telemetry/detail.js';
import type { ServiceEvent } from '../telemetry/events.js';
import { type DeliveredPayload, decodePayload } from '../telemetry/payload.js';

export interface LiveDevice {
  deviceId: string;
  /** The kid (hex) of the device's newest session, and when the service stored it. */
  kid: string | null;
  sessionAt: number | null;
  sessions: number;
  /** The highest sequence number stored under `kid`. */
  seq: number | null;
  /** When the last payload of the device was stored. */
  lastAt: number | null;
  messages: number;
  rejected: number;
  /** The last payload, decoded from CBOR to JSON (undefined when it is not CBOR). */
  reading?: unknown;
}

export interface RejectionEntry {
  at: number;
  kind: string;
  reason: string;
  deviceId?: string;
  kid?: string;
  seq?: number;
  detail: string;
}

export interface LatencySummary {
  /** Samples in the summary (the most recent ones). */
  samples: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

/** One cloud key and how many devices' latest sessions were sealed to it (rotation progress). */
export interface CloudKeyCount {
  /** The cloud key id (hex). */
  kid: string;
  /** The key devices are given now; the others are older keys still loaded (or no longer). */
  current: boolean;
  /** False for a key retired for good: its devices cannot open a session until they move. */
  loaded: boolean;
  devices: number;
  /** Epoch ms after which an older key is no longer accepted; null when none. */
  retireAt: number | null;
}

/** At most this many cloud keys in a snapshot (current first, then by devices). */
export const MAX_CLOUD_KEYS = 16;

export interface LiveSnapshot {
  /** Epoch milliseconds of the snapshot, and of the start of the view. */
  at: number;
  startedAt: number;
  totals: { sessions: number; accepted: number; duplicates: number; rejected: number };
  /** Payloads stored per second, oldest first; the last entry is the last whole second before `at`. */
  rate: number[];
  /** Payloads per second over the last five whole seconds. */
  perSecond: number;
  devices: LiveDevice[];
  /** Devices forgotten because there were more than the view keeps. */
  devicesDropped: number;
  rejections: Record<string, number>;
  recentRejections: RejectionEntry[];
  /**
   * End to end: from the reading's time stamp on the device ("t", epoch ms, when the device knows
   * the time) to its payload being stored and delivered. Null before the first such payload.
   */
  latency: LatencySummary | null;
  /**
   * The cloud keys with the number of devices whose latest session (stored since the service
   * started) was sealed to each: during a rotation, devices moving from the old key to the new one.
   * Current key first; at most MAX_CLOUD_KEYS.
   */
  cloudKeys: CloudKeyCount[];
  /** What the page may show besides (the demo's attack report, …). */
  extra?: Record<string, unknown>;
}

export interface LiveStateOptions {
  now?: () => number;
  /** Seconds of history in `rate` (default 120). */
  seconds?: number;
  maxDevices?: number;
  maxRecent?: number;
  maxLatencySamples?: number;
  /** Longest reading (as JSON) shown; longer ones are replaced by a note (default 512). */
  maxReadingChars?: number;
  /** About this many payloads a second are decoded for their latency (default 100; Infinity: all). */
  latencySamplesPerSecond?: number;
  /** Uniform in [0, 1) (default Math.random): picks the sample. */
  random?: () => number;
  /** Told each latency sample, ms from the reading's `t` to stored (the service's /metrics histogram). */
  onLatency?: (ms: number) => void;
}

/**
 * A `t` before 2020 is not a time stamp (a device whose clock is not set, or an application's own
 * `t`): it gives no latency.
 */
export const MIN_TIME_STAMP_MS = Date.UTC(2020, 0, 1);

/** A device's last payload, and what it decoded to once a snapshot asked. */
interface LastPayload {
  bytes: Uint8Array;
  /** Set once decoded: the reading to show, or null when the payload is not CBOR. */
  shown: { reading: unknown } | null | undefined;
}

export class LiveState {
  readonly #now: () => number;
  readonly #seconds: number;
  readonly #maxDevices: number;
  readonly #maxRecent: number;
  readonly #maxLatency: number;
  readonly #maxReading: number;
  readonly #samplesPerSecond: number;
  readonly #random: () => number;
  readonly #onLatency: ((ms: number) => void) | undefined;
  readonly #lastPayload = new WeakMap<LiveDevice, LastPayload>();
  readonly #startedAt: number;
  readonly #devices = new Map<string, LiveDevice>();
  /** Ring of per-second counts, indexed by epoch second modulo its length. */
  readonly #counts: number[];
  readonly #countSecond: number[];
  readonly #rejections: Record<string, number> = {};
  readonly #recent: RejectionEntry[] = [];
  readonly #latencies: number[] = [];
  #latencyNext = 0;
  #devicesDropped = 0;
  readonly #totals = { sessions: 0, accepted: 0, duplicates: 0, rejected: 0 };
  #extra: (() => Record<string, unknown> | undefined) | undefined;
  #cloudKeys: (() => CloudKeyCount[]) | undefined;

  constructor(options: LiveStateOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#seconds = options.seconds ?? 120;
    this.#maxDevices = options.maxDevices ?? 500;
    this.#maxRecent = options.maxRecent ?? 20;
    this.#maxLatency = options.maxLatencySamples ?? 1000;
    this.#maxReading = options.maxReadingChars ?? 512;
    this.#samplesPerSecond = options.latencySamplesPerSecond ?? 100;
    this.#random = options.random ?? Math.random;
    this.#onLatency = options.onLatency;
    this.#startedAt = this.#now();
    this.#counts = new Array(this.#seconds + 1).fill(0);
    this.#countSecond = new Array(this.#seconds + 1).fill(-1);
  }

  /** Adds a source of `extra` fields to every snapshot. */
  setExtra(source: () => Record<string, unknown> | undefined): void {
    this.#extra = source;
  }

  /** Sets where the snapshot's `cloudKeys` come from (the service's keys and per-key counts). */
  setCloudKeys(source: () => CloudKeyCount[]): void {
    this.#cloudKeys = source;
  }

  /** Takes one service event (pass this to the service's `onEvent`). */
  record(event: ServiceEvent): void {
    switch (event.type) {
      case 'session': {
        this.#totals.sessions++;
        const d = this.#device(event.deviceId);
        d.kid = event.kidHex;
        d.sessionAt = event.at;
        d.sessions++;
        d.seq = null;
        return;
      }
      case 'duplicate':
        this.#totals.duplicates++;
        return;
      case 'rejected': {
        this.#totals.rejected++;
        this.#rejections[event.reason] = (this.#rejections[event.reason] ?? 0) + 1;
        const entry: RejectionEntry = {
          at: event.at,
          kind: event.kind,
          reason: event.reason,
          detail: truncateDetail(event.detail),
        };
        if (event.deviceId !== undefined) {
          entry.deviceId = event.deviceId;
          const d = this.#devices.get(event.deviceId);
          if (d !== undefined) d.rejected++;
        }
        if (event.kidHex !== undefined) entry.kid = event.kidHex;
        if (event.seq !== undefined) entry.seq = event.seq;
        this.#recent.push(entry);
        if (this.#recent.length > this.#maxRecent) this.#recent.shift();
        return;
      }
    }
  }

  /** Takes one stored payload (pass this to the service's `onPayload`). */
  recordPayload(p: DeliveredPayload): void {
    const now = this.#now();
    this.#totals.accepted++;
    const second = Math.floor(now / 1000);
    const slot = second % this.#counts.length;
    if (this.#countSecond[slot] !== second) {
      this.#countSecond[slot] = second;
      this.#counts[slot] = 0;
    }
    this.#counts[slot]!++;
    const d = this.#device(p.deviceId);
    if (d.kid !== p.kidHex) {
      // A session stored before this view started (or by another instance).
      d.kid = p.kidHex;
      d.seq = null;
    }
    if (d.seq === null || p.seq > d.seq) d.seq = p.seq;
    d.lastAt = now;
    d.messages++;
    const last = this.#lastPayload.get(d);
    if (last === undefined) this.#lastPayload.set(d, { bytes: p.payload, shown: undefined });
    else {
      last.bytes = p.payload;
      last.shown = undefined;
    }
    // The last whole second's count (this one's while it is the first) sets the probability.
    const previous = (second - 1) % this.#counts.length;
    const rate = this.#countSecond[previous] === second - 1 ? this.#counts[previous]! : this.#counts[slot]!;
    if (rate <= this.#samplesPerSecond || this.#random() * rate < this.#samplesPerSecond) {
      const t = (decodePayload(p.payload)?.value as { t?: unknown } | null | undefined)?.t;
      if (typeof t === 'number' && Number.isFinite(t) && t >= MIN_TIME_STAMP_MS) this.#latency(Math.max(0, now - t));
    }
  }

  /** The device as a snapshot shows it: its last payload decoded (once) to the reading. */
  #shown(d: LiveDevice): LiveDevice {
    const copy: LiveDevice = { ...d };
    const last = this.#lastPayload.get(d);
    if (last === undefined) return copy;
    if (last.shown === undefined) {
      const decoded = decodePayload(last.bytes);
      if (decoded === undefined) last.shown = null;
      else {
        const json = JSON.stringify(decoded.value) ?? '';
        last.shown = {
          reading:
            json.length <= this.#maxReading
              ? decoded.value
              : `(a reading of ${json.length} characters as JSON: not shown)`,
        };
      }
    }
    if (last.shown !== null) copy.reading = last.shown.reading;
    return copy;
  }

  snapshot(): LiveSnapshot {
    const at = this.#now();
    const last = Math.floor(at / 1000) - 1;
    const rate: number[] = [];
    for (let s = last - this.#seconds + 1; s <= last; s++) {
      const slot = ((s % this.#counts.length) + this.#counts.length) % this.#counts.length;
      rate.push(this.#countSecond[slot] === s ? this.#counts[slot]! : 0);
    }
    const recentFive = rate.slice(-5);
    const snapshot: LiveSnapshot = {
      at,
      startedAt: this.#startedAt,
      totals: { ...this.#totals },
      rate,
      perSecond: recentFive.reduce((a, b) => a + b, 0) / recentFive.length,
      devices: [...this.#devices.values()]
        .map((d) => this.#shown(d))
        .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0)),
      devicesDropped: this.#devicesDropped,
      rejections: { ...this.#rejections },
      recentRejections: this.#recent.map((r) => ({ ...r })),
      latency: this.#latencySummary(),
      cloudKeys: (this.#cloudKeys?.() ?? [])
        .map((k) => ({ ...k }))
        .sort((a, b) => Number(b.current) - Number(a.current) || b.devices - a.devices)
        .slice(0, MAX_CLOUD_KEYS),
    };
    const extra = this.#extra?.();
    if (extra !== undefined) snapshot.extra = extra;
    return snapshot;
  }

  #device(deviceId: string): LiveDevice {
    let d = this.#devices.get(deviceId);
    if (d !== undefined) {
      // Most recently heard of last: the first entry is the one to forget.
      this.#devices.delete(deviceId);
      this.#devices.set(deviceId, d);
      return d;
    }
    d = { deviceId, kid: null, sessionAt: null, sessions: 0, seq: null, lastAt: null, messages: 0, rejected: 0 };
    this.#devices.set(deviceId, d);
    if (this.#devices.size > this.#maxDevices) {
      const oldest = this.#devices.keys().next().value as string;
      this.#devices.delete(oldest);
      this.#devicesDropped++;
    }
    return d;
  }

  #latency(ms: number): void {
    this.#onLatency?.(ms);
    if (this.#latencies.length < this.#maxLatency) this.#latencies.push(ms);
    else this.#latencies[this.#latencyNext] = ms;
    this.#latencyNext = (this.#latencyNext + 1) % this.#maxLatency;
  }

  #latencySummary(): LatencySummary | null {
    if (this.#latencies.length === 0) return null;
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return { samples: sorted.length, p50Ms: at(0.5), p95Ms: at(0.95), maxMs: sorted[sorted.length - 1]! };
  }
}
