/**
 * The crypto benchmark on a device: ops/s of every CryptoProvider primitive and of building one
 * data message and one key message, with the native provider (C over PSA Crypto, the chip's
 * AES/SHA/ECC hardware where ESP-IDF has drivers for it) and with noble (pure JavaScript), printed
 * to the console as each case finishes. Build and run (native/README.md, "Benchmark"):
 *
 *   npm run build && node dist/bench/run-crypto.js --device-bundle
 *   cd native/bench && mcconfig -d -m -p esp32/<board>
 */
import '../../src/moddable/random.js'; // crypto.getRandomValues from the hardware RNG, before noble loads
import { formatResult, runBench } from '../../bench/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import { nativeCrypto } from '../../src/moddable/native-crypto.js';

/** The Moddable SDK's console output (xsbug or the serial port). */
declare const trace: (text: string) => void;

/** Milliseconds per case: 2 s on a device; the XS test host may ask for less (its `scriptArgs`). */
const MS_PER_CASE = Number((globalThis as { scriptArgs?: string[] }).scriptArgs?.[0] ?? 2000);

function log(line: string): void {
  trace(`${line}\n`);
}

/** Runs once the module body has returned: the bundle's top-level bindings would otherwise hold most of the stack. */
function main(): void {
  log(`cose-flow crypto benchmark: ${MS_PER_CASE} ms per case; lines are "bench PROVIDER OPS/S OPS CASE"`);
  for (const provider of [nativeCrypto(), nobleCrypto()]) {
    runBench(provider, { minMs: MS_PER_CASE, report: (result) => log(formatResult(result)) });
  }
  log('cose-flow crypto benchmark: done');
}

void Promise.resolve().then(main);
