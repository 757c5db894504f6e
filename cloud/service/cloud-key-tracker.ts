/**
 * Which cloud key each device's latest stored session was sealed to (the recipient's key id of the
 * key message, known once `openKeyMessage` unwrapped it with that key). Two uses:
 *
 * - rotation progress (`cose-flow cloud rotate`, the dashboard's "Cloud keys" panel): how many
 *   devices are on the current key and how many still on an older one;
 * - control messages: the service signs a device's re-key request with the key its current
 *   session was sealed to — the key the device trusts (docs/PROTOCOL.md §4.9) — not with a newer
 *   key the device may not have received yet.
 *
 * Learned from the key messages this instance stored since it started (not kept in the store):
 * after a restart a device counts once it opens its next session. Bounded: at most `maxDevices`
 * devices (the least recently stored are forgotten first); the counts are per key id, so as many
 * as there were cloud keys.
 */
import type { CloudKeyCount } from '../dashboard/live-state.js';
import type { CloudKey } from '../pki/cloud-keys.js';

export const DEFAULT_TRACKED_DEVICES = 100_000;

export class CloudKeyTracker {
  readonly #max: number;
  readonly #byDevice = new Map<string, string>();
  readonly #counts = new Map<string, number>();

  constructor(maxDevices = DEFAULT_TRACKED_DEVICES) {
    this.#max = Math.max(1, maxDevices);
  }

  /** A session of `deviceId` sealed to cloud key `cloudKidHex` was stored (its newest). */
  record(deviceId: string, cloudKidHex: string): void {
    const before = this.#byDevice.get(deviceId);
    if (before !== undefined) {
      this.#byDevice.delete(deviceId);
      this.#count(before, -1);
    }
    this.#byDevice.set(deviceId, cloudKidHex);
    this.#count(cloudKidHex, 1);
    if (this.#byDevice.size > this.#max) {
      const [oldest, kid] = this.#byDevice.entries().next().value as [string, string];
      this.#byDevice.delete(oldest);
      this.#count(kid, -1);
    }
  }

  /** The cloud key id (hex) of the device's latest session this instance stored, if any. */
  keyOf(deviceId: string): string | undefined {
    return this.#byDevice.get(deviceId);
  }

  /** Devices per cloud key id (hex); keys without devices are absent. */
  counts(): Map<string, number> {
    return new Map(this.#counts);
  }

  #count(kid: string, delta: number): void {
    const n = (this.#counts.get(kid) ?? 0) + delta;
    if (n <= 0) this.#counts.delete(kid);
    else this.#counts.set(kid, n);
  }
}

/**
 * Rotation progress: each loaded cloud key with the number of devices on it, then the keys no
 * longer loaded (retired for good) that devices are still on — they cannot open a session until
 * they take the current certificate.
 */
export function cloudKeyRows(keys: readonly CloudKey[], counts: ReadonlyMap<string, number>): CloudKeyCount[] {
  const rows: CloudKeyCount[] = keys.map((k) => ({
    kid: k.kidHex,
    current: k.current,
    loaded: true,
    devices: counts.get(k.kidHex) ?? 0,
    retireAt: k.retireAt === undefined ? null : k.retireAt.getTime(),
  }));
  const loaded = new Set(keys.map((k) => k.kidHex));
  for (const [kid, devices] of counts) {
    if (!loaded.has(kid)) rows.push({ kid, current: false, loaded: false, devices, retireAt: null });
  }
  return rows;
}
