/**
 * Makes an XS abort say why (the manifest defines xs.aborthook): a release build otherwise only
 * stops. Imported first by main.ts.
 */
const g = globalThis as { abort?: (why: string, error?: unknown) => boolean };
g.abort = (why, error) => {
  trace(`cose-flow abort: ${why}${error === undefined ? '' : `: ${String(error)}`}\n`);
  if (error instanceof Error && error.stack) trace(`${error.stack}\n`);
  return true;
};
trace('cose-flow: device application loading\n');
