/**
 * The fleet's naming and the progress line's words (system/fleet.ts, cli/sim.ts), without a
 * broker: device ids do not depend on the fleet's size, and errors are shown by reason.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatErrors, formatTotals } from '../../cli/sim.js';
import { DEVICE_ID_WIDTH, deviceIds, type FleetTotals } from '../../system/fleet.js';

describe('fleet device ids', () => {
  test('a fixed width: batches of different sizes name the same devices', () => {
    assert.equal(DEVICE_ID_WIDTH, 4);
    assert.deepEqual(deviceIds(3), ['sim-0001', 'sim-0002', 'sim-0003']);
    const big = deviceIds(10_000);
    assert.equal(big[0], 'sim-0001');
    assert.equal(big[9_998], 'sim-9999');
    assert.equal(big[9_999], 'sim-10000');
    assert.deepEqual(deviceIds(20, 'x-'), deviceIds(20_000, 'x-').slice(0, 20));
    assert.equal(new Set(deviceIds(20_000)).size, 20_000, 'unique');
  });
});

describe('progress line', () => {
  const totals = (over: Partial<FleetTotals>): FleetTotals =>
    ({
      devices: 10,
      connected: 10,
      sending: 7,
      queued: 0,
      sent: 5,
      acknowledged: 5,
      rekeys: 0,
      dropped: 0,
      errors: 0,
      errorReasons: {},
      enrolled: 0,
      enrollSlow: 0,
      enrollQueue: 0,
      ...over,
    }) as FleetTotals;

  test('errors by reason, most frequent first', () => {
    const t = totals({ errors: 15, errorReasons: { 'connect-failed': 3, 'enroll-refused': 12 } });
    assert.equal(formatErrors(t), 'errors 15: enroll-refused 12, connect-failed 3');
    assert.match(formatTotals(t, 12), / · errors 15: enroll-refused 12, connect-failed 3 · 12 s$/);
    assert.equal(formatErrors(totals({})), 'errors 0');
  });

  test('enrollment progress: enrolled, waiting in the service queue, slow enrollments (not errors)', () => {
    const line = formatTotals(totals({ enrolled: 7, enrollQueue: 3, enrollSlow: 2 }), 5, 1.5);
    assert.match(line, /7\/10 sending · 10 connected · enrolled 7 \(3 waiting\) · slow enrollments 2 · /);
    assert.match(line, / · errors 0 · 5 s$/);
    assert.doesNotMatch(formatTotals(totals({}), 5), /enrolled/);
  });
});
