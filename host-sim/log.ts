/** Loggers for simulated devices: JSON lines, a filter by level, or a list kept for tests. */
import type { LogFields, Logger, LogLevel } from '../src/platform/log.js';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** One JSON object per line: `{"time", "level", "event", …fields}`, at `minLevel` and above. */
export function jsonLogger(write: (line: string) => void, minLevel: LogLevel = 'info'): Logger {
  return {
    log(level, event, fields = {}) {
      if (RANK[level] < RANK[minLevel]) return;
      write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
    },
  };
}

export interface LogEntry {
  level: LogLevel;
  event: string;
  fields: LogFields;
}

/** Keeps every line (tests look for the one they expect). */
export function collectingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    log(level, event, fields = {}) {
      entries.push({ level, event, fields });
    },
  };
}
