/**
 * Time, as the device knows it. Runtime-neutral: implemented over `Date`/`Time.ticks` on the
 * Moddable SDK (src/moddable/sdk/clock.ts) and over Node's clocks in the host simulator.
 */
export interface Clock {
  /**
   * Wall-clock time in epoch milliseconds, or undefined while the device does not know it (no RTC,
   * SNTP not yet synchronised). Certificate validity periods are checked only when it is known.
   */
  now(): number | undefined;
  /** Milliseconds since boot: monotonic, never jumps; for ages, rates and timeouts. */
  uptimeMs(): number;
}

/** A wall clock is "known" when it reads after this (2020-01-01): an unset RTC reads 1970. */
export const CLOCK_KNOWN_AFTER_MS = 1_577_836_800_000;

/** `Date.now()` when it looks set, else undefined: what a device without an RTC should report. */
export function wallClockIfSet(ms: number): number | undefined {
  return Number.isFinite(ms) && ms > CLOCK_KNOWN_AFTER_MS ? ms : undefined;
}
