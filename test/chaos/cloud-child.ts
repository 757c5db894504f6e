/**
 * The chaos suite's cloud entry for runs with the `slow-store` fault: `cose-flow cloud run`'s flags,
 * resolved by the same code (cloud/service/config.ts), with the Store opened here and wrapped so
 * that each `commitBatch` can be delayed. The parent switches the delay with lines on standard
 * input: `slow 400` (every commit waits 400 ms first), `slow 0` (back to normal). Everything else
 * is `startCloudService` as the CLI runs it: the JSON log on standard output, SIGINT/SIGTERM stop
 * it gracefully, SIGKILL kills it.
 *
 *   node dist/test/chaos/cloud-child.js --broker URL --data-dir DIR --store URL [cloud run flags]
 */
import { createInterface } from 'node:readline';
import { parseFlags } from '../../cli/command.js';
import { resolveRunConfig, runFlagTable } from '../../cloud/service/config.js';
import { createLogger } from '../../cloud/service/log.js';
import { startCloudService } from '../../cloud/service/service.js';
import { openStore, type Store } from '../../cloud/store/index.js';

/** The store with every commitBatch delayed by `delayMs()` (0: not delayed); the rest untouched. */
export function delayedStore(store: Store, delayMs: () => number): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'commitBatch') {
        return async (items: Parameters<Store['commitBatch']>[0]) => {
          const ms = delayMs();
          if (ms > 0) await new Promise((r) => setTimeout(r, ms));
          return target.commitBatch(items);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function main(): Promise<void> {
  const { values } = parseFlags(process.argv.slice(2), runFlagTable());
  const config = resolveRunConfig(values);
  const url = typeof config.options.store === 'string' ? config.options.store : undefined;
  if (url === undefined) throw new Error('cloud-child needs --store URL');
  const store = await openStore(url, {
    ...(config.options.windowSize === undefined ? {} : { windowSize: config.options.windowSize }),
    ...(config.options.sessionGrace === undefined ? {} : { sessionGrace: config.options.sessionGrace }),
  });
  let delay = 0;
  createInterface({ input: process.stdin }).on('line', (line) => {
    const m = /^slow (\d+)$/.exec(line.trim());
    if (m !== null) delay = Number(m[1]);
  });
  const logger = createLogger({ level: config.logLevel });
  const service = await startCloudService({ ...config.options, store: delayedStore(store, () => delay), logger });
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(130));
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await service.stop();
  await store.close();
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`cloud-child: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
