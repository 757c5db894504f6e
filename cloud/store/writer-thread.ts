/**
 * The SQLite store in a writer thread: a `Store` whose SQLite connection lives in a
 * worker_threads Worker, so the service's thread does no SQL and never waits for an fsync.
 *
 * Why: better-sqlite3 is synchronous. On the service's thread a batch commit (the inserts, the
 * window updates and the WAL fsync of synchronous FULL) stops everything else — reading the
 * broker, decrypting, acknowledging — for its whole duration; in the profile of a backlog drain
 * it was a quarter of the thread (issue 13 §3). Here the thread posts the call and goes on; the
 * worker runs the same `SqliteStore` (cloud/store/sqlite.ts), one call at a time in the order
 * they were posted, and posts back the result.
 *
 * Semantics are those of `SqliteStore` (the store contract suite runs against both): a call's
 * promise settles once the worker's transaction has committed (or failed), so whoever
 * acknowledges after `commitBatch` resolves still acknowledges only what is on disk. Calls of one
 * caller reach the database in the order they were made. The clock (`StoreOptions.now`, a
 * function) cannot cross threads: each call carries the caller's `now()`, and the worker's store
 * reads that. Errors come back with their class (CoseError with its reason, RangeError, Error
 * with the SQLite `code`).
 *
 * If the worker dies, every waiting call and every later one rejects (the service retries a
 * commit, leaving its messages unacknowledged, and `/health` says degraded).
 *
 *   const store = await openSqliteWriterThread(file, options);   // or openStore(url, { writerThread: true })
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { copyInto } from '../../src/bytes.js';
import { CoseError, type CoseReason } from '../../src/cose/errors.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type {
  CommitResult,
  DataItem,
  DeviceRecord,
  ListPayloadsQuery,
  NewSession,
  PutSessionResult,
  SessionGrace,
  SessionRecord,
  Store,
  StoredPayload,
  StoreStats,
} from './store.js';

const ROLE = 'cose-flow-sqlite-writer';

type Method =
  | 'getDevice'
  | 'resetKidFloor'
  | 'closeSessions'
  | 'listDevices'
  | 'putSession'
  | 'getSession'
  | 'commitBatch'
  | 'listPayloads'
  | 'countPayloads'
  | 'stats'
  | 'close';

interface Request {
  id: number;
  method: Method;
  args: unknown[];
  /** The caller's clock at the call. */
  now: number;
}

interface SentError {
  name: string;
  message: string;
  reason?: string;
  code?: string;
  stack?: string;
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: SentError };

interface Ready {
  ready: true;
  windowSize: number;
  sessionGrace: SessionGrace;
}

type WorkerOptions = Omit<SqliteStoreOptions, 'now'>;

/**
 * A batch as columns, its byte fields in one buffer that is transferred, not cloned: posting
 * 1000 items as objects with two small Uint8Arrays each (each cloned with its whole underlying
 * ArrayBuffer) cost the service's thread more than the rest of the hand-over.
 */
interface PackedBatch {
  packed: true;
  /** Each device id once (a batch holds many messages of few devices) … */
  deviceIds: string[];
  /** … and per item the index of its own. */
  devices: Uint32Array;
  /** seq, receivedAt per item. */
  numbers: Float64Array;
  /** kid bytes then payload bytes of every item, one after another. */
  bytes: Uint8Array;
  /** Per item: where its kid starts, where its payload starts; and the end. */
  offsets: Uint32Array;
}

function pack(items: readonly DataItem[]): PackedBatch {
  const n = items.length;
  let size = 0;
  for (const it of items) size += it.kid.length + it.payload.length;
  const bytes = new Uint8Array(size);
  const offsets = new Uint32Array(2 * n + 1);
  const numbers = new Float64Array(2 * n);
  const deviceIds: string[] = [];
  const index = new Map<string, number>();
  const devices = new Uint32Array(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const it = items[i]!;
    let d = index.get(it.deviceId);
    if (d === undefined) {
      d = deviceIds.push(it.deviceId) - 1;
      index.set(it.deviceId, d);
    }
    devices[i] = d;
    numbers[2 * i] = it.seq;
    numbers[2 * i + 1] = it.receivedAt;
    offsets[2 * i] = at;
    copyInto(bytes, it.kid, at);
    at += it.kid.length;
    offsets[2 * i + 1] = at;
    copyInto(bytes, it.payload, at);
    at += it.payload.length;
  }
  offsets[2 * n] = at;
  return { packed: true, deviceIds, devices, numbers, bytes, offsets };
}

