/** The offline queue, backoff and configuration of the device application. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backoff } from '../../src/backoff.js';
import { DEFAULT_CONFIG, deviceConfig, readSettings } from '../../src/device/config.js';
import { Outbox } from '../../src/device/outbox.js';
import { decodeReading, encodeReading } from '../../src/device/reading.js';

const msg = (seq: number, qos: 0 | 1, kid = 1) => ({ kid, seq, qos, bytes: Uint8Array.of(seq) });

describe('Outbox', () => {
  test('full: the oldest QoS 0 message goes first, QoS 1 messages are kept', () => {
    const box = new Outbox(3);
    box.add(msg(0, 1));
    box.add(msg(1, 0));
    box.add(msg(2, 0));
    assert.ok(box.hasRoom(1));
    box.add(msg(3, 1)); // drops seq 1
    assert.equal(box.counters.droppedQos0, 1);
    box.add(msg(4, 1)); // drops seq 2
    assert.equal(box.counters.droppedQos0, 2);
    assert.equal(box.hasRoom(1), false, 'only QoS 1 left: no room');
    assert.equal(box.add(msg(5, 0)), false, 'a QoS 0 message is dropped itself');
    assert.equal(box.counters.droppedQos0, 3);
    assert.throws(() => box.add(msg(6, 1)), /full of QoS 1/);
    const order: number[] = [];
    for (let item = box.take(() => true); item; item = box.take(() => true)) order.push(item.seq);
    assert.deepEqual(order, [0, 3, 4]);
  });

  test('in-flight messages are not dropped; a failed publish keeps its place', () => {
    const box = new Outbox(2);
    box.add(msg(0, 0));
    box.add(msg(1, 0));
    const first = box.take(() => true)!;
    box.add(msg(2, 0)); // seq 0 is in flight: seq 1 goes
    assert.equal(box.size, 2);
    box.retry(first);
    assert.equal(box.take(() => true)!.seq, 0, 'the retried message is sent first again');
    assert.equal(box.take(() => true)!.seq, 2);
    box.retryAll();
    assert.equal(box.inFlight, 0);
  });

  test('only messages whose session is known to the cloud are taken', () => {
    const box = new Outbox(4);
    box.add(msg(0, 1, 1));
    box.add(msg(0, 1, 2));
    const taken = box.take((kid) => kid === 2)!;
    assert.equal(taken.kid, 2);
    box.done(taken);
    assert.equal(
      box.take((kid) => kid === 2),
      undefined,
    );
    assert.equal(box.size, 1);
  });
});

test('Backoff: exponential, capped, with jitter, reset on success', () => {
  const b = new Backoff({ initialMs: 100, multiplier: 2, maxMs: 1000, jitter: 0.5 }, () => 0);
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000, 1000]);
  b.reset();
  assert.equal(b.next(), 100);
  const jittered = new Backoff({ initialMs: 100, multiplier: 2, maxMs: 1000, jitter: 0.5 }, () => 0.999);
  assert.equal(jittered.next(), 50);
});

describe('configuration', () => {
  test('defaults and checks', () => {
    assert.equal(deviceConfig().dataQos, DEFAULT_CONFIG.dataQos);
    assert.throws(() => deviceConfig({ dataQos: 2 as 1 }), /QoS/);
    assert.throws(() => deviceConfig({ deviceId: 'a/b' }), /device id/);
    assert.throws(() => deviceConfig({ prefix: 'a/#' }), /prefix/);
    assert.throws(() => deviceConfig({ rekey: { ...DEFAULT_CONFIG.rekey, seqLimit: 2 ** 33 } }), /seqLimit/);
  });

  test('flat settings, as the manifest config or the command line give them', () => {
    const { config, connection } = readSettings({
      broker: 'mqtts://broker.example:8883',
      mqttUsername: 'u',
      mqttPassword: 'p',
      ssid: 'home',
      password: 'wifi-secret',
      deviceId: 'esp32-0001',
      prefix: 'acme/v1',
      rate: '0.5',
      qos: 0,
      rekeyMessages: '1000',
      rekeyAge: 3600,
      rekeyMinInterval: 30,
      kidBlock: 8,
      caFingerprint: 'aa'.repeat(32),
      batch: 'line-1',
      enrollKey: 'bb'.repeat(32),
    });
    assert.deepEqual(
      connection,
      { broker: 'mqtts://broker.example:8883', username: 'u', password: 'p' },
      'the Wi-Fi password never becomes the MQTT password',
    );
    assert.equal(config.deviceId, 'esp32-0001');
    assert.equal(config.prefix, 'acme/v1');
    assert.equal(config.intervalMs, 2000);
    assert.equal(config.dataQos, 0);
    assert.deepEqual(
      { m: config.rekey.afterMessages, a: config.rekey.afterMs, i: config.rekey.minIntervalMs },
      { m: 1000, a: 3_600_000, i: 30_000 },
    );
    assert.equal(config.kidBlock, 8);
    assert.equal(config.enroll.caFingerprint?.length, 32);
    assert.equal(config.enroll.credential?.batchId, 'line-1');
    assert.throws(() => readSettings({}), /broker/);
    assert.throws(() => readSettings({ broker: 'http://x' }), /mqtt/);
    assert.throws(() => readSettings({ broker: 'mqtt://x', rate: 'fast' }), /not a number/);
    assert.throws(() => readSettings({ broker: 'mqtt://x', batch: 'b' }), /together/);
  });
});

test('readings: CBOR with short keys, round trip', () => {
  const bytes = encodeReading({ time: 1_700_000_000_000, temperature: 21.456, uptime: 12.7, freeHeap: 123456.9 });
  assert.deepEqual(decodeReading(bytes), { time: 1_700_000_000_000, temperature: 21.46, uptime: 12, freeHeap: 123456 });
  assert.deepEqual(decodeReading(encodeReading({ uptime: 1 })), { uptime: 1 });
  assert.throws(() => decodeReading(Uint8Array.of(0x01)), /not a reading/);
});
