/**
 * End-to-end throughput of the cloud service on this machine: data messages per second from a
 * publisher, through mosquitto (MQTT 5), into the service (verify nothing, decrypt, replay window,
 * commit in batches, acknowledge after the commit), on SQLite (synchronous FULL) and on PostgreSQL
 * (a throwaway server with its durable defaults), and two instances on PostgreSQL sharing the
 * subscription. The publisher (bench/publisher.ts) runs in a worker thread with pre-sealed messages
 * (QoS 1), so the service's thread does only the service's work; mosquitto is a separate process.
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/cloud.js [messages] [devices]`
 * (default 20000 messages from 50 devices). Needs mosquitto and PostgreSQL's server binaries.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../cloud/service/log.js';
import { type CloudService, startCloudService } from '../cloud/service/service.js';
import { topic } from '../src/profile/topics.js';
import { makeCloudDataDir, makeDevice } from '../test/cloud/service-fixture.js';
import { startMosquitto } from '../test/fixtures/mosquitto.js';
import { startPostgres } from '../test/fixtures/postgres.js';
import { type PublishJob, publish } from './publisher.js';

await main();

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 20_000);
  const deviceCount = Number(process.argv[3] ?? 50);
  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-bench-cloud-'));
  const [fixture, broker, pg] = await Promise.all([
    makeCloudDataDir(join(tmp, 'data')),
    startMosquitto(),
    startPostgres({ durable: true }),
  ]);
  console.log(
    `cloud service, end to end through mosquitto: ${total} data messages (QoS 1) from ${deviceCount} devices; ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
  );
  let round = 0;
  const cases: { name: string; stores: () => Promise<string>; instances: number }[] = [
    {
      name: 'SQLite (WAL, synchronous FULL)',
      stores: async () => `sqlite:${join(tmp, `bench-${round}.db`)}`,
      instances: 1,
    },
    { name: 'PostgreSQL 1 instance', stores: () => pg.createDatabase(), instances: 1 },
    { name: 'PostgreSQL 2 instances, shared subscription', stores: () => pg.createDatabase(), instances: 2 },
  ];
  try {
    for (const c of cases) {
      round++;
      const store = await c.stores();
      const latencies: number[] = [];
      let delivered = 0;
      const services: CloudService[] = [];
      for (let i = 0; i < c.instances; i++) {
        services.push(
          await startCloudService({
            brokerUrl: broker.url,
            dataDir: fixture.dataDir,
            store,
            clientId: `bench-${round}-${i}`,
            logger: createLogger({ level: 'error' }),
            ...(c.instances > 1 ? { shareGroup: `bench${round}` } : {}),
            onPayload: (p) => {
              delivered++;
              latencies.push(Date.now() - p.receivedAt.getTime());
            },
          }),
        );
      }
      const devices = await Promise.all(
        [...Array(deviceCount).keys()].map((d) => makeDevice(fixture, `bench-${round}-${d}`)),
      );
      // Sessions first (not timed): one key message per device.
      await publish({
        url: broker.url,
        messages: devices.map((d) => [topic('session', d.id), d.keyMessage(1), 2]),
      });
      const perDevice = Math.ceil(total / deviceCount);
      const messages: PublishJob['messages'] = [];
      for (let seq = 0; seq < perDevice; seq++)
        for (const d of devices) if (messages.length < total) messages.push([topic('data', d.id), d.data(1, seq), 1]);
      for (;;) {
        const sessions = (await services[0]!.store.stats()).sessions;
        if (sessions >= deviceCount) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const start = performance.now();
      const published = publish({ url: broker.url, messages });
      while (delivered < messages.length) await new Promise((r) => setTimeout(r, 5));
      const seconds = (performance.now() - start) / 1000;
      await published;
      const batches = services.reduce((n, s) => n + s.metrics.batchSize.count, 0);
      const stored = await services[0]!.store.countPayloads();
      latencies.sort((a, b) => a - b);
      console.log(
        `${c.name.padEnd(46)} ${Math.round(messages.length / seconds)
          .toString()
          .padStart(6)} msg/s  mean batch ${(messages.length / batches).toFixed(0).padStart(4)}  ` +
          `latency p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms  (stored ${stored})`,
      );
      for (const s of services) await s.stop();
    }
  } finally {
    await broker.close();
    await pg.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}
