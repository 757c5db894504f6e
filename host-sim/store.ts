/**
 * The device store (`src/platform/store.ts`) on Node:
 * - `FileStore`: one file per key in a directory, each write atomic (node/atomic-write.ts:
 *   temporary file, fsync, rename, fsync of the directory), so a crashed simulator never leaves
 *   half a value; `{ sync: false }` (a large simulated fleet) keeps the rename and drops the fsyncs;
 * - `MemoryStore`: a Map (tests, throwaway devices);
 * - `ErasingStore`: wraps either and makes `set` behave as the ESP32's Preference.set does,
 *   erase first and then write, with a hook between the two where a test injects a power cut.
 *   The device code must be correct on this store, since the real device has no better one.
 */

import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../node/atomic-write.js';
import { checkStoreEntry, type KeyValueStore } from '../src/platform/store.js';

export class MemoryStore implements KeyValueStore {
  readonly #values = new Map<string, Uint8Array>();

  get(key: string): Uint8Array | undefined {
    return this.#values.get(key)?.slice();
  }

  set(key: string, value: Uint8Array): void {
    checkStoreEntry(key, value);
    this.#values.set(key, value.slice());
  }

  delete(key: string): void {
    this.#values.delete(key);
  }

  keys(): string[] {
    return [...this.#values.keys()].sort();
  }
}

export class FileStore implements KeyValueStore {
  readonly dir: string;
  readonly #sync: boolean;

  constructor(dir: string, options: { sync?: boolean } = {}) {
    this.dir = dir;
    this.#sync = options.sync ?? true;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  #path(key: string): string {
    checkStoreEntry(key);
    // Keys are printable ASCII; keep the file names portable.
    return join(this.dir, encodeURIComponent(key).replace(/\*/g, '%2A'));
  }

  get(key: string): Uint8Array | undefined {
    try {
      const data = readFileSync(this.#path(key));
      return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  set(key: string, value: Uint8Array): void {
    checkStoreEntry(key, value);
    writeFileAtomic(this.#path(key), value, 0o600, { sync: this.#sync });
  }

  delete(key: string): void {
    rmSync(this.#path(key), { force: true });
  }
}

export interface ErasingStoreHooks {
  /** Called after the old value was erased and before the new one is written (throw here to cut the power). */
  afterErase?: (key: string) => void;
  /** Called after the new value was written. */
  afterWrite?: (key: string) => void;
}

/** ESP32 Preference semantics over another store: `set` = erase, then write. */
export class ErasingStore implements KeyValueStore {
  readonly #inner: KeyValueStore;
  readonly #hooks: ErasingStoreHooks;
  /** Completed `set` calls, and erases (a crash between them leaves the key absent). */
  writes = 0;
  erases = 0;

  constructor(inner: KeyValueStore, hooks: ErasingStoreHooks = {}) {
    this.#inner = inner;
    this.#hooks = hooks;
  }

  get(key: string): Uint8Array | undefined {
    return this.#inner.get(key);
  }

  set(key: string, value: Uint8Array): void {
    checkStoreEntry(key, value);
    this.#inner.delete(key);
    this.erases++;
    this.#hooks.afterErase?.(key);
    this.#inner.set(key, value);
    this.writes++;
    this.#hooks.afterWrite?.(key);
  }

  delete(key: string): void {
    this.#inner.delete(key);
  }
}
