/**
 * The device's offline queue (src/device/outbox.ts, src/device/pump.ts) under a broker outage
 * longer than its capacity: a simulated device with an 8-message queue takes a reading every 5 ms
 * while the broker (aedes) is down for 400 ms (about 80 readings), then the broker comes back.
 *
 * - QoS 1: the queue fills and stays full; further readings are skipped (`stats.skipped`), never
 *   a queued message dropped (`stats.dropped` 0); every message the broker acknowledged (PUBACK)
 *   reaches the cloud; sealed = acknowledged + still queued.
 * - QoS 0: the oldest queued messages are dropped to make room (`stats.dropped`), the newest
 *   kept: every dropped message was sealed before every message of the outage that arrived;
 *   sealed = acknowledged + dropped + still queued.
 * - The queue itself with both QoS mixed, a long outage as a random sequence of adds: QoS 0
 *   messages go first, oldest first, a QoS 1 message never, and every drop is counted.
 * The figures are printed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Outbox } from '../../src/device/outbox.js';
import { type RestartableBroker, startAedes } from './brokers.js';
import { CloudView, makeTestPki, type SimDevice, simDevice, sleep, type TestPki, until } from './harness.js';

const CAPACITY = 8;
const OUTAGE_MS = 400;

let pki: TestPki;
let broker: RestartableBroker;
let cloud: CloudView;
before(async () => {
  [pki, broker] = await Promise.all([makeTestPki(), startAedes()]);
  cloud = new CloudView(pki);
  broker.onPublish((name, payload) => cloud.receive(name, payload));
});
after(async () => {
  await broker.close();
});

type Sealed = { kid: number; seq: number };
const key = (m: Sealed) => `${m.kid}/${m.seq}`;

/** Runs a device through an outage of OUTAGE_MS; returns what it sealed (in order) and acknowledged. */
async function throughOutage(deviceId: string, dataQos: 0 | 1) {
  const d: SimDevice = await simDevice({
    broker: broker.url,
    deviceId,
    pki,
    config: { dataQos, intervalMs: 5, outboxCapacity: CAPACITY },
  });
  await d.app.start();
  await until(() => cloud.distinct(deviceId).size >= 5, 'data before the outage');
  await broker.stop();
  await until(() => !d.link.connected, 'the device sees the broker gone');
  const sealedBefore = d.events.filter((e) => e.type === 'sealed').length;
  let peakQueued = 0;
  const outageEnds = Date.now() + OUTAGE_MS;
  while (Date.now() < outageEnds) {
    peakQueued = Math.max(peakQueued, d.app.queued);
    await sleep(5);
  }
  const duringOutage = { dropped: d.app.stats.dropped, skipped: d.app.stats.skipped };
  await broker.start();
  await until(() => d.app.stats.connects >= 2, 'the device reconnected', 120_000);
  await until(() => d.app.queued === 0, 'the queue drained', 120_000);
  await d.app.stop();
  const sealed = d.events.flatMap((e) => (e.type === 'sealed' ? [{ kid: e.kid, seq: e.seq }] : []));
  const acknowledged = d.events.flatMap((e) => (e.type === 'acknowledged' ? [{ kid: e.kid, seq: e.seq }] : []));
  return { d, sealed, sealedBefore, acknowledged, peakQueued, duringOutage };
}

