/**
 * Runs the crypto benchmark (bench/crypto.ts) on this machine and prints a Markdown table:
 * the XS test host with the native provider and with noble, and Node with node:crypto and noble.
 * These are host numbers; a device measures itself with native/bench (see native/README.md).
 *
 *   npm run build && node dist/bench/run-crypto.js [--ms MILLISECONDS] [--device-bundle]
 *
 * --ms: how long each case runs (default 1000). --device-bundle: instead, bundle native/bench/main.ts
 * into native/build/bench/main.js for `mcconfig` in native/bench, and exit.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { nodeCrypto } from '../node/crypto.js';
import { nobleCrypto } from '../src/crypto/noble.js';
import { projectRoot } from '../test/vectors.js';
import { bundleForXs, runInXs } from '../test/xs/run.js';
import { type BenchResult, parseResult, runBench } from './crypto.js';

const args = process.argv.slice(2);
const msAt = args.indexOf('--ms');
const minMs = msAt >= 0 ? Number(args[msAt + 1]) : 1000;
if (!(minMs > 0)) throw new Error('--ms wants a positive number of milliseconds');

if (args.includes('--device-bundle')) {
  const outfile = join(projectRoot, 'native', 'build', 'bench', 'main.js');
  await bundleForXs('native/bench/main.ts', {}, 'esm', outfile);
  console.log(`wrote ${outfile}: now \`cd native/bench && mcconfig -d -m -p esp32/<board>\``);
  process.exit(0);
}

async function inXs(provider: string): Promise<BenchResult[]> {
  const run = await runInXs('bench/xs-crypto.ts', { args: [provider, String(minMs)], timeoutMs: 60 * 60_000 });
  if (run.code !== 0) throw new Error(`the XS run (${provider}) failed:\n${run.stderr}`);
  return run.stdout
    .split('\n')
    .map(parseResult)
    .filter((r) => r !== undefined);
}

const columns: [string, BenchResult[]][] = [
  ['XS + native (PSA, Mbed TLS 2.28)', await inXs('native')],
  ['XS + noble', await inXs('noble')],
  ['Node + node:crypto (OpenSSL)', runBench(nodeCrypto(), { minMs })],
  ['Node + noble', runBench(nobleCrypto(), { minMs })],
];

const format = (ops: number | undefined) =>
  ops === undefined ? '–' : ops >= 100 ? Math.round(ops).toLocaleString('en-US') : ops.toFixed(1);
console.log(
  `Host: ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores), Node ${process.version}, ${minMs} ms per case\n`,
);
console.log(`| operation (ops/s) | ${columns.map(([title]) => title).join(' | ')} |`);
console.log(`| --- | ${columns.map(() => '---:').join(' | ')} |`);
for (const { name } of columns[0]![1]) {
  const cells = columns.map(([, results]) => format(results.find((r) => r.name === name)?.opsPerSecond));
  console.log(`| ${name} | ${cells.join(' | ')} |`);
}
