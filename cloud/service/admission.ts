/**
 * Admission: how much one device id (or one sender posing as it) may cost the service, decided
 * before any public-key work (docs/CLOUD.md "Floods and quotas").
 *
 *   key message   per-device token bucket (default burst 20, 1/s), then one bucket for every key
 *                 message together (burst 1000, 500/s): `rate-limited`; then, one key message of
 *                 the device at a time, its session quota (30 sessions stored per hour):
 *                 `quota-exceeded`
 *   data message  the device's payload-byte quota (8 MiB of stored payload per minute); refused
 *                 as `quota-exceeded` while it is used up
 *
 * Rates are charged on arrival (a key message costs a token whether or not it verifies: the
 * sender is not known before the signature is checked); quotas are charged by what was stored
 * (`sessionStored`, `payloadStored`), so only authenticated traffic uses up a device's quota and
 * a flood of forgeries on its topic cannot. A refused message is acknowledged and dropped like any
 * refused one: a device whose key message was refused is asked to re-key when its data arrives.
 *
 * Memory is bounded: at most `maxDevices` device ids are tracked (the least recently seen are
 * forgotten first; a forgotten id starts again with a full bucket, which the global key-message
 * bucket still limits).
 */

/** A token bucket: `capacity` tokens, refilled at `perSecond`; lazily refilled on use. */
export class TokenBucket {
  #tokens: number;
  #at: number;
  constructor(
    readonly capacity: number,
    readonly perSecond: number,
    now: number,
  ) {
    this.#tokens = capacity;
    this.#at = now;
  }

  /** Tokens now (may be negative after a charge larger than what was left). */
  level(now: number): number {
    if (now > this.#at) {
      this.#tokens = Math.min(this.capacity, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
      this.#at = now;
    }
    return this.#tokens;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    if (this.level(now) < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Takes `n` tokens whatever is left (quotas charged after the fact). */
  charge(n: number, now: number): void {
    this.level(now);
    this.#tokens -= n;
  }

  /** Time until one token is back, ms. */
  waitMs(now: number): number {
    const missing = 1 - this.level(now);
    return missing <= 0 ? 0 : Math.ceil((missing / this.perSecond) * 1000);
  }
}

export interface AdmissionLimits {
  /** Key messages per device id: burst and steady rate (default 20, 1/s). */
  keyBurst: number;
  keyPerSecond: number;
  /** Key messages of every device id together (default 1000, 500/s). */
  globalKeyBurst: number;
  globalKeyPerSecond: number;
  /** Sessions stored per device per hour (default 30; 0: no quota). */
  sessionsPerHour: number;
  /** Payload bytes stored per device per minute (default 8 MiB; 0: no quota). */
  payloadBytesPerMinute: number;
  /** Device ids tracked at once (default 100 000). */
  maxDevices: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = {
  keyBurst: 20,
  keyPerSecond: 1,
  globalKeyBurst: 1000,
  globalKeyPerSecond: 500,
  sessionsPerHour: 30,
  payloadBytesPerMinute: 8 * 1024 * 1024,
  maxDevices: 100_000,
};

export interface Refusal {
  reason: 'rate-limited' | 'quota-exceeded';
  detail: string;
}

interface DeviceBuckets {
  keys: TokenBucket;
  sessions?: TokenBucket;
  bytes?: TokenBucket;
}

export class Admission {
  readonly limits: AdmissionLimits;
  readonly #now: () => number;
  readonly #devices = new Map<string, DeviceBuckets>();
  readonly #global: TokenBucket;

  constructor(limits: Partial<AdmissionLimits> = {}, now: () => number = Date.now) {
    this.limits = { ...DEFAULT_ADMISSION, ...limits };
    for (const [name, v] of Object.entries(this.limits)) {
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`admission limit ${name} must be a number ≥ 0, got ${v}`);
    }
    if (this.limits.keyBurst < 1 || this.limits.globalKeyBurst < 1 || this.limits.maxDevices < 1)
      throw new RangeError('keyBurst, globalKeyBurst and maxDevices must be at least 1');
    this.#now = now;
    this.#global = new TokenBucket(this.limits.globalKeyBurst, this.limits.globalKeyPerSecond, now());
  }

  /** Device ids tracked now. */
  get size(): number {
    return this.#devices.size;
  }

  /** Before a key message's certificate and signature are looked at: undefined to go on. */
  admitKeyMessage(deviceId: string): Refusal | undefined {
    const now = this.#now();
    const d = this.#device(deviceId, now);
    if (!d.keys.take(now)) {
      return {
        reason: 'rate-limited',
        detail: `more than ${this.limits.keyBurst} key messages at once or ${this.limits.keyPerSecond}/s for this device`,
      };
    }
    if (!this.#global.take(now)) {
      return {
        reason: 'rate-limited',
        detail: `more than ${this.limits.globalKeyPerSecond} key messages/s from all devices together`,
      };
    }
    return undefined;
  }

  /**
   * Right before a key message is opened, one at a time per device (so that every session stored
   * before counts): undefined to go on.
   */
  admitSession(deviceId: string): Refusal | undefined {
    const sessions = this.#devices.get(deviceId)?.sessions;
    if (sessions === undefined || sessions.level(this.#now()) >= 1) return undefined;
    return {
      reason: 'quota-exceeded',
      detail: `more than ${this.limits.sessionsPerHour} sessions per hour for this device`,
    };
  }

  /** A key message of the device was stored as a new session. */
  sessionStored(deviceId: string): void {
    const now = this.#now();
    this.#device(deviceId, now).sessions?.charge(1, now);
  }

  /** Before a data message is decrypted: undefined to go on. */
  admitData(deviceId: string): Refusal | undefined {
    const d = this.#devices.get(deviceId);
    if (d?.bytes === undefined || d.bytes.level(this.#now()) > 0) return undefined;
    return {
      reason: 'quota-exceeded',
      detail: `more than ${this.limits.payloadBytesPerMinute} payload bytes per minute for this device`,
    };
  }

  /** A payload of the device was stored. */
  payloadStored(deviceId: string, bytes: number): void {
    const now = this.#now();
    this.#device(deviceId, now).bytes?.charge(bytes, now);
  }

  #device(deviceId: string, now: number): DeviceBuckets {
    let d = this.#devices.get(deviceId);
    if (d !== undefined) {
      this.#devices.delete(deviceId); // most recently seen last
      this.#devices.set(deviceId, d);
      return d;
    }
    const l = this.limits;
    d = { keys: new TokenBucket(l.keyBurst, l.keyPerSecond, now) };
    if (l.sessionsPerHour > 0) d.sessions = new TokenBucket(l.sessionsPerHour, l.sessionsPerHour / 3600, now);
    if (l.payloadBytesPerMinute > 0)
      d.bytes = new TokenBucket(l.payloadBytesPerMinute, l.payloadBytesPerMinute / 60, now);
    this.#devices.set(deviceId, d);
    if (this.#devices.size > l.maxDevices) this.#devices.delete(this.#devices.keys().next().value!);
    return d;
  }
}