describe('offline queue under a broker outage longer than its capacity', () => {
  test('QoS 1: readings are skipped, nothing queued is dropped, nothing acknowledged is lost', async () => {
    const r = await throughOutage('outage-qos1', 1);
    const { stats } = r.d.app;
    const missing = () => r.acknowledged.filter((m) => !cloud.distinct('outage-qos1').has(key(m)));
    await until(() => missing().length === 0, 'every acknowledged message at the cloud', 60_000).catch(() => {});
    process.stdout.write(
      `# QoS 1, capacity ${CAPACITY}, outage ${OUTAGE_MS} ms: sealed ${r.sealed.length}, acknowledged ${r.acknowledged.length}, ` +
        `skipped ${stats.skipped} (${r.duringOutage.skipped} during the outage), dropped ${stats.dropped}, peak queue ${r.peakQueued}\n`,
    );
    assert.deepEqual(missing(), [], 'every message the broker acknowledged reached the cloud');
    assert.equal(stats.dropped, 0, 'a QoS 1 message is never dropped');
    assert.ok(r.duringOutage.skipped >= 10, `readings skipped while the queue was full (${r.duringOutage.skipped})`);
    assert.ok(r.peakQueued <= CAPACITY, `the queue never held more than its capacity (${r.peakQueued})`);
    assert.equal(r.peakQueued, CAPACITY, 'the outage filled the queue');
    assert.equal(r.acknowledged.length + r.d.app.queued, r.sealed.length, 'sealed = acknowledged + still queued');
    // The messages queued during the outage were delivered after it.
    const outage = r.sealed.slice(r.sealedBefore);
    const arrived = cloud.distinct('outage-qos1');
    for (const m of outage) assert.ok(arrived.has(key(m)), `queued message ${key(m)} arrived after the outage`);
  });

  test('QoS 0: the oldest queued messages are dropped and counted, the newest kept', async () => {
    const r = await throughOutage('outage-qos0', 0);
    const { stats } = r.d.app;
    const outage = r.sealed.slice(r.sealedBefore);
    // The last QoS 0 messages on their way through the broker: waited for, not a fixed wait. Every
    // outage message the device wrote (all after the reconnect, on a live connection) arrives.
    const written = new Set(r.acknowledged.map(key));
    const outageWritten = outage.filter((m) => written.has(key(m)));
    await until(
      () => outageWritten.every((m) => cloud.distinct('outage-qos0').has(key(m))),
      `the ${outageWritten.length} outage messages the device sent, at the cloud`,
    );
    const arrived = cloud.distinct('outage-qos0');
    const outageArrived = outage.filter((m) => arrived.has(key(m)));
    const firstKept = outage.findIndex((m) => arrived.has(key(m)));
    const lostAfterFirstKept = outage.slice(firstKept).filter((m) => !arrived.has(key(m)));
    process.stdout.write(
      `# QoS 0, capacity ${CAPACITY}, outage ${OUTAGE_MS} ms: sealed ${r.sealed.length} (${outage.length} during the outage), ` +
        `acknowledged ${r.acknowledged.length}, dropped ${stats.dropped} (${r.duringOutage.dropped} during the outage), ` +
        `skipped ${stats.skipped}, outage messages delivered ${outageArrived.length}, peak queue ${r.peakQueued}\n`,
    );
    assert.ok(
      r.duringOutage.dropped >= 10,
      `QoS 0 messages dropped while the queue was full (${r.duringOutage.dropped})`,
    );
    assert.equal(stats.skipped, 0, 'QoS 0 readings are never skipped: the oldest message makes room');
    assert.ok(r.peakQueued <= CAPACITY, `the queue never held more than its capacity (${r.peakQueued})`);
    assert.equal(
      r.acknowledged.length + stats.dropped + r.d.app.queued,
      r.sealed.length,
      'sealed = acknowledged + dropped + still queued',
    );
    assert.ok(outageArrived.length >= CAPACITY - 1, `the newest messages were kept (${outageArrived.length})`);
    assert.deepEqual(lostAfterFirstKept.map(key), [], 'what was dropped is older than everything kept');
  });

  test('the queue alone, QoS 0 and 1 mixed, a long outage: QoS 0 goes first, oldest first, all counted', () => {
    let state = 12345;
    const random = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    const figures = { added: 0, droppedQos0: 0, refusedQos1: 0, maxQueued: 0 };
    for (let round = 0; round < 200; round++) {
      const box = new Outbox(CAPACITY);
      const kept: { seq: number; qos: 0 | 1 }[] = [];
      let dropped = 0;
      let refused = 0;
      for (let seq = 0; seq < 200; seq++) {
        const qos: 0 | 1 = random() < 0.5 ? 0 : 1;
        if (qos === 1 && !box.hasRoom(1)) {
          refused++; // the device skips the reading: nothing sealed
          continue;
        }
        const before = box.counters.droppedQos0;
        const added = box.add({ kid: 1, seq, qos, bytes: Uint8Array.of(seq & 0xff) });
        dropped += box.counters.droppedQos0 - before;
        if (box.counters.droppedQos0 > before) {
          // What went: the oldest QoS 0 message (or the new one itself when none was queued).
          const oldest = kept.findIndex((m) => m.qos === 0);
          if (added) kept.splice(oldest, 1);
          else assert.equal(oldest, -1, 'a new QoS 0 message is refused only when no QoS 0 message is queued');
        }
        if (added) kept.push({ seq, qos });
        assert.ok(box.size <= CAPACITY);
        figures.maxQueued = Math.max(figures.maxQueued, box.size);
      }
      const order: { seq: number; qos: 0 | 1 }[] = [];
      for (let item = box.take(() => true); item; item = box.take(() => true))
        order.push({ seq: item.seq, qos: item.qos });
      assert.deepEqual(order, kept, 'the queue holds exactly what was not dropped, oldest first');
      assert.equal(box.counters.droppedQos0, dropped, 'every drop counted');
      figures.added += 200 - refused;
      figures.droppedQos0 += dropped;
      figures.refusedQos1 += refused;
    }
    process.stdout.write(
      `# mixed QoS, 200 outages of 200 readings, capacity ${CAPACITY}: ${JSON.stringify(figures)}\n`,
    );
  });
});
