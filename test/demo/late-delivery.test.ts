/**
 * A device's acknowledgement comes from the broker, not from the service: a message the broker has
 * acknowledged may still be on its way to the service when the demo stops (a broker in another
 * process on a loaded machine: issue 14, `--broker mosquitto --store postgres` exiting 1 with one
 * acknowledged message "missing" that the service stored a moment later). The stop must wait for
 * those messages, however late they come, before it reads the store.
 *
 * Here the lateness is made certain: a proxy in front of the broker holds back everything the
 * broker sends to the cloud service's connection (its client id says which it is) for DELAY_MS;
 * the devices' acknowledgements pass at once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEmbeddedBroker } from '../../system/broker.js';
import type { DemoSummary } from '../../system/demo.js';
import { demoFailure, runDemoInProcess } from './run-demo.js';

const DELAY_MS = 1500;

/** mqtt://127.0.0.1:PORT in front of `target`: the broker's bytes to the cloud service come `delayMs` late. */
async function delayingProxy(target: number, delayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    let first = '';
    let slow: boolean | undefined;
    client.on('data', (d: Buffer) => {
      // The first packet is the CONNECT, with the client id in it.
      if (slow === undefined) {
        first += d.toString('latin1');
        slow = first.includes('cose-flow-cloud-');
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (slow) setTimeout(() => client.writable && client.write(d), delayMs);
      else client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', () => setTimeout(end, slow ? delayMs : 0)).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no proxy address');
  return {
    url: `mqtt://127.0.0.1:${address.port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('the stop waits for what the broker acknowledged to reach the service, however late', async () => {
  const broker = await startEmbeddedBroker();
  const proxy = await delayingProxy(broker.port, DELAY_MS);
  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-demo-late-'));
  try {
    const run = runDemoInProcess([
      ...['--data-dir', join(tmp, 'data'), '--broker', proxy.url],
      ...['--devices', '2', '--rate', '5', '--duration', '4', '--json', '--no-dashboard'],
    ]);
    const code = await run.exit();
    assert.equal(code, 0, demoFailure(run, code));
    const summary = JSON.parse(run.stdout()) as DemoSummary;
    assert.equal(summary.allSessions, true);
    assert.equal(summary.exactlyOnce, true);
    for (const d of summary.devices) {
      assert.ok(d.acknowledged > 0, `${d.deviceId} sent something`);
      assert.equal(d.stored, d.acknowledged, `${d.deviceId}: every acknowledged message stored`);
    }
  } finally {
    await proxy.close();
    await broker.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
