/**
 * Re-key requests: when data arrives under a kid the service has no session for (it lost the
 * session, or never got the key message), it asks the device for a new session with a signed
 * control message (src/profile/control.ts: COSE_Sign1 by the cloud key the device's current
 * session was sealed to — during a rotation a device that has not yet taken the new certificate
 * trusts only the old key — else by the current cloud key; naming the kid the device used, bound
 * to its device id) on `{prefix}/{deviceId}/control`, QoS 1. The device acts
 * only if that kid is still its current one.
 *
 * Rate-limited per device (default one request a minute): a device sending a stream under an
 * unknown kid gets one request, not one per message; the table of recent requests is swept as
 * it grows.
 *
 * Signed only on what the store knows (issue 12 §4): for a device the store holds, and for a kid
 * at or below its kid floor. A kid above the floor was never announced by an authenticated key
 * message, so a request for it could only come from unauthenticated input — and, replayed once
 * the device reaches that kid, would re-key it on an attacker's word. Anything else is `refused`
 * without signing.
 */
import { toHex } from '../../src/bytes.js';
import type { CryptoProvider, P256PrivateKey } from '../../src/crypto/provider.js';
import { makeControlMessage } from '../../src/profile/control.js';
import { compareKids } from '../../src/profile/counter.js';
import { topic } from '../../src/profile/topics.js';
import type { Store } from '../store/store.js';

export const DEFAULT_REKEY_INTERVAL_MS = 60_000;
const SWEEP_AT = 10_000;

export type RekeyOutcome = 'sent' | 'rate-limited' | 'refused' | 'failed';

export interface RekeyRequesterOptions {
  crypto: CryptoProvider;
  /**
   * The key that signs the device's control messages: the cloud key its current session was
   * sealed to (the one it trusts, also mid-rotation), else the current cloud key.
   */
  cloudKey: (deviceId: string) => P256PrivateKey;
  prefix: string;
  publish: (topic: string, payload: Uint8Array) => Promise<void>;
  /** Where the devices and their kid floors are: requests only for known devices, kids ≤ floor. */
  store: Pick<Store, 'getDevice'>;
  minIntervalMs?: number;
  now?: () => number;
  /** Called once per request with what happened (after the publish settled). */
  onOutcome?: (deviceId: string, kidHex: string, outcome: RekeyOutcome, error?: Error) => void;
}

export class RekeyRequester {
  readonly #o: RekeyRequesterOptions;
  readonly #interval: number;
  readonly #now: () => number;
  readonly #last = new Map<string, number>();

  constructor(options: RekeyRequesterOptions) {
    this.#o = options;
    this.#interval = options.minIntervalMs ?? DEFAULT_REKEY_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Asks `deviceId` to re-key unless it was asked less than the interval ago, the store does not
   * know the device, or `kid` is above its kid floor (`refused`).
   */
  async request(deviceId: string, kid: Uint8Array): Promise<RekeyOutcome> {
    const kidHex = toHex(kid);
    let device: Awaited<ReturnType<Store['getDevice']>>;
    try {
      device = await this.#o.store.getDevice(deviceId);
    } catch (e) {
      this.#o.onOutcome?.(deviceId, kidHex, 'failed', e as Error);
      return 'failed';
    }
    if (device?.kidFloor == null || compareKids(kid, device.kidFloor) > 0) {
      this.#o.onOutcome?.(deviceId, kidHex, 'refused');
      return 'refused';
    }
    const now = this.#now();
    const last = this.#last.get(deviceId);
    if (last !== undefined && now - last < this.#interval) {
      this.#o.onOutcome?.(deviceId, kidHex, 'rate-limited');
      return 'rate-limited';
    }
    if (this.#last.size >= SWEEP_AT) {
      for (const [id, t] of this.#last) if (now - t >= this.#interval) this.#last.delete(id);
    }
    this.#last.set(deviceId, now);
    let message: Uint8Array;
    try {
      message = makeControlMessage(this.#o.crypto, this.#o.cloudKey(deviceId), {
        deviceId,
        request: 'rekey',
        kid,
        issuedAt: Math.floor(now / 1000),
      });
    } catch (e) {
      this.#o.onOutcome?.(deviceId, kidHex, 'failed', e as Error);
      return 'failed';
    }
    return this.#o.publish(topic('control', deviceId, this.#o.prefix), message).then(
      () => {
        this.#o.onOutcome?.(deviceId, kidHex, 'sent');
        return 'sent' as const;
      },
      (e: Error) => {
        this.#last.delete(deviceId); // not delivered: the next unknown-kid message may try again
        this.#o.onOutcome?.(deviceId, kidHex, 'failed', e);
        return 'failed' as const;
      },
    );
  }
}
