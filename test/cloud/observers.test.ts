/**
 * The service → dashboard direction: the service's observers (cloud/service/observers.ts) feed
 * plug-ins such as the dashboard (cloud/dashboard/plugin.ts), and neither the dashboard nor the
 * shared telemetry types import the service.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { dashboardPlugin } from '../../cloud/dashboard/plugin.js';
import { ServiceObservers } from '../../cloud/service/observers.js';
import type { DeliveredPayload } from '../../cloud/telemetry/payload.js';
import { captureLog } from './service-fixture.js';

const payload: DeliveredPayload = {
  deviceId: 'dev-1',
  kid: new Uint8Array([1]),
  kidHex: '01',
  seq: 1,
  receivedAt: new Date(),
  payload: new Uint8Array([0xa1, 0x61, 0x74, 0x01]), // {"t": 1}
};

describe('service observers', () => {
  test('payload handlers run in order; one that throws is logged and the others still run', async () => {
    const log = captureLog('info');
    const observers = new ServiceObservers(log.logger);
    const calls: string[] = [];
    observers.onPayload(() => {
      calls.push('a');
      throw new Error('boom');
    });
    const remove = observers.onPayload(() => {
      calls.push('b');
    });
    await observers.deliver(payload);
    remove();
    await observers.deliver(payload);
    assert.deepEqual(calls, ['a', 'b', 'a']);
    assert.equal(log.lines().filter((l) => l.event === 'handler-failed').length, 2);
  });

  test('the dashboard plug-in is fed by the events and payloads it is plugged into', async () => {
    const observers = new ServiceObservers(captureLog('info').logger);
    const plugin = dashboardPlugin({
      cloudKeys: () => [{ kid: 'aa', current: true, loaded: true, devices: 1, retireAt: null }],
    });
    assert.equal(plugin.page, undefined, 'no page unless asked for');
    assert.equal(plugin.route, undefined);
    observers.plug(plugin);
    observers.emit({ type: 'session', deviceId: 'dev-1', kidHex: '01', at: Date.now(), cloudKid: 'aa' });
    observers.emit({ type: 'rejected', kind: 'data', reason: 'replay', detail: 'old', at: Date.now() });
    await observers.deliver(payload);
    const s = plugin.live.snapshot();
    assert.deepEqual(s.totals, { sessions: 1, accepted: 1, duplicates: 0, rejected: 1 });
    assert.deepEqual(s.devices[0]?.reading, { t: 1 });
    assert.equal(s.cloudKeys[0]?.kid, 'aa');
    plugin.close();
  });

  test('cloud/dashboard and cloud/telemetry do not import cloud/service', () => {
    for (const dir of ['cloud/dashboard', 'cloud/telemetry']) {
      const root = new URL(`../../../${dir}/`, import.meta.url);
      for (const name of readdirSync(root).filter((n) => n.endsWith('.ts'))) {
        const text = readFileSync(new URL(name, root), 'utf8');
        assert.doesNotMatch(text, /from '\.\.\/service\//, `${dir}/${name} imports cloud/service`);
      }
    }
  });
});
