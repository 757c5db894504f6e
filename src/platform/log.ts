/**
 * Log lines: one event name and a few fields. On the device they become `trace` lines; in the
 * host simulator JSON lines (or nothing). Never pass key material.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  log(level: LogLevel, event: string, fields?: LogFields): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = { log: () => {} };

/** `event key=value …`: the one-line text form used by trace-based loggers. */
export function formatLogLine(level: LogLevel, event: string, fields: LogFields = {}): string {
  let line = `${level} ${event}`;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value === undefined) continue;
    const text = typeof value === 'string' && /[\s="]/.test(value) ? JSON.stringify(value) : String(value);
    line += ` ${key}=${text}`;
  }
  return line;
}
