/**
 * A sleep that ends early when woken: for a loop that waits for either an event or a deadline,
 * whichever comes first (the event's handler calls `wake()`).
 *
 *   const sleeper = new Sleeper();
 *   onEvent(() => sleeper.wake());
 *   while (!done()) await sleeper.sleep(untilDeadline);
 */
export class Sleeper {
  #wake: (() => void) | undefined;

  /** Resolves after `ms`, or at the next `wake()` if that comes first. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** Ends the sleep under way now, if any. */
  wake(): void {
    this.#wake?.();
  }
}
