/** The device clock (`src/platform/clock.ts`) on Node: the host's wall clock and a monotonic uptime. */
import { performance } from 'node:perf_hooks';
import type { Clock } from '../src/platform/clock.js';

export function hostClock(): Clock {
  const boot = performance.now();
  return {
    now: () => Date.now(),
    uptimeMs: () => performance.now() - boot,
  };
}
