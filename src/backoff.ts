/**
 * Exponential backoff with jitter, the one used everywhere: the device's reconnects, its retries
 * of failed session starts and publishes, its enrollment requests (src/device/enrollment.ts maps
 * its RetryPolicy onto this one), and the cloud's. Delay n = min(max, initial × multiplier^(n−1)),
 * minus a random share of up to `jitter` of it ("equal jitter" for jitter 0.5), so that a fleet
 * that lost its broker at the same moment does not come back at the same moment.
 *
 * `backoffDelay` is the pure formula; `Backoff` counts the failures for it. Runtime-neutral.
 */
export interface BackoffPolicy {
  initialMs: number;
  multiplier: number;
  maxMs: number;
  /** 0 … 1: the share of each delay that may be taken off at random. */
  jitter: number;
}

export const DEFAULT_RECONNECT: Readonly<BackoffPolicy> = {
  initialMs: 1000,
  multiplier: 2,
  maxMs: 60_000,
  jitter: 0.5,
};

export function checkBackoff(policy: BackoffPolicy, what: string): BackoffPolicy {
  const ok =
    Number.isFinite(policy.initialMs) &&
    policy.initialMs >= 0 &&
    Number.isFinite(policy.multiplier) &&
    policy.multiplier >= 1 &&
    Number.isFinite(policy.maxMs) &&
    policy.maxMs >= policy.initialMs &&
    policy.jitter >= 0 &&
    policy.jitter <= 1;
  if (!ok) throw new RangeError(`${what}: invalid backoff ${JSON.stringify(policy)}`);
  return policy;
}

/** The delay before try `attempt + 1` (attempt ≥ 1 failures so far); `random` returns [0, 1). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number): number {
  const { initialMs, multiplier, maxMs, jitter } = policy;
  // The exponent is capped: 0 × Infinity would be NaN, and 2^64 is past any maxMs anyway.
  const base = Math.min(maxMs, initialMs * multiplier ** Math.min(attempt - 1, 64));
  return Math.round(base * (1 - jitter * random()));
}

export class Backoff {
  readonly #policy: BackoffPolicy;
  readonly #random: () => number;
  #attempt = 0;

  constructor(policy: BackoffPolicy, random: () => number) {
    this.#policy = policy;
    this.#random = random;
  }

  /** Failures since the last `reset()`. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next try, counting one more failure. */
  next(): number {
    this.#attempt++;
    return backoffDelay(this.#policy, this.#attempt, this.#random);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