/** A batch's results cross back as one byte each (an index here), not as an array of strings. */
const RESULTS: readonly CommitResult[] = ['accepted', 'duplicate', 'replay', 'unknown-session', 'closed'];

function packResults(results: readonly CommitResult[]): Uint8Array {
  const codes = new Uint8Array(results.length);
  for (let i = 0; i < results.length; i++) {
    const code = RESULTS.indexOf(results[i]!);
    if (code < 0) throw new Error(`commitBatch returned an unknown result: ${String(results[i])}`);
    codes[i] = code;
  }
  return codes;
}

function unpackResults(codes: Uint8Array): CommitResult[] {
  const results = new Array<CommitResult>(codes.length);
  for (let i = 0; i < codes.length; i++) results[i] = RESULTS[codes[i]!]!;
  return results;
}

function unpack(b: PackedBatch): DataItem[] {
  const items = new Array<DataItem>(b.devices.length);
  for (let i = 0; i < items.length; i++)
    items[i] = {
      deviceId: b.deviceIds[b.devices[i]!]!,
      kid: b.bytes.subarray(b.offsets[2 * i]!, b.offsets[2 * i + 1]!),
      seq: b.numbers[2 * i]!,
      receivedAt: b.numbers[2 * i + 1]!,
      payload: b.bytes.subarray(b.offsets[2 * i + 1]!, b.offsets[2 * i + 2]!),
    };
  return items;
}

// ---------------------------------------------------------------------------------- the worker

function sendable(e: unknown): SentError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const out: SentError = { name: e.name, message: e.message };
  if (e.stack !== undefined) out.stack = e.stack;
  if (e instanceof CoseError) out.reason = e.reason;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') out.code = code;
  return out;
}

function runWorker(): void {
  const { file, options } = workerData as { role: string; file: string; options: WorkerOptions };
  const port = parentPort!;
  let now = Date.now();
  let store: SqliteStore;
  try {
    store = new SqliteStore(file, { ...options, now: () => now });
  } catch (e) {
    port.postMessage({ ready: false, error: sendable(e) });
    return;
  }
  port.postMessage({ ready: true, windowSize: store.windowSize, sessionGrace: store.sessionGrace } satisfies Ready);
  // SqliteStore's methods do their work synchronously (the promise only wraps the result), so
  // calls run one at a time, in the order posted, and `now` is the clock of the call running.
  port.on('message', (req: Request) => {
    now = req.now;
    let result: Promise<unknown>;
    try {
      const args = req.method === 'commitBatch' ? [unpack(req.args[0] as PackedBatch)] : req.args;
      result = (store[req.method] as (...a: unknown[]) => Promise<unknown>)(...args);
    } catch (e) {
      result = Promise.reject(e);
    }
    if (req.method === 'commitBatch') result = result.then((value) => packResults(value as CommitResult[]));
    result.then(
      (value) => {
        // commitBatch's result codes are transferred, not copied.
        const transfer = req.method === 'commitBatch' ? [(value as Uint8Array).buffer as ArrayBuffer] : [];
        port.postMessage({ id: req.id, ok: true, value } satisfies Reply, transfer);
        if (req.method === 'close') port.close();
      },
      (e: unknown) => port.postMessage({ id: req.id, ok: false, error: sendable(e) } satisfies Reply),
    );
  });
}

if (!isMainThread && (workerData as { role?: unknown } | null)?.role === ROLE) runWorker();

// ------------------------------------------------------------------------------ the caller's side

function received(e: SentError): Error {
  let error: Error;
  if (e.name === 'CoseError' && e.reason !== undefined) {
    error = new CoseError(e.reason as CoseReason, '');
    error.message = e.message;
  } else if (e.name === 'RangeError') error = new RangeError(e.message);
  else if (e.name === 'TypeError') error = new TypeError(e.message);
  else {
    error = new Error(e.message);
    if (e.name !== 'Error') Object.defineProperty(error, 'name', { value: e.name });
  }
  if (e.code !== undefined) (error as Error & { code?: string }).code = e.code;
  if (e.stack !== undefined)
    error.stack = `${error.name}: ${error.message}\n    (in the SQLite writer thread)\n${e.stack.split('\n').slice(1).join('\n')}`;
  return error;
}

