/**
 * The XS test host's globals (native/xs-host/main.c), typed for entry modules. Entries run only
 * inside the host (bundled by test/xs/run.ts); importing this module elsewhere throws.
 */
interface XsHostGlobals {
  /** Writes the values as strings, separated by spaces, and a newline to stdout. */
  print(...values: unknown[]): void;
  /** The host function registered under `name` in native/xs-host/natives.c. */
  native(name: string): (...args: unknown[]) => unknown;
  /** A full garbage collection. */
  gc(): void;
  /** Bytes of heap in use (chunks + slots); call `gc()` first for a steady number. */
  heapUsed(): number;
  /** The arguments after the script on the host's command line. */
  scriptArgs: string[];
}

const globals = globalThis as unknown as Partial<XsHostGlobals>;
if (typeof globals.print !== 'function' || typeof globals.heapUsed !== 'function') {
  throw new Error('test/xs/entries/* run only inside the XS test host (see test/xs/run.ts)');
}

export const host = globals as XsHostGlobals;

/** Prints one result line, `name value…`, the form the Node side of the tests parses. */
export function emit(name: string, ...values: (string | number | boolean)[]): void {
  host.print([name, ...values].join(' '));
}

/**
 * Runs `main` from the promise job queue, after the bundle's module body has returned: the way
 * the device runs its code (from callbacks, once its modules are loaded). Run from the module
 * body, the bundle's ~500 top-level bindings would still sit on the XS stack and take half of the
 * device's 1024 slots. An exception in `main` fails the run (an unhandled rejection, with its stack).
 */
export function runMain(main: () => void | Promise<void>): void {
  void Promise.resolve().then(main);
}
