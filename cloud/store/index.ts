/**
 * Opening the cloud store by URL:
 *   sqlite:FILE                    SQLite in FILE (created if missing; `sqlite::memory:` for a throwaway)
 *   postgres://user@host:port/db   PostgreSQL (also postgresql://; any libpq-style URL that pg accepts)
 *
 * `writerThread: true` runs a SQLite store in a writer thread (writer-thread.ts): the caller's
 * thread does no SQL and waits for no fsync. The service opens its SQLite store that way;
 * PostgreSQL is asynchronous I/O already and ignores the option.
 */
import { redactUrl } from '../../node/redact-url.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres.js';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type { Store } from './store.js';
import { openSqliteWriterThread } from './writer-thread.js';

export { PostgresStore, type PostgresStoreOptions } from './postgres.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export * from './store.js';
export { openSqliteWriterThread, SqliteWriterThread } from './writer-thread.js';

export type OpenStoreOptions = SqliteStoreOptions &
  PostgresStoreOptions & {
    /** SQLite: run the connection in a writer thread (writer-thread.ts). Default false. */
    writerThread?: boolean;
  };

export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file.length === 0) throw new Error('store URL sqlite: needs a file name, e.g. sqlite:data/cose-flow.db');
    const { writerThread, ...sqlite } = options;
    return writerThread === true ? openSqliteWriterThread(file, sqlite) : openSqliteStore(file, sqlite);
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { writerThread: _, ...postgres } = options;
    return openPostgresStore(url, postgres);
  }
  const shown = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? redactUrl(url) : JSON.stringify(url);
  throw new Error(
    `unsupported store URL ${shown}: use sqlite:FILE (e.g. sqlite:data/cose-flow.db) or postgres://user@host:5432/db`,
  );
}
