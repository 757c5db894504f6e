/**
 * What `cose-flow cloud run` checks before the service writes anything (its storage key, its
 * database) or connects for good: the data directory has its CA and cloud key, the SQLite
 * database can be created where it is asked for, the broker answers, and no other `cloud run` on
 * this machine uses the same MQTT client id. Each failure is one sentence naming the thing and
 * what to do.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { openDataDir } from '../cloud/pki/data-dir.js';
import { DEFAULT_STORE_FILE } from '../cloud/service/defaults.js';
import { BrokerUnreachable, probeBroker } from '../node/broker-probe.js';

export class PreflightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreflightError';
  }
}

export interface Preflight {
  dataDir: string;
  /** The store URL as configured (sqlite:FILE, postgres://…), or undefined for the default. */
  store: string | undefined;
  /** Trust anchors given instead of DATA_DIR/ca.pem. */
  trust: string[] | undefined;
}

/** The data directory and the SQLite file: checked without writing anything. */
export function checkFiles(p: Preflight): void {
  const dir = openDataDir(p.dataDir);
  if (!existsSync(p.dataDir))
    throw new PreflightError(
      `the data directory ${p.dataDir} does not exist: give --data-dir the directory \`cose-flow ca init\` made ` +
        `(or run \`cose-flow ca init --data-dir ${p.dataDir}\` and \`cose-flow cloud keygen --data-dir ${p.dataDir}\`)`,
    );
  if (p.trust === undefined && !existsSync(dir.caCertificate))
    throw new PreflightError(
      `no CA in ${p.dataDir} (${dir.caCertificate} is missing): run \`cose-flow ca init --data-dir ${p.dataDir}\`, ` +
        'or name the CA certificates with --trust',
    );
  if (!existsSync(dir.cloudKey))
    throw new PreflightError(
      `no cloud key in ${p.dataDir} (${dir.cloudKey} is missing): run \`cose-flow cloud keygen --data-dir ${p.dataDir}\``,
    );
  const sqlite = p.store === undefined ? join(p.dataDir, DEFAULT_STORE_FILE) : /^sqlite:(.+)$/.exec(p.store)?.[1];
  if (sqlite !== undefined && !existsSync(sqlite)) {
    const parent = dirname(resolve(sqlite));
    let isDir = false;
    try {
      isDir = statSync(parent).isDirectory();
    } catch {
      // missing
    }
    if (!isDir)
      throw new PreflightError(`cannot create the database ${sqlite}: the directory ${parent} does not exist`);
  }
}

/** The broker answers (nothing is written before it does). */
export async function checkBroker(url: string, mqtt: Parameters<typeof probeBroker>[1]): Promise<void> {
  try {
    await probeBroker(url, mqtt);
  } catch (e) {
    if (e instanceof BrokerUnreachable) throw new PreflightError(e.message);
    throw e;
  }
}

/**
 * Holds `DATA_DIR/.cloud-run-<clientId>.pid` while the service runs: a second `cloud run` with the
 * same client id (the default one is derived from the host name and the data directory) would
 * take the broker session over and both would disconnect each other forever. A file left by a
 * process that is gone is taken over. Returns the release function.
 */
export function holdClientId(dataDir: string, clientId: string): () => void {
  const path = join(dataDir, `.cloud-run-${clientId.replace(/[^A-Za-z0-9._-]/g, '_')}.pid`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
        } catch {
          // gone already
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
      throw new PreflightError(
        `another cose-flow cloud run (pid ${pid}) uses the MQTT client id ${clientId} on ${dataDir}: two instances ` +
          'with one client id take the broker session from each other forever; give each its own --client-id ' +
          '(and the same --share GROUP to split the messages)',
      );
    rmSync(path, { force: true }); // left by a process that is gone
  }
  throw new PreflightError(`cannot take ${path}: it keeps reappearing`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
