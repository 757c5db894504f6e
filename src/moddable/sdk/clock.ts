/**
 * The clock (src/platform/clock.ts) on the SDK: `Date.now()` only once it has been set (SNTP or an
 * RTC; an unset ESP32 clock reads 1970, and then certificate validity is not checked), and
 * `Time.ticks` (milliseconds since boot) for ages and timeouts.
 */
import Time from 'time';
import { type Clock, wallClockIfSet } from '../../platform/clock.js';

export const moddableClock: Clock = {
  now: () => wallClockIfSet(Date.now()),
  uptimeMs: () => Time.ticks,
};
