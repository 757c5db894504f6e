/**
 * `--out FILE`: the stored payloads as JSON lines (payload.ts), exactly once per line, also across
 * crashes. The file follows the store (the source of truth), not the message flow:
 *
 *   commit (store) → ack (broker)          the message path never waits for the file
 *   store.listPayloads(after: cursor) → append lines → fsync → FILE.cursor {after, written, size}
 *
 * A crash between the commit and the line costs nothing: the next start reads on from the cursor.
 * A crash after lines were appended but before the cursor was saved leaves lines past the saved
 * `size`: they are cut off at start and written again from the store. So every payload appears once.
 *
 * Payload ids come from the store in commit order on SQLite; on PostgreSQL several writers can
 * make a smaller id visible after a larger one, so an id missing below the largest one written is
 * waited for (`gapHoldMs`, default 10 s: far longer than any commit) before it is skipped, and ids
 * already written past such a gap are remembered in the cursor.
 *
 * With several instances sharing one store, every instance's file gets every payload: give `--out`
 * to one instance, or use the store itself.
 */
import {
  closeSync,
  existsSync,
  fchmodSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import { writeFileAtomic } from '../../node/atomic-write.js';
import type { Store } from '../store/store.js';
import { payloadJson } from '../telemetry/payload.js';

interface Cursor {
  version: 1;
  /** Every payload id ≤ after is in the file (or was skipped as a gap). */
  after: number;
  /** Ids > after already in the file (only while a gap is held). */
  written: number[];
  /** The file's size when the cursor was saved. */
  size: number;
}

export interface OutFileOptions {
  /** Payloads read per store query (default 1000). */
  pageSize?: number;
  /** How often to look for payloads committed by others (default 500 ms; own commits call `kick`). */
  pollMs?: number;
  /** How long a missing id is waited for (default 10 000 ms). */
  gapHoldMs?: number;
  /** fsync the file before saving the cursor (default true). */
  fsync?: boolean;
  now?: () => number;
  onError?: (error: Error) => void;
  /** After each write: how many lines. */
  onWrite?: (lines: number) => void;
}

export class OutFile {
  readonly path: string;
  readonly cursorPath: string;
  readonly #store: Store;
  readonly #o: Required<Omit<OutFileOptions, 'onError' | 'onWrite'>> & OutFileOptions;
  #fd: number | undefined;
  #cursor: Cursor = { version: 1, after: 0, written: [], size: 0 };
  #written = new Set<number>();
  #gapsSeen = new Map<number, number>();
  #running: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Lines written since open. */
  lines = 0;

  constructor(store: Store, path: string, options: OutFileOptions = {}) {
    this.#store = store;
    this.path = path;
    this.cursorPath = `${path}.cursor`;
    this.#o = { pageSize: 1000, pollMs: 500, gapHoldMs: 10_000, fsync: true, now: Date.now, ...options };
  }

  /** Reconciles the file with its cursor, then follows the store. */
  open(): void {
    const hasCursor = existsSync(this.cursorPath);
    if (hasCursor) {
      const c = JSON.parse(readFileSync(this.cursorPath, 'utf8')) as Partial<Cursor>;
      if (
        c.version !== 1 ||
        !Number.isSafeInteger(c.after) ||
        !Number.isSafeInteger(c.size) ||
        !Array.isArray(c.written)
      )
        throw new Error(`${this.cursorPath} is not a cose-flow out-file cursor; move it away to export from the start`);
      this.#cursor = { version: 1, after: c.after!, written: c.written!, size: c.size! };
    }
    // Decrypted readings: the owner's only, also when an older version made the file 0644.
    this.#fd = openSync(this.path, 'a+', 0o600);
    if ((fstatSync(this.#fd).mode & 0o077) !== 0) fchmodSync(this.#fd, 0o600);
    const size = statSync(this.path).size;
    if (!hasCursor && size > 0) {
      // Not a file this exporter wrote (or its cursor is gone): keep it, append every payload after it.
      this.#o.onError?.(new Error(`${this.path} has no cursor ${this.cursorPath}: appending every stored payload`));
      this.#cursor.size = size;
    } else if (size > this.#cursor.size) {
      // Lines written after the cursor was last saved: written again from the store below.
      ftruncateSync(this.#fd, this.#cursor.size);
    } else if (size < this.#cursor.size) {
      this.#o.onError?.(
        new Error(`${this.path} is shorter than its cursor says (${size} < ${this.#cursor.size}): continuing after it`),
      );
      this.#cursor.size = size;
    }
    this.#written = new Set(this.#cursor.written);
    this.#timer = setInterval(() => this.kick(), this.#o.pollMs);
    this.kick();
  }

  /** Looks for new payloads now (after a commit). */
  kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain()
      .catch((e: Error) => this.#o.onError?.(e))
      .finally(() => {
        this.#running = undefined;
        if (this.#again && !this.#closed) {
          this.#again = false;
          this.kick();
        }
      });
  }

  /** Writes everything committed so far, then stops following. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    while (this.#running) await this.#running;
    if (!this.#closed) {
      try {
        await this.#drain();
      } catch (e) {
        this.#o.onError?.(e as Error);
      }
    }
    this.#closed = true;
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** Resolves once every payload committed before the call is in the file. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
    await this.#drain();
  }

  async #drain(): Promise<void> {
    for (;;) {
      const rows = await this.#store.listPayloads({ after: this.#cursor.after, limit: this.#o.pageSize });
      const fresh = rows.filter((r) => !this.#written.has(r.id));
      if (fresh.length > 0) {
        const text = `${fresh.map((r) => JSON.stringify(payloadJson(r))).join('\n')}\n`;
        const bytes = Buffer.from(text, 'utf8');
        let off = 0;
        while (off < bytes.length) off += writeSync(this.#fd!, bytes, off, bytes.length - off, null);
        if (this.#o.fsync) fdatasyncSync(this.#fd!);
        this.#cursor.size += bytes.length;
        for (const r of fresh) this.#written.add(r.id);
        this.lines += fresh.length;
        this.#o.onWrite?.(fresh.length);
      }
      const before = this.#cursor.after;
      this.#advance();
      if (fresh.length > 0 || this.#cursor.after !== before) this.#save();
      if (rows.length < this.#o.pageSize || this.#cursor.after === before) return;
    }
  }

  /** Moves `after` over written ids, and over gaps held long enough. */
  #advance(): void {
    const ids = [...this.#written].sort((a, b) => a - b);
    const now = this.#o.now();
    let after = this.#cursor.after;
    for (const id of ids) {
      if (id !== after + 1) {
        const gapStart = after + 1;
        const seen = this.#gapsSeen.get(gapStart);
        if (seen === undefined) {
          this.#gapsSeen.set(gapStart, now);
          break;
        }
        if (now - seen < this.#o.gapHoldMs) break;
        this.#gapsSeen.delete(gapStart);
      }
      after = id;
      this.#written.delete(id);
    }
    this.#cursor.after = after;
    this.#cursor.written = [...this.#written].sort((a, b) => a - b);
  }

  #save(): void {
    writeFileAtomic(this.cursorPath, `${JSON.stringify(this.#cursor)}\n`);
  }
}
