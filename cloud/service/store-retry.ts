/**
 * Store calls from the receiver, retried with backoff while the store fails (the database is
 * down) until they succeed or the service stops: the message waiting on them stays
 * unacknowledged meanwhile, and the broker redelivers it if the service stops first.
 */
import { Backoff, type BackoffPolicy, checkBackoff } from '../../src/backoff.js';
import { AtRestError } from './at-rest.js';

/** Thrown through a flow when the service stops: the message stays unacknowledged. */
export class Stopping extends Error {}

/** Exponential, no jitter: min × 2^(n−1), at most max (ms). */
export function storeRetryPolicy(minMs = 100, maxMs = 5000): BackoffPolicy {
  return checkBackoff({ initialMs: minMs, multiplier: 2, maxMs, jitter: 0 }, 'store retry');
}

export interface StoreRetryOptions {
  policy: BackoffPolicy;
  /** True once the service stops: the next attempt throws `Stopping` instead. */
  stopping: () => boolean;
  /** Each failed attempt (not AtRestError, which is thrown at once: retrying cannot fix it). */
  onError: (error: unknown, what: string) => void;
}

export type StoreCall = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

export function storeRetry(options: StoreRetryOptions): StoreCall {
  return async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const backoff = new Backoff(options.policy, () => 0);
    for (;;) {
      if (options.stopping()) throw new Stopping(`stopping during ${what}`);
      try {
        return await fn();
      } catch (e) {
        if (e instanceof AtRestError) throw e;
        options.onError(e, what);
        const delay = backoff.next();
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };
}
