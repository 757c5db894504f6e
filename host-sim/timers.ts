/** Node's timers in the shape the device code takes them (`src/platform/timers.ts`). */
import type { Timers } from '../src/platform/timers.js';

export const hostTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
