#!/usr/bin/env node
// The `cose-flow` command: a launcher for the compiled CLI in dist/ (`npm ci` builds it through `prepare`).
let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (e) {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('main.js')) {
    process.stderr.write('cose-flow: dist/ is not built: run `npm run build` first\n');
    process.exit(2);
  }
  throw e;
}
// `cose-flow … | head` closes the pipe early: stop quietly.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
process.exitCode = await cli.main(process.argv.slice(2));
