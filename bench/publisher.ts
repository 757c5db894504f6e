/**
 * The benchmarks' publisher: an MQTT.js 3.1.1 client in a worker thread that publishes messages
 * sealed beforehand, so the thread under test does only its own work (mosquitto is a separate
 * process). Shared by bench/cloud.ts and bench/e2e.ts.
 *
 *   await publish({ url, messages: [[topic, bytes, qos], …] });   // resolves once all are acknowledged
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import mqtt from 'mqtt';

export interface PublishJob {
  url: string;
  /** [topic, bytes, qos][] */
  messages: [string, Uint8Array, 0 | 1 | 2][];
}

async function publisher(job: PublishJob): Promise<void> {
  const client = await mqtt.connectAsync(job.url, {
    clientId: `bench-pub-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
    protocolVersion: 4,
  });
  await Promise.all(job.messages.map(([t, bytes, qos]) => client.publishAsync(t, Buffer.from(bytes), { qos })));
  await client.endAsync();
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'bench-publisher') {
  publisher((workerData as { job: PublishJob }).job).then(
    () => parentPort!.postMessage('done'),
    (e) => parentPort!.postMessage(`error: ${e}`),
  );
}

/** Publishes the job's messages from a worker thread; resolves when the broker acknowledged them all. */
export function publish(job: PublishJob): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'bench-publisher', job } });
    worker.once('message', (m) => (m === 'done' ? resolve() : reject(new Error(String(m)))));
    worker.once('error', reject);
  });
}
