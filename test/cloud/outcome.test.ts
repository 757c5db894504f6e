/**
 * The receiver's outcome settlement (cloud/service/outcome.ts): each kind of outcome is counted,
 * logged, observed and acknowledged exactly once (or, held, not acknowledged), in one place.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ServiceMetrics } from '../../cloud/service/metrics.js';
import { type Outcome, OutcomeSettler, reject, rejectionOf, type Subject } from '../../cloud/service/outcome.js';
import type { ServiceEvent } from '../../cloud/telemetry/events.js';
import type { DeliveredPayload } from '../../cloud/telemetry/payload.js';
import { CoseError } from '../../src/cose/errors.js';
import { captureLog } from './service-fixture.js';

function harness() {
  const metrics = new ServiceMetrics({
    sessionsCached: () => 0,
    pending: () => 0,
    commitQueue: () => 0,
    unacked: () => 0,
    mqttConnected: () => true,
    mqttReconnects: () => 0,
    storeStats: async () => ({}) as never,
  });
  const log = captureLog('debug');
  const events: ServiceEvent[] = [];
  const delivered: DeliveredPayload[] = [];
  let accepted = 0;
  const settler = new OutcomeSettler({
    metrics,
    log: log.logger,
    deliver: async (p) => {
      delivered.push(p);
    },
    onAccepted: () => accepted++,
    observe: (e) => events.push(e),
    now: () => 1234,
  });
  const message = () => {
    const m = { acks: 0, receivedAt: Date.now(), ack: () => m.acks++ };
    return m;
  };
  const counts = () => ({
    accepted: metrics.accepted.get({ kind: 'data' }) + metrics.accepted.get({ kind: 'session' }),
    duplicates: metrics.duplicates.get({ kind: 'data' }) + metrics.duplicates.get({ kind: 'session' }),
    rejected: Object.values(metrics.rejectedByReason()).reduce((a, b) => a + b, 0),
  });
  return { settler, metrics, log, events, delivered, message, counts, accepted: () => accepted };
}

const kid = new Uint8Array([1]);
const data: Subject = { kind: 'data', deviceId: 'dev-1', kid, seq: 7 };
const session: Subject = { kind: 'session', deviceId: 'dev-1', kid };

describe('outcome settlement', () => {
  test('accept (data): delivered, counted, acknowledged once', async () => {
    const h = harness();
    const m = h.message();
    const payload: DeliveredPayload = {
      deviceId: 'dev-1',
      kid,
      kidHex: '01',
      seq: 7,
      receivedAt: new Date(),
      payload: new Uint8Array([0xf6]),
    };
    await h.settler.settle(m, data, { type: 'accept', stored: { kind: 'data', payload } });
    assert.equal(m.acks, 1);
    assert.deepEqual(h.counts(), { accepted: 1, duplicates: 0, rejected: 0 });
    assert.deepEqual(h.delivered, [payload]);
    assert.equal(h.accepted(), 1);
    assert.deepEqual(h.events, []);
  });

  test('accept (session): one session event with its cloud key, acknowledged once', async () => {
    const h = harness();
    const m = h.message();
    await h.settler.settle(m, session, { type: 'accept', stored: { kind: 'session', cloudKidHex: 'aa' } });
    assert.equal(m.acks, 1);
    assert.equal(h.metrics.accepted.get({ kind: 'session' }), 1);
    assert.deepEqual(h.events, [{ type: 'session', deviceId: 'dev-1', kidHex: '01', at: 1234, cloudKid: 'aa' }]);
    assert.equal(h.delivered.length, 0);
  });

  test('duplicate: counted by kind and acknowledged once; data duplicates are events', async () => {
    const h = harness();
    const a = h.message();
    const b = h.message();
    await h.settler.settle(a, data, { type: 'duplicate' });
    await h.settler.settle(b, session, { type: 'duplicate' });
    assert.equal(a.acks, 1);
    assert.equal(b.acks, 1);
    assert.equal(h.metrics.duplicates.get({ kind: 'data' }), 1);
    assert.equal(h.metrics.duplicates.get({ kind: 'session' }), 1);
    assert.deepEqual(h.events, [
      { type: 'duplicate', kind: 'data', deviceId: 'dev-1', kidHex: '01', seq: 7, at: 1234 },
    ]);
    assert.equal(h.counts().accepted, 0);
  });

  test('replay: refused as replay once; a broker redelivery is logged at info', async () => {
    const h = harness();
    const a = h.message();
    const b = h.message();
    await h.settler.settle(a, data, { type: 'replay', detail: 'old', redelivered: false });
    await h.settler.settle(b, data, { type: 'replay', detail: 'old', redelivered: true });
    assert.equal(a.acks + b.acks, 2);
    assert.equal(h.metrics.rejected.get({ kind: 'data', reason: 'replay' }), 2);
    assert.deepEqual(
      h.events.map((e) => e.type === 'rejected' && e.reason),
      ['replay', 'replay'],
    );
    const levels = h.log
      .lines()
      .filter((l) => l.event === 'rejected')
      .map((l) => l.level);
    assert.deepEqual(levels, ['warn', 'info']);
  });

  test('reject: counted by reason, one event, acknowledged once', async () => {
    const h = harness();
    const m = h.message();
    await h.settler.settle(m, data, reject('session-closed', 'ended', { topic: 't' }));
    assert.equal(m.acks, 1);
    assert.deepEqual(h.metrics.rejectedByReason(), { 'session-closed': 1 });
    assert.equal(h.events.length, 1);
    const line = h.log.lines().find((l) => l.event === 'rejected');
    assert.equal(line?.topic, 't');
    assert.equal(line?.seq, 7);
  });

  test('reject from an exception: its reason code; an unexpected one is an internal error logged loudly', async () => {
    const h = harness();
    const a = h.message();
    const b = h.message();
    await h.settler.settle(a, data, rejectionOf(new CoseError('decrypt-failed', 'tag mismatch')));
    await h.settler.settle(b, data, rejectionOf(new TypeError('a bug')));
    assert.equal(a.acks + b.acks, 2);
    assert.deepEqual(h.metrics.rejectedByReason(), { 'decrypt-failed': 1, 'internal-error': 1 });
    const errors = h.log.lines().filter((l) => l.event === 'internal-error');
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]?.error), /TypeError: a bug/);
  });

  test('hold: never acknowledged, not counted as accepted or refused; no room is counted for redelivery', async () => {
    const h = harness();
    const holds: Outcome[] = [
      { type: 'hold', why: 'pending', detail: 'waiting' },
      { type: 'hold', why: 'no-room', detail: 'full' },
      { type: 'hold', why: 'revocation-unreadable', detail: 'EACCES' },
    ];
    const messages = holds.map(() => h.message());
    for (const [i, outcome] of holds.entries()) await h.settler.settle(messages[i]!, data, outcome);
    assert.deepEqual(
      messages.map((m) => m.acks),
      [0, 0, 0],
    );
    assert.deepEqual(h.counts(), { accepted: 0, duplicates: 0, rejected: 0 });
    assert.equal(h.settler.leftForRedelivery, 1);
    assert.deepEqual(h.events, []);
    assert.ok(h.log.lines().some((l) => l.event === 'revocation-check-failed' && l.error === 'EACCES'));
  });
});
