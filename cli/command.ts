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

/**
 * `util.parseArgs` (strict, positionals allowed) with its errors turned into `UsageError`: one
 * line, and for an unknown option the nearest known one (`did you mean --devices?`).
 */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    const error = e as Error & { code?: string };
    const unknown = /^Unknown option '(-{1,2}[^']*)'/.exec(error.message);
    if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== null) {
      const given = unknown[1]!;
      const near = nearest(given.replace(/^-+/, '').split('=')[0]!, Object.keys(options));
      throw new UsageError(`unknown option ${given}${near === undefined ? '' : ` (did you mean --${near}?)`}`);
    }
    throw new UsageError(error.message);
  }
}

/** The candidate closest to `word` by edit distance, when it is close enough to be a typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** What a numeric flag accepts; the usage error names it. */
export interface NumberRange {
  /** Smallest value allowed (inclusive, or exclusive with `above`). */
  min?: number;
  /** The value must be greater than this. */
  above?: number;
  /** Largest value allowed (inclusive). */
  max?: number;
  integer?: boolean;
  /** The value must be one of these. */
  oneOf?: readonly number[];
}

/** "a whole number from 1 to 10000", "a number > 0 and ≤ 1000", "0 or 1". */
export function describeRange(range: NumberRange): string {
  if (range.oneOf !== undefined) return range.oneOf.join(' or ');
  const kind = range.integer ? 'a whole number' : 'a number';
  if (range.min !== undefined && range.max !== undefined) return `${kind} from ${range.min} to ${range.max}`;
  const bounds = [
    range.above !== undefined ? `> ${range.above}` : range.min !== undefined ? `≥ ${range.min}` : undefined,
    range.max !== undefined ? `≤ ${range.max}` : undefined,
  ].filter((b) => b !== undefined);
  return bounds.length === 0 ? kind : `${kind} ${bounds.join(' and ')}`;
}

function inRange(n: number, r: NumberRange): boolean {
  if (r.oneOf !== undefined) return r.oneOf.includes(n);
  return (
    (!r.integer || Number.isSafeInteger(n)) &&
    (r.min === undefined || n >= r.min) &&
    (r.above === undefined || n > r.above) &&
    (r.max === undefined || n <= r.max)
  );
}

/**
 * A numeric flag: `fallback` when absent, else a finite number within `range`, else a UsageError
 * that says what is allowed (`--rate "0" is out of range: a number > 0 and ≤ 1000`).
 */
export function numberFlag(value: string | undefined, name: string, fallback: number, range: NumberRange): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !inRange(n, range))
    throw new UsageError(`--${name} ${JSON.stringify(value)} is out of range: ${describeRange(range)}`);
  return n;
}

const ERRNO_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EEXIST: 'it exists already',
  ECONNREFUSED: 'connection refused',
};

/** A file system or socket error this module can put in words. */
export function isErrno(e: unknown): e is NodeJS.ErrnoException & { code: string } {
  const code = (e as Partial<NodeJS.ErrnoException> | null)?.code;
  return typeof code === 'string' && code in ERRNO_REASONS;
}

/**
 * One line for a failure no command turned into a message of its own: for a file system error,
 * the path and the reason in words (`cannot write data/ca.key: permission denied (EACCES)`); else
 * the error's message. The stack only with COSE_FLOW_DEBUG=1: it is for us, not for the operator.
 */
export function describeFailure(e: unknown): string {
  if (process.env.COSE_FLOW_DEBUG === '1' && e instanceof Error && e.stack !== undefined) return e.stack;
  if (isErrno(e)) {
    const errno = e;
    const verb: Record<string, string> = {
      open: 'open',
      mkdir: 'create the directory',
      rename: 'write',
      write: 'write',
    };
    const what = errno.path === undefined ? '' : ` ${errno.path}`;
    return `cannot ${verb[errno.syscall ?? ''] ?? errno.syscall ?? 'use'}${what}: ${ERRNO_REASONS[errno.code]} (${errno.code})`;
  }
  return e instanceof Error ? e.message : String(e);
}

export function processIo(): CliIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    stdin: () => process.stdin,
  };
}
