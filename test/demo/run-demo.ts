/**
 * Runs `cose-flow demo` for the tests, collecting its output:
 *
 * - `runDemo`: as a child process through the launcher (the command `npm start` runs), for what
 *   needs a real process: the newcomer's run end to end, Ctrl-C (SIGINT). `dashboardUrl()`
 *   resolves once it has printed the dashboard's address.
 * - `runDemoInProcess`: through `main(argv, io)` in this process, for everything else (no process
 *   start-up: usage errors, failures to start, further runs).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { main } from '../../cli/main.js';
import { BIN, capturingIo } from '../fixtures/cli-io.js';

/** What a demo run printed, and its end. */
export interface DemoOutput {
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (a child process is killed after `timeoutMs`; an in-process run rejects). */
  exit(timeoutMs?: number): Promise<number | null>;
}

export interface DemoRun extends DemoOutput {
  child: ChildProcess;
  /** The dashboard URL the demo printed. */
  dashboardUrl(): Promise<string>;
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

/**
 * What a failed run's assertion says: the exit code, everything the demo printed on standard
 * error (its progress and its reasons) and on standard output (the summary: which device had no
 * session, what is missing). A failing test must say why the demo failed.
 */
export function demoFailure(run: DemoOutput, code: number | null | undefined): string {
  return `cose-flow demo exited ${code}\n--- its standard error:\n${run.stderr()}\n--- its standard output:\n${run.stdout()}`;
}

/** `cose-flow demo ARGS…` in this process (it must stop by itself: give --duration, or expect a failure to start). */
export function runDemoInProcess(args: string[]): DemoOutput {
  const io = capturingIo();
  const done = main(['demo', ...args], io);
  return {
    stdout: () => io.out,
    stderr: () => io.err,
    exit: async (timeoutMs = 120_000) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`cose-flow demo did not finish within ${timeoutMs} ms:\n${io.err}`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([done, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
