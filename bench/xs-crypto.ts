/**
 * The crypto benchmark (bench/crypto.ts) inside the XS test host: `scriptArgs` are the provider
 * (noble or native), the milliseconds per case, and optionally names to select cases. Prints one
 * `bench …` line per case (bench/crypto.ts formatResult). Run by bench/run-crypto.ts and by
 * test/native/bench.test.ts.
 */
import { emit, host, runMain } from '../test/xs/entries/host.js';
import { providerNamed } from '../test/xs/entries/providers.js';
import { formatResult, runBench } from './crypto.js';

runMain(() => {
  const [provider, ms, ...only] = host.scriptArgs;
  runBench(providerNamed(provider), {
    minMs: Number(ms ?? 1000),
    ...(only.length > 0 ? { only } : {}),
    report: (result) => host.print(formatResult(result)),
  });
  emit('done');
});
