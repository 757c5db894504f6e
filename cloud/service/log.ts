/**
 * The service's structured log: pino, one JSON object per line. Every line about a message names
 * `deviceId`, `kid` (hex), `seq` and, for a refusal, `reason` (docs/PROTOCOL.md §6.4) — never key
 * material: the code logs no keys, and as a second line of defence any field named like one
 * (`key`, `sessionKey`, `baseIv`, `storageKey`, `password`, …) is replaced by "[redacted]".
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';

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
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
