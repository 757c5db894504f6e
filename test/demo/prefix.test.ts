/**
 * `cose-flow demo --prefix P`: every part (devices, enrollment, the cloud service, the attacker)
 * uses the prefix, so on a shared broker the demo stays apart from other deployments. Checked on
 * an external broker: a client subscribed to the default prefix sees nothing of the demo.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { main } from '../../cli/main.js';
import { startEmbeddedBroker } from '../../system/broker.js';
import type { DemoSummary } from '../../system/demo.js';
import { capturingIo } from '../fixtures/cli-io.js';

test('demo --prefix: devices, enrollment, service and attacker all use it', async () => {
  const broker = await startEmbeddedBroker();
  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-demo-prefix-'));
  const watcher = await mqtt.connectAsync(broker.url);
  const topics = new Set<string>();
  watcher.on('message', (topic) => topics.add(topic));
  await watcher.subscribeAsync(['#']);
  try {
    const io = capturingIo();
    const code = await main(
      [
        'demo',
        ...['--data-dir', join(tmp, 'data'), '--broker', broker.url, '--prefix', 'lab/demo-7'],
        ...['--devices', '2', '--duration', '5', '--attack-every', '1', '--json', '--no-dashboard'],
      ],
      io,
    );
    assert.equal(code, 0, `exit ${code}\n${io.err}\n${io.out}`);
    const summary = JSON.parse(io.out) as DemoSummary;
    assert.equal(summary.allSessions, true);
    assert.equal(summary.exactlyOnce, true);
    assert.ok(summary.attack !== null && Object.values(summary.attack.injected).some((n) => n > 0), 'the attacker ran');
    assert.ok(topics.size > 0, 'messages were seen');
    const outside = [...topics].filter((t) => !t.startsWith('lab/demo-7/'));
    assert.deepEqual(outside, [], 'nothing outside the prefix');
  } finally {
    await watcher.endAsync();
    await broker.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
