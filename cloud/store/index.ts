/**
 * Opening the cloud store by URL:
 *   sqlite:FILE                    SQLite in FILE (created if missing; `sqlite::memory:` for a throwaway)
 *   postgres://user@host:port/db   PostgreSQL (also postgresql://; any libpq-style URL that pg accepts)
 */
import { redactUrl } from '../../node/redact-url.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres.js';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type { Store } from './store.js';

export { PostgresStore, type PostgresStoreOptions } from './postgres.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export * from './store.js';

export type OpenStoreOptions = SqliteStoreOptions & PostgresStoreOptions;

export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file.length === 0) throw new Error('store URL sqlite: needs a file name, e.g. sqlite:data/cose-flow.db');
    return openSqliteStore(file, options);
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return openPostgresStore(url, options);
  const shown = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? redactUrl(url) : JSON.stringify(url);
  throw new Error(
    `unsupported store URL ${shown}: use sqlite:FILE (e.g. sqlite:data/cose-flow.db) or postgres://user@host:5432/db`,
  );
}
