/** Log lines (src/platform/log.ts) as `trace` output: the serial console, xsbug or mcsim's stdout. */
import { formatLogLine, type Logger, type LogLevel } from '../../platform/log.js';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function traceLogger(minLevel: LogLevel = 'info'): Logger {
  return {
    log(level, event, fields) {
      if (RANK[level] >= RANK[minLevel]) trace(`cose-flow ${formatLogLine(level, event, fields)}\n`);
    },
  };
}
