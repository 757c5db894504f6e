/**
 * Group commit: decrypted data items wait here and go to `store.commitBatch` together, so one
 * transaction (and one fsync) covers many messages. One batch commits at a time; while it does,
 * the next one fills up, so batches grow with the load by themselves and no timer delays a
 * lone message. Each `add` resolves with its item's result once its batch has committed.
 *
 * With SQLite the store is a writer thread (cloud/store/writer-thread.ts): `commitBatch` posts
 * the batch and the service's thread goes on reading and decrypting the next one while the
 * worker commits and fsyncs; one batch at a time keeps a device's commits in queue order.
 *
 * A batch that fails (the database is down, a lock timeout) is retried with backoff (the store
 * retry policy of store-retry.ts: exponential, no jitter), as a whole, until it commits or `abort`
 * is called; its messages stay unacknowledged meanwhile. Nothing is acknowledged that is not
 * committed.
 */
import { Sleeper } from '../../node/sleeper.js';
import { Backoff } from '../../src/backoff.js';
import type { CommitResult, DataItem, Store } from '../store/store.js';
import { storeRetryPolicy } from './store-retry.js';

export const DEFAULT_MAX_BATCH = 1000;

/**
 * Told what became of an item: `committed` with its result once its batch has committed, or
 * `failed` when the queue is aborted. Exactly one of them, once; neither may throw.
 */
export interface CommitWaiter {
  committed(result: CommitResult): void;
  failed(error: Error): void;
}

/** `add`'s waiter: a promise. */
class PromiseWaiter implements CommitWaiter {
  readonly promise: Promise<CommitResult>;
  committed!: (result: CommitResult) => void;
  failed!: (error: Error) => void;
  constructor() {
    this.promise = new Promise<CommitResult>((resolve, reject) => {
      this.committed = resolve;
      this.failed = reject;
    });
  }
}

export interface CommitQueueOptions {
  /** Most items per transaction (default 1000). */
  maxBatch?: number;
  /** Retry backoff bounds, ms (default 100 … 5000). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** After every successful commit: its size and duration in ms. */
  onCommit?: (size: number, ms: number) => void;
  /** After every failed attempt. */
  onError?: (error: Error, attempt: number, size: number) => void;
}

export class CommitQueue {
  readonly #store: Store;
  readonly #max: number;
  readonly #o: CommitQueueOptions;
  /** Waiting items and their waiters, index for index (no object per item: one per message). */
  #items: DataItem[] = [];
  #waiters: CommitWaiter[] = [];
  #running: CommitWaiter[] | undefined;
  #scheduled = false;
  #failures = 0;
  #aborted: Error | undefined;
  /** The wait between retries of a failed batch (an abort ends it). */
  readonly #retryWait = new Sleeper();
  #idle: (() => void)[] = [];

  constructor(store: Store, options: CommitQueueOptions = {}) {
    this.#store = store;
    this.#max = options.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!Number.isInteger(this.#max) || this.#max < 1) throw new RangeError('maxBatch must be an integer ≥ 1');
    this.#o = options;
  }

  /** Items waiting or committing. */
  get depth(): number {
    return this.#items.length + (this.#running?.length ?? 0);
  }

  /** True while the last commit attempt failed. */
  get failing(): boolean {
    return this.#failures > 0;
  }

  add(item: DataItem): Promise<CommitResult> {
    if (this.#aborted) return Promise.reject(this.#aborted);
    const waiter = new PromiseWaiter();
    this.enqueue(item, waiter);
    return waiter.promise;
  }

  /**
   * `add` without a promise: `waiter` is told the result (the data path's per-message object is
   * both the item and its waiter). After `abort`, `waiter.failed` is called at once.
   */
  enqueue(item: DataItem, waiter: CommitWaiter): void {
    if (this.#aborted) {
      waiter.failed(this.#aborted);
      return;
    }
    this.#items.push(item);
    this.#waiters.push(waiter);
    this.#schedule();
  }

  /** Resolves when nothing waits or commits. */
  idle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Rejects everything waiting or retrying (their messages stay unacknowledged). */
  abort(error: Error): void {
    const again = this.#aborted !== undefined;
    this.#aborted = error;
    this.#retryWait.wake();
    if (again) return; // every waiter was told at the first abort (and none was added since)
    const all = [...this.#waiters, ...(this.#running ?? [])];
    this.#items = [];
    this.#waiters = [];
    for (const w of all) w.failed(error);
  }

  #schedule(): void {
    if (this.#scheduled || this.#running) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#running || this.#items.length === 0) return;
    const items = this.#items.splice(0, this.#max);
    const batch = this.#waiters.splice(0, this.#max);
    this.#running = batch;
    const backoff = new Backoff(storeRetryPolicy(this.#o.retryMinMs, this.#o.retryMaxMs), () => 0);
    for (;;) {
      if (this.#aborted) break;
      const started = performance.now();
      try {
        const results = await this.#store.commitBatch(items);
        this.#failures = 0;
        this.#o.onCommit?.(items.length, performance.now() - started);
        this.#running = undefined;
        // Aborted meanwhile: its waiters were told `failed` already (a promise ignored the rest).
        if (!this.#aborted) for (let i = 0; i < batch.length; i++) batch[i]!.committed(results[i]!);
        break;
      } catch (e) {
        this.#failures++;
        const error = e instanceof Error ? e : new Error(String(e));
        this.#o.onError?.(error, backoff.attempts + 1, items.length);
        if (this.#aborted) break;
        await this.#retryWait.sleep(backoff.next());
      }
    }
    this.#running = undefined;
    if (this.#items.length > 0 && !this.#aborted) {
      void this.#flush();
      return;
    }
    if (this.depth === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }
}
