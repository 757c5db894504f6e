/**
 * The one way a Node room writes a file that must survive a crash or a power cut whole:
 *
 *   write a temporary file beside the target → fsync it → rename over the target → fsync the
 *   directory
 *
 * A reader sees the old content or the new, never a mix, and once this returns the new content
 * and its name are on the disk (the rename alone is not durable until the directory is synced).
 * `mode` is applied with chmod, so the umask neither widens nor narrows it. The directory is
 * created (mode 0o700) when missing. The temporary file is removed when anything fails.
 *
 * `{ sync: false }` keeps the atomicity (a crashed process leaves the old content or the new) and
 * drops the two fsyncs, so a machine crash may lose the write: only for what a simulation may
 * lose — the simulated devices of a large fleet (system/fleet.ts), thousands of which would spend
 * most of their start-up waiting for the disk.
 */
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

let counter = 0;

export interface AtomicWriteOptions {
  /** fsync the file and its directory (default true). */
  sync?: boolean;
}

/** `mode`: the file's (default 0o644); a missing directory is created with mode 0o700. */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
  options: AtomicWriteOptions = {},
): void {
  const sync = options.sync ?? true;
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${counter++}.tmp`;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
      if (sync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  if (sync) syncDirectory(dir);
}

/** fsync a directory, so a rename or a new name in it is durable. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
