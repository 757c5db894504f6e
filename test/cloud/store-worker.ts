/**
 * A service instance in a worker thread for store.test.ts: opens the store at workerData.url and
 * commits workerData.batches one after another, then posts back the results of each batch. (Each
 * SQLite connection is synchronous, so instances sharing one file run in separate threads.)
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type CommitResult, type DataItem, openStore } from '../../cloud/store/index.js';

const { url, batches } = workerData as { url: string; batches: DataItem[][] };
const store = await openStore(url);
const results: CommitResult[][] = [];
try {
  for (const batch of batches) results.push(await store.commitBatch(batch));
} finally {
  await store.close();
}
parentPort!.postMessage(results);
