/**
 * The clock (src/platform/clock.ts) on the SDK: `Date.now()` only once it has been set (SNTP or an
 * RTC; an unset ESP32 clock reads 1970, and then certificate validity is not checked), and
 * uptime measured from when this module was loaded, out of `Time.ticks` differences.
 *
 * `Time.ticks` is not "milliseconds since boot" everywhere: on the ESP32 it is a 32-bit
 * millisecond counter (read as a signed integer, so it turns negative after 24.8 days and wraps
 * after 49.7), on the Linux simulator it is the wall clock in milliseconds (~1.8e12). Only
 * differences between two readings mean something; a difference below zero is a wrap of a 32-bit
 * counter (counted as +2^32), or a wall clock set back (counted as no time: uptime never runs
 * backwards). It must be read at least once every 24 days to see every wrap: the device reads it
 * with every reading and timer.
 */
import Time from 'time';
import { type Clock, wallClockIfSet } from '../../platform/clock.js';

const WRAP = 2 ** 32;

/** Uptime in milliseconds out of successive readings of a tick counter (see above). */
export function uptimeCounter(ticks: () => number): () => number {
  let last = ticks();
  let elapsed = 0;
  return () => {
    const now = ticks();
    let delta = now - last;
    if (delta < 0) {
      // A 32-bit counter (signed on the ESP32, unsigned elsewhere) that wrapped; otherwise a wall
      // clock that was set back.
      const thirtyTwoBit = last >= -(2 ** 31) && last < WRAP && now >= -(2 ** 31) && now < WRAP;
      delta = thirtyTwoBit ? ((delta % WRAP) + WRAP) % WRAP : 0;
    }
    last = now;
    elapsed += delta;
    return elapsed;
  };
}

/** Milliseconds since the application started. */
export const uptimeMs: () => number = uptimeCounter(() => Time.ticks);

export const moddableClock: Clock = {
  now: () => wallClockIfSet(Date.now()),
  uptimeMs,
};