/** The SQLite store, run in a writer thread; see the module comment. */
export class SqliteWriterThread implements Store {
  readonly kind = 'sqlite';
  readonly file: string;
  readonly windowSize: number;
  readonly sessionGrace: SessionGrace;
  readonly #worker: Worker;
  readonly #now: () => number;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #dead: Error | undefined;
  #closed: Promise<void> | undefined;

  private constructor(file: string, worker: Worker, ready: Ready, now: () => number) {
    this.file = file;
    this.#worker = worker;
    this.windowSize = ready.windowSize;
    this.sessionGrace = ready.sessionGrace;
    this.#now = now;
    worker.on('message', (reply: Reply) => this.#reply(reply));
    worker.on('error', (e) => this.#die(e));
    worker.on('exit', (code) => this.#die(new Error(`the SQLite writer thread exited (code ${code})`)));
    worker.unref(); // held only while calls wait (#call), like a plain SqliteStore holds nothing
  }

  /** Starts the writer thread and opens (creating or migrating) the store in FILE there. */
  static open(file: string, options: SqliteStoreOptions = {}): Promise<SqliteWriterThread> {
    const { now = Date.now, ...rest } = options;
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { role: ROLE, file, options: rest },
      // The process's flags, but not --input-type (it refuses a worker started from a file).
      execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')),
    });
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => {
        void worker.terminate();
        reject(e);
      };
      worker.once('error', fail);
      worker.once('message', (m: Ready | { ready: false; error: SentError }) => {
        worker.off('error', fail);
        if (m.ready) resolve(new SqliteWriterThread(file, worker, m, now));
        else fail(received(m.error));
      });
    });
  }

  getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    return this.#call('getDevice', [deviceId]);
  }
  resetKidFloor(deviceId: string, at?: number): Promise<boolean> {
    return this.#call('resetKidFloor', at === undefined ? [deviceId] : [deviceId, at]);
  }
  closeSessions(deviceId: string, options?: { serial?: string; at?: number }): Promise<number> {
    return this.#call('closeSessions', options === undefined ? [deviceId] : [deviceId, options]);
  }
  listDevices(): Promise<DeviceRecord[]> {
    return this.#call('listDevices', []);
  }
  putSession(session: NewSession): Promise<PutSessionResult> {
    return this.#call('putSession', [session]);
  }
  getSession(deviceId: string, kid: Uint8Array): Promise<SessionRecord | undefined> {
    return this.#call('getSession', [deviceId, kid]);
  }
  commitBatch(items: readonly DataItem[]): Promise<CommitResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    const batch = pack(items);
    return this.#call<Uint8Array>('commitBatch', [batch], [
      batch.bytes.buffer,
      batch.devices.buffer,
      batch.numbers.buffer,
      batch.offsets.buffer,
    ] as ArrayBuffer[]).then(unpackResults);
  }
  listPayloads(query: ListPayloadsQuery): Promise<StoredPayload[]> {
    return this.#call('listPayloads', [query]);
  }
  countPayloads(deviceId?: string): Promise<number> {
    return this.#call('countPayloads', deviceId === undefined ? [] : [deviceId]);
  }
  stats(): Promise<StoreStats> {
    return this.#call('stats', []);
  }

  /** Closes the database in the worker (after the calls already made), then ends the thread. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#dead === undefined) {
        try {
          await this.#call('close', []);
        } catch {
          // dead already: nothing to close
        }
      }
      await this.#worker.terminate();
    })();
    return this.#closed;
  }

  #call<T>(method: Method, args: unknown[], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.#dead !== undefined) return Promise.reject(this.#dead);
    if (this.#closed !== undefined && method !== 'close') return Promise.reject(new Error('the store is closed'));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.#waiting.size === 0) this.#worker.ref();
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.postMessage({ id, method, args, now: this.#now() } satisfies Request, transfer);
    });
  }

  #reply(reply: Reply): void {
    const waiting = this.#waiting.get(reply.id);
    if (waiting === undefined) return;
    this.#waiting.delete(reply.id);
    if (this.#waiting.size === 0) this.#worker.unref();
    if (reply.ok) waiting.resolve(reply.value);
    else waiting.reject(received(reply.error));
  }

  #die(error: Error): void {
    this.#dead ??= error;
    for (const w of this.#waiting.values()) w.reject(error);
    this.#waiting.clear();
  }
}

/** Opens (creating or migrating) the store in FILE, run by a writer thread. */
export function openSqliteWriterThread(file: string, options: SqliteStoreOptions = {}): Promise<SqliteWriterThread> {
  return SqliteWriterThread.open(file, options);
}
