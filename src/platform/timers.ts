/** One-shot timers, injected: Moddable's `Timer`, Node's globals, or a test clock. */
export interface Timers {
  /** Calls `callback` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a pending timer (a handle that already fired or was cleared is ignored). */
  clearTimeout(handle: unknown): void;
}
