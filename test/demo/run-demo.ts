/**
 * Runs `cose-flow demo` as a child process (the command `npm start` runs), collecting its output;
 * `dashboardUrl()` resolves once it has printed the dashboard's address.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../bin/cose-flow.js', import.meta.url));

export interface DemoRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The dashboard URL the demo printed. */
  dashboardUrl(): Promise<string>;
  /** Resolves with the exit code (kills the demo after `timeoutMs`). */
  exit(timeoutMs?: number): Promise<number | null>;
}

export function runDemo(args: string[]): DemoRun {
  const child = spawn(process.execPath, [BIN, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const urlWaiters: ((url: string) => void)[] = [];
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
    const m = /^dashboard: (http:\/\/\S+)$/m.exec(err);
    if (m) for (const w of urlWaiters.splice(0)) w(m[1]!);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    dashboardUrl: () =>
      new Promise((resolve, reject) => {
        const m = /^dashboard: (http:\/\/\S+)$/m.exec(err);
        if (m) return resolve(m[1]!);
        urlWaiters.push(resolve);
        void exited.then((code) =>
          reject(new Error(`the demo exited (${code}) before printing its dashboard:\n${err}`)),
        );
      }),
    exit: async (timeoutMs = 120_000) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
