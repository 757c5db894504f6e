/**
 * What the cloud writes is its owner's only: the data directory is 0700, and the database (with its
 * WAL and SHM files), the demo's logs and the `--out` export, which hold decrypted readings, are
 * 0600 — also when an older version left them 0644.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../cli/main.js';
import { OutFile } from '../../cloud/service/out-file.js';
import { SqliteStore } from '../../cloud/store/sqlite.js';
import { capturingIo } from '../fixtures/cli-io.js';

const mode = (path: string) => statSync(path).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

describe('file modes of what the cloud writes', () => {
  let tmp: string;
  let previousUmask: number;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'cf-modes-'));
    previousUmask = process.umask(0o022); // the usual umask, which leaves new files 0644
  });
  after(() => {
    process.umask(previousUmask);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('`ca init` makes the data directory 0700', async () => {
    const dir = join(tmp, 'data');
    const io = capturingIo();
    assert.equal(await main(['ca', 'init', '--data-dir', dir], io), 0, io.err);
    assert.equal(octal(mode(dir)), '0700');
  });

  test('the SQLite database and its WAL and SHM files are 0600', async () => {
    const file = join(tmp, 'fresh.db');
    const store = new SqliteStore(file); // its schema is written through the WAL
    try {
      for (const path of [file, `${file}-wal`, `${file}-shm`]) {
        assert.ok(existsSync(path), `${path} exists`);
        assert.equal(octal(mode(path)), '0600', path);
      }
    } finally {
      await store.close();
    }
  });

  test('an existing database readable by others is narrowed to 0600', async () => {
    const file = join(tmp, 'old.db');
    await new SqliteStore(file).close();
    chmodSync(file, 0o644);
    await new SqliteStore(file).close();
    assert.equal(octal(mode(file)), '0600');
  });

  test('the --out export is 0600, a new file and an old 0644 one alike', async () => {
    const store = new SqliteStore(':memory:');
    try {
      const fresh = join(tmp, 'fresh.jsonl');
      const a = new OutFile(store, fresh, { pollMs: 10 });
      a.open();
      await a.close();
      assert.equal(octal(mode(fresh)), '0600');

      const old = join(tmp, 'old.jsonl');
      writeFileSync(old, '', { mode: 0o644 });
      chmodSync(old, 0o644);
      const b = new OutFile(store, old, { pollMs: 10 });
      b.open();
      await b.close();
      assert.equal(octal(mode(old)), '0600');
    } finally {
      await store.close();
    }
  });
});
