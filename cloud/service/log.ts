/**
 * The service's structured log: pino, one JSON object per line. Every line about a message names
 * `deviceId`, `kid` (hex), `seq` and, for a refusal, `reason` (docs/PROTOCOL.md §6.4) — never key
 * material: the code logs no keys, and as a second line of defence any field named like one
 * (`key`, `sessionKey`, `baseIv`, `storageKey`, `password`, …) is replaced by "[redacted]".
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';
import { truncateDetail } from '../telemetry/detail.js';

export type { Logger };

export const REDACTED_FIELDS = [
  'key',
  'k',
  'sessionKey',
  'baseIv',
  'cek',
  'kek',
  'storageKey',
  'privateKey',
  'password',
  '*.key',
  '*.k',
  '*.sessionKey',
  '*.baseIv',
  '*.storageKey',
  '*.privateKey',
  '*.password',
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where lines go (default standard output). */
  destination?: DestinationStream;
  /** json (default): one object per line; pretty: one readable line per entry, for a terminal. */
  format?: 'json' | 'pretty';
}

const PRETTY_SKIP = new Set(['time', 'level', 'service', 'event', 'msg']);

/**
 * One JSON log line as a person reads it: `12:03:04 WARN  rejected  reason=decrypt-failed
 * device=sim-0001 kid=01 — the message` (the same fields, redacted the same way).
 */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const level = String(entry.level ?? '')
    .toUpperCase()
    .padEnd(5);
  const fields = Object.entries(entry)
    .filter(([k]) => !PRETTY_SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const msg = typeof entry.msg === 'string' ? ` — ${entry.msg}` : '';
  return `${time} ${level} ${String(entry.event ?? '')}${fields === '' ? '' : `  ${fields}`}${msg}\n`;
}

/** A destination that writes `prettyLine` of each JSON line to `write`. */
export function prettyDestination(write: (text: string) => void): DestinationStream {
  return { write: (line: string) => write(prettyLine(line.trimEnd())) };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'cose-flow-cloud' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_FIELDS, censor: '[redacted]' },
    },
    options.destination ??
      (options.format === 'pretty'
        ? prettyDestination((text) => void process.stdout.write(text))
        : pino.destination({ dest: 1, sync: true })),
  );
}

export interface AggregateOptions {
  /** Full lines per key and interval; the rest are only counted (default 5). */
  linesPerInterval?: number;
  /** Default 10 000 ms. */
  intervalMs?: number;
}

/** What an interval left out for one key: how many, for how many device ids (up to three named). */
export interface Suppressed {
  key: string;
  count: number;
  /** Distinct device ids among them (counting stops at 1000). */
  devices: number;
  examples: string[];
  seconds: number;
}

/**
 * Decides which lines of a flood are written: per key, the first `linesPerInterval` of each
 * interval; the others are counted and reported once at the end of the interval (`summary`).
 * Shared by the service's refusal lines and `ca serve`'s "ignored" lines.
 */
export class LineAggregator {
  readonly #max: number;
  readonly #intervalMs: number;
  readonly #summary: (s: Suppressed) => void;
  readonly #groups = new Map<string, { logged: number; count: number; devices: Set<string> }>();
  #timer: NodeJS.Timeout | undefined;
  #since = Date.now();

  constructor(summary: (s: Suppressed) => void, options: AggregateOptions = {}) {
    this.#summary = summary;
    this.#max = options.linesPerInterval ?? 5;
    this.#intervalMs = options.intervalMs ?? 10_000;
  }

  /** True when this line is to be written in full; false when it was counted instead. */
  admit(key: string, deviceId?: string): boolean {
    let g = this.#groups.get(key);
    if (g === undefined) {
      g = { logged: 0, count: 0, devices: new Set() };
      this.#groups.set(key, g);
    }
    this.#timer ??= setTimeout(() => this.flush(), this.#intervalMs).unref();
    if (g.logged < this.#max) {
      g.logged++;
      return true;
    }
    g.count++;
    if (deviceId !== undefined && g.devices.size < 1000) g.devices.add(deviceId);
    return false;
  }

  /** Reports what this interval left out, now (also at the end of each interval). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = Date.now();
    const seconds = Math.round((now - this.#since) / 100) / 10;
    for (const [key, g] of this.#groups) {
      if (g.count > 0)
        this.#summary({ key, count: g.count, devices: g.devices.size, examples: [...g.devices].slice(0, 3), seconds });
    }
    this.#groups.clear();
    this.#since = now;
  }
}

/**
 * Refusal lines, aggregated: per (kind, reason) the first 5 refusals of each 10 s are logged in
 * full (`detail` cut to MAX_DETAIL_CHARS), the others only counted; at the end of the interval
 * one `rejected-summary` line per (kind, reason) says how many were not logged (`count`) and for
 * how many device ids (`devices`, with up to three `examples`). A flood of a million refusals makes
 * a few lines per interval, not a million. The metrics still count every refusal.
 */
export class RefusalLog {
  readonly #log: Logger;
  readonly #lines: LineAggregator;
  readonly #groups = new Map<string, { kind: string; reason: string; level: 'warn' | 'info' }>();

  constructor(log: Logger, options: AggregateOptions = {}) {
    this.#log = log;
    this.#lines = new LineAggregator((s) => {
      const g = this.#groups.get(s.key);
      if (g === undefined) return;
      this.#log[g.level](
        {
          event: 'rejected-summary',
          kind: g.kind,
          reason: g.reason,
          count: s.count,
          devices: s.devices,
          examples: s.examples,
          seconds: s.seconds,
        },
        `${s.count} more refusals (${g.reason}) not logged one by one`,
      );
    }, options);
  }

  /** One refusal: `fields` must name `kind` and `reason`; `detail` is cut here. */
  refused(
    level: 'warn' | 'info',
    fields: { kind: string; reason: string; deviceId?: string | undefined; detail: string; [f: string]: unknown },
    message: string,
  ): void {
    if (!this.#log.isLevelEnabled(level)) return;
    const key = `${fields.kind}\u0000${fields.reason}\u0000${level}`;
    if (!this.#groups.has(key)) this.#groups.set(key, { kind: fields.kind, reason: fields.reason, level });
    if (this.#lines.admit(key, fields.deviceId))
      this.#log[level]({ event: 'rejected', ...fields, detail: truncateDetail(fields.detail) }, message);
  }

  /** Writes the summary lines of the interval now. */
  flush(): void {
    this.#lines.flush();
  }
}
