/**
 * What every `cose-flow` subcommand shares: the command shape that `main.ts` loads on demand, the I/O it writes through (so tests can capture it), and usage errors (exit 2).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Standard input as a byte stream (read only when a command is given "-"). */
  stdin(): AsyncIterable<Uint8Array>;
}

export interface Command {
  /** The full text of `cose-flow NAME --help`. */
  usage: string;
  /** Runs with the arguments after the command name; resolves to the exit code. Throw `UsageError` for bad usage. */
  run(args: string[], io: CliIo): Promise<number>;
}

/** Wrong flags, missing or unreadable files named on the command line: printed on stderr, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `util.parseArgs` (strict, positionals allowed) with its errors turned into `UsageError`. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A numeric flag: `fallback` when absent, else a finite number that passes `ok`, else a UsageError. */
export function numberFlag(
  value: string | undefined,
  name: string,
  fallback: number,
  ok: (n: number) => boolean,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !ok(n))
    throw new UsageError(`--${name} ${JSON.stringify(value)} is out of range`);
  return n;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    stdin: () => process.stdin,
  };
}
