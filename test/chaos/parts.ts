/**
 * The chaos suite's moving parts, each a real process or a real file system the suite controls:
 * mosquitto (its own config: persistence on or off, autosave), PostgreSQL (restartable on the same
 * port, unlike test/fixtures/postgres.ts), a TCP proxy in front of the broker for the cloud's MQTT
 * connection (to drop it), a tmpfs for the store (to fill it), the cloud service and the sim as
 * child processes, and a read-only look into the store.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  closeSync,
  mkdirSync,
  openSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { decodeReading } from '../../src/device/reading.js';
import { mosquittoBinary } from '../fixtures/mosquitto.js';
import { findPostgresBin } from '../fixtures/postgres.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'cose-flow.js');
export const CLOUD_CHILD = fileURLToPath(new URL('./cloud-child.js', import.meta.url));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `check` every 200 ms until it is true; throws after `ms` naming `what`. */
export async function until(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(200);
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

// ---------------------------------------------------------------------------------------------
// mosquitto

export interface BrokerOptions {
  /** persistence true/false. With it, `autosave_interval` seconds (what a kill -9 can lose). */
  persistence: boolean;
  autosaveSeconds: number;
}

export class Broker {
  readonly dir: string;
  readonly port: number;
  readonly options: BrokerOptions;
  #child: ChildProcess | undefined;
  #output = '';

  private constructor(dir: string, port: number, options: BrokerOptions) {
    this.dir = dir;
    this.port = port;
    this.options = options;
  }

  static async start(dir: string, options: BrokerOptions): Promise<Broker> {
    mkdirSync(dir, { recursive: true });
    const b = new Broker(dir, await freePort(), options);
    const lines = [
      `listener ${b.port} 127.0.0.1`,
      'allow_anonymous true',
      `persistence ${options.persistence}`,
      `persistence_location ${dir}/`,
      `autosave_interval ${options.autosaveSeconds}`,
      'autosave_on_changes false',
      'max_inflight_messages 1000',
      'max_queued_messages 1000000',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
    ];
    if (process.getuid?.() === 0) lines.push('user root');
    writeFileSync(join(dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
    await b.start();
    return b;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  output(): string {
    return this.#output.slice(-4000);
  }

  async start(): Promise<void> {
    const bin = mosquittoBinary();
    if (bin === undefined) throw new Error('mosquitto is not installed (apt-get install mosquitto)');
    const child = track(spawn(bin, ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] }));
    child.stdout?.on('data', (d) => {
      this.#output += d;
    });
    child.stderr?.on('data', (d) => {
      this.#output += d;
    });
    this.#child = child;
    await until(`mosquitto on port ${this.port}`, 30_000, async () => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}):\n${this.output()}`);
      return portOpen(this.port);
    });
  }

  /** SIGKILL (kill -9): nothing is written; what the last autosave held is what comes back. */
  async kill9(): Promise<void> {
    const c = this.#child;
    if (c === undefined) return;
    c.kill('SIGKILL');
    await exited(c);
  }

  /** SIGTERM: mosquitto writes its persistence file on the way out. */
  async term(): Promise<void> {
    const c = this.#child;
    if (c === undefined) return;
    c.kill('SIGTERM');
    await exited(c);
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL, restartable on the same port

export class Postgres {
  readonly dir: string;
  readonly port: number;
  readonly #bin: string;
  readonly #as: { uid?: number; gid?: number };
  #child: ChildProcess | undefined;
  #output = '';

  private constructor(dir: string, port: number, bin: string, as: { uid?: number; gid?: number }) {
    this.dir = dir;
    this.port = port;
    this.#bin = bin;
    this.#as = as;
  }

  /** The postgres user's uid/gid when running as root (the server refuses root), else undefined. */
  static identity(): { uid: number; gid: number } | undefined {
    if (process.getuid?.() !== 0) return undefined;
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  }

  static async start(dir: string): Promise<Postgres> {
    const { bin } = findPostgresBin();
    const id = Postgres.identity();
    const as = id === undefined ? {} : { uid: id.uid, gid: id.gid };
    mkdirSync(dir, { recursive: true });
    if (id !== undefined) chownSync(dir, id.uid, id.gid);
    execFileSync(
      join(bin, 'initdb'),
      ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'],
      { cwd: dir, stdio: 'pipe', env: { ...process.env, LC_ALL: 'C' }, ...as },
    );
    const p = new Postgres(dir, await freePort(), bin, as);
    await p.start();
    return p;
  }

  get adminUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  url(db: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  output(): string {
    return this.#output.slice(-4000);
  }

  async start(): Promise<void> {
    // synchronous_commit stays on: a commit the service acknowledges is in the WAL (the OS keeps
    // it across a server crash; fsync off only matters if the machine itself went down).
    const settings = ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${this.dir}`];
    settings.push('-c', 'max_connections=100', '-c', 'shared_buffers=32MB', '-c', 'fsync=off');
    const child = track(
      spawn(join(this.#bin, 'postgres'), ['-D', join(this.dir, 'data'), '-p', String(this.port), ...settings], {
        cwd: this.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C' },
        ...this.#as,
      }),
    );
    child.stdout?.on('data', (d) => {
      this.#output += d;
    });
    child.stderr?.on('data', (d) => {
      this.#output += d;
    });
    this.#child = child;
    await until('PostgreSQL to accept connections', 60_000, async () => {
      if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}):\n${this.output()}`);
      const c = new pg.Client({ connectionString: this.adminUrl, connectionTimeoutMillis: 1000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SELECT 1');
        await c.end();
        return true;
      } catch {
        await c.end().catch(() => {});
        return false;
      }
    });
  }

  /** 'fast' (SIGINT: clean shutdown) or 'immediate' (SIGQUIT: no checkpoint, crash recovery at start). */
  async stop(mode: 'fast' | 'immediate'): Promise<void> {
    const c = this.#child;
    if (c === undefined) return;
    c.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    await exited(c);
    clearTimeout(t);
  }

  get running(): boolean {
    const c = this.#child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  async sql(text: string, url = this.adminUrl): Promise<pg.QueryResult> {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    try {
      return await c.query(text);
    } finally {
      await c.end().catch(() => {});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy for the cloud's MQTT connection: `cut()` drops it and refuses new ones until `heal()`

export class Cut {
  readonly port: number;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut = false;

  private constructor(port: number, server: Server) {
    this.port = port;
    this.#server = server;
  }

  static async start(upstreamPort: number): Promise<Cut> {
    const port = await freePort();
    let self: Cut | undefined;
    const server = createServer((client) => {
      if (self === undefined || self.#cut) {
        client.destroy();
        return;
      }
      const upstream = createConnection({ port: upstreamPort, host: '127.0.0.1' });
      const pair = [client, upstream];
      const sockets = self.#sockets;
      for (const s of pair) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          sockets.delete(s);
          for (const o of pair) o.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    self = new Cut(port, server);
    return self;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.destroy();
  }

  heal(): void {
    this.#cut = false;
  }

  close(): void {
    this.cut();
    this.#server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// tmpfs: the store's disk, small enough to fill

export function mountTmpfs(dir: string, sizeMb: number, owner?: { uid: number; gid: number }): string | undefined {
  mkdirSync(dir, { recursive: true });
  const opts = [`size=${sizeMb}m`, 'mode=0700'];
  if (owner !== undefined) opts.push(`uid=${owner.uid}`, `gid=${owner.gid}`);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts.join(','), 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  return (r.stderr || r.stdout || `mount exited ${r.status}`).trim();
}

export function unmount(dir: string): void {
  const r = spawnSync('umount', [dir], { encoding: 'utf8' });
  if (r.status !== 0) spawnSync('umount', ['-l', dir]);
}

/** Fills the file system of `dir` with a filler file until ENOSPC; returns its path. */
export function fillDisk(dir: string): string {
  const path = join(dir, 'chaos-filler');
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 1 << 16, 4096, 512]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          if (writeSync(fd, chunk) < size) break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

export function freeDisk(filler: string): void {
  try {
    unlinkSync(filler);
  } catch {}
}

// ---------------------------------------------------------------------------------------------
// The cloud service as a child process

export interface CloudChildOptions {
  args: string[];
  /** Through test/chaos/cloud-child.js (slow-store runs) instead of `cose-flow cloud run`. */
  wrapped: boolean;
  /** Append every line the service prints to this file (CHAOS_LOGS=DIR keeps them). */
  logFile?: string;
}

/** Cloud log events the suite counts (plus any at level error or fatal). */
const COUNTED_EVENTS = new Set([
  'mqtt-session-lost',
  'started',
  'store-error',
  'duplicate',
  'rejected',
  'internal-error',
]);

export class Cloud {
  readonly options: CloudChildOptions;
  #child: ChildProcess | undefined;
  #tail: string[] = [];
  /** Counts of interesting log events across every start. */
  readonly events = new Map<string, number>();
  starts = 0;

  constructor(options: CloudChildOptions) {
    this.options = options;
  }

  tail(): string {
    return this.#tail.join('\n');
  }

  #line(line: string): void {
    if (this.options.logFile !== undefined) appendFileSync(this.options.logFile, `${line}\n`);
    this.#tail.push(line);
    if (this.#tail.length > 60) this.#tail.shift();
    const m = /"event":"([a-z-]+)"/.exec(line);
    const ev = m?.[1];
    if (ev === undefined) return;
    if (COUNTED_EVENTS.has(ev) || /"level":"(error|fatal)"/.test(line))
      this.events.set(ev, (this.events.get(ev) ?? 0) + 1);
  }

  async start(): Promise<void> {
    const args = this.options.wrapped
      ? [CLOUD_CHILD, ...this.options.args]
      : [BIN, 'cloud', 'run', ...this.options.args];
    const child = track(
      spawn(process.execPath, args, {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, COSE_FLOW_STORAGE_KEY: '' },
      }),
    );
    this.#child = child;
    let started = false;
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.includes('"event":"started"')) started = true;
        this.#line(line);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.starts++;
    await until('the cloud service to start', 90_000, () => {
      if (child.exitCode !== null) throw new Error(`the cloud exited (${child.exitCode}):\n${this.tail()}`);
      return started;
    });
  }

  get alive(): boolean {
    const c = this.#child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** How it last ended, when it is not alive (a crash of its own would show here). */
  get ended(): string | undefined {
    const c = this.#child;
    if (c === undefined || this.alive) return undefined;
    return c.signalCode ?? `exit ${c.exitCode}`;
  }

  async kill9(): Promise<void> {
    const c = this.#child;
    if (c === undefined) return;
    c.kill('SIGKILL');
    await exited(c);
  }

  slow(ms: number): void {
    this.#child?.stdin?.write(`slow ${ms}\n`);
  }

  async stop(): Promise<void> {
    const c = this.#child;
    if (c === undefined || !this.alive) return;
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    await exited(c);
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------------------------------------
// The simulated fleet: `cose-flow sim --json` as a child process

export interface SimSummary {
  devices: number;
  seconds: number;
  sealed: number;
  sent: number;
  acknowledged: number;
  resent: number;
  dropped: number;
  skipped: number;
  queuedAtStop: number;
  sessions: number;
  rekeys: number;
  reconnects: number;
  errors: number;
}

export class Sim {
  readonly #child: ChildProcess;
  #out = '';
  #lastProgress = '';
  sending = 0;
  connected = 0;
  queued = Number.POSITIVE_INFINITY;

  constructor(args: string[]) {
    this.#child = track(
      spawn(process.execPath, [BIN, 'sim', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    this.#child.stdout?.on('data', (d: Buffer) => {
      this.#out += d.toString();
    });
    this.#child.stderr?.on('data', (d: Buffer) => {
      const text = d.toString();
      for (const m of text.matchAll(/(\d+)\/(\d+) sending · (\d+) connected/g)) {
        this.sending = Number(m[1]);
        this.connected = Number(m[3]);
      }
      for (const m of text.matchAll(/ queued (\d+)/g)) this.queued = Number(m[1]);
      const last = text
        .trim()
        .split(/[\r\n]/)
        .at(-1);
      if (last) this.#lastProgress = last;
    });
  }

  get progress(): string {
    return this.#lastProgress;
  }

  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  async stop(): Promise<SimSummary> {
    this.#child.kill('SIGINT');
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 60_000);
    await exited(this.#child);
    clearTimeout(t);
    const line = this.#out.trim().split('\n').at(-1) ?? '';
    try {
      return JSON.parse(line) as SimSummary;
    } catch {
      throw new Error(
        `the sim printed no JSON summary (exit ${this.#child.exitCode}): ${this.#out.slice(-500)} ${this.#lastProgress}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A read-only look into the store (SQLite file or PostgreSQL database), independent of the service

export interface StoreFacts {
  stored: number;
  /** (device, epoch, kid, seq) present more than once, and the extra copies. */
  duplicateKeys: number;
  duplicateCopies: number;
  /** Sequence numbers missing inside a session's stored range (0 … max). */
  gaps: number;
  sessions: number;
}

export class StoreView {
  readonly #sqlite: string | undefined;
  readonly #pool: pg.Pool | undefined;

  constructor(url: string) {
    if (url.startsWith('sqlite:')) this.#sqlite = url.slice('sqlite:'.length);
    else {
      this.#pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 2000 });
      this.#pool.on('error', () => {});
    }
  }

  async #rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    if (this.#sqlite !== undefined) {
      const db = new Database(this.#sqlite, { readonly: true, fileMustExist: true });
      try {
        db.pragma('busy_timeout = 5000');
        return db.prepare(sql.replace(/\$\d+/g, '?')).all(...params) as T[];
      } finally {
        db.close();
      }
    }
    return (await this.#pool!.query(sql, params)).rows as T[];
  }

  /** Rows in the payloads table, or undefined while the store cannot be read. */
  async count(): Promise<number | undefined> {
    try {
      const r = await this.#rows<{ n: number | string }>('SELECT count(*) AS n FROM payloads');
      return Number(r[0]?.n ?? 0);
    } catch {
      return undefined;
    }
  }

  /**
   * stored_at of the first new payload stored after `storedAfter` (epoch ms): one whose reading
   * was taken (its `t`, the device's clock, the same host) after `t`, so that a redelivered older
   * message does not count as recovery. Undefined while there is none (or the store cannot be read).
   */
  async firstNewStoredAfter(t: number, storedAfter: number): Promise<number | undefined> {
    try {
      let first: number | undefined;
      for (let after = 0; ; ) {
        const rows = await this.#rows<{ id: number | string; s: number | string; p: Uint8Array }>(
          'SELECT id, stored_at AS s, payload AS p FROM payloads WHERE stored_at > $1 AND id > $2 ORDER BY id LIMIT 500',
          [storedAfter, after],
        );
        if (rows.length === 0) return first;
        for (const r of rows) {
          const reading = readingTime(r.p);
          if (reading !== undefined && reading > t && (first === undefined || Number(r.s) < first)) first = Number(r.s);
        }
        if (first !== undefined) return first;
        after = Number(rows.at(-1)!.id);
      }
    } catch {
      return undefined;
    }
  }

  async facts(): Promise<StoreFacts> {
    const stored = Number((await this.#rows<{ n: number | string }>('SELECT count(*) AS n FROM payloads'))[0]?.n ?? 0);
    const dup = await this.#rows<{ k: number | string | null; c: number | string | null }>(
      'SELECT count(*) AS k, sum(n - 1) AS c FROM (SELECT count(*) AS n FROM payloads GROUP BY device_id, epoch, kid, seq HAVING count(*) > 1) d',
    );
    const ranges = await this.#rows<{ hi: number | string; n: number | string }>(
      'SELECT max(seq) AS hi, count(DISTINCT seq) AS n FROM payloads GROUP BY device_id, epoch, kid',
    );
    let gaps = 0;
    for (const r of ranges) gaps += Number(r.hi) + 1 - Number(r.n);
    return {
      stored,
      duplicateKeys: Number(dup[0]?.k ?? 0),
      duplicateCopies: Number(dup[0]?.c ?? 0),
      gaps,
      sessions: ranges.length,
    };
  }

  async close(): Promise<void> {
    await this.#pool?.end().catch(() => {});
  }
}

/** The `t` (epoch ms) of a stored reading (src/device/reading.ts), or undefined. */
function readingTime(payload: Uint8Array): number | undefined {
  try {
    return decodeReading(payload).time;
  } catch {
    return undefined;
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
