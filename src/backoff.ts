/**
 * Exponential backoff with jitter, for reconnecting and for retrying enrollment and failed
 * session starts: delay n = min(max, initial × multiplier^(n−1)), minus a random share of up to
 * `jitter` of it ("equal jitter" for jitter 0.5), so that a fleet that lost its broker at the same
 * moment does not come back at the same moment. Runtime-neutral.
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
    const { initialMs, multiplier, maxMs, jitter } = this.#policy;
    const base = Math.min(maxMs, initialMs * multiplier ** Math.min(this.#attempt - 1, 64));
    return Math.round(base * (1 - jitter * this.#random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
