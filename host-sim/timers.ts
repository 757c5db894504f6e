/** Node's timers in the shape the device code takes them (`src/device/enrollment.ts` `Timers`). */
import type { Timers } from '../src/device/enrollment.js';

export const hostTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
