/** Timers (src/platform/timers.ts) on the SDK's Timer. */
import Timer from 'timer';
import type { Timers } from '../../platform/timers.js';

export const moddableTimers: Timers = {
  setTimeout: (callback, ms) => Timer.set(() => callback(), Math.max(0, Math.round(ms))),
  clearTimeout: (handle) => Timer.clear(handle as Timer),
};
