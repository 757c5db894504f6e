/**
 * `cloud run --log-format`: json (one object per line, for collectors) or pretty (for a person at
 * a terminal), chosen by flag, environment or the terminal; the same fields either way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, resolveRunConfig } from '../../cloud/service/config.js';
import { createLogger, prettyDestination, prettyLine } from '../../cloud/service/log.js';

test('prettyLine: time, level, event, the other fields, the message; redaction kept', () => {
  const lines: string[] = [];
  const logger = createLogger({ destination: prettyDestination((t) => lines.push(t)), format: 'pretty' });
  logger.warn(
    { event: 'rejected', reason: 'decrypt-failed', device: 'sim-0001', storageKey: 'secret' },
    'a tampered message',
  );
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /^\d\d:\d\d:\d\d WARN {2}rejected {2}reason=decrypt-failed device=sim-0001 storageKey=\[redacted\] — a tampered message\n$/,
  );
  assert.equal(prettyLine('not json'), 'not json', 'what is not JSON passes as it is');
});

test('--log-format json|pretty is a setting; anything else is a configuration error', () => {
  const base = { broker: 'mqtt://127.0.0.1:1883', 'data-dir': '/tmp/x' };
  assert.equal(resolveRunConfig({ ...base, 'log-format': 'pretty' }, {}).logFormat, 'pretty');
  assert.equal(resolveRunConfig(base, { COSE_FLOW_LOG_FORMAT: 'json' }).logFormat, 'json');
  assert.equal(resolveRunConfig(base, {}).logFormat, undefined, 'unset: the CLI looks at the terminal');
  assert.throws(() => resolveRunConfig({ ...base, 'log-format': 'xml' }, {}), ConfigError);
});
