/**
 * The cloud service's parts on their own: the pending buffer, session keys at rest and the storage
 * key, the Prometheus text, payload JSON, the --out file's cursor (crash reconciliation and id
 * gaps), the commit queue (batching, retry), re-key rate limiting, configuration precedence, and
 * the MQTT consumer's caller-controlled acknowledgements.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { main } from '../../cli/main.js';
import { type InboundMessage, MqttConsumer } from '../../cloud/mqtt/consumer.js';
import { AtRestError, loadStorageKey, SessionSealer } from '../../cloud/service/at-rest.js';
import { CommitQueue, type CommitWaiter } from '../../cloud/service/commit-queue.js';
import { ConfigError, resolveRunConfig, resolveStoreUrl } from '../../cloud/service/config.js';
import { Counter, Histogram, Registry } from '../../cloud/service/metrics.js';
import { OutFile } from '../../cloud/service/out-file.js';
import { PendingBuffer } from '../../cloud/service/pending-buffer.js';
import { RekeyRequester } from '../../cloud/service/rekey.js';
import type { CommitResult, DataItem, Store, StoredPayload } from '../../cloud/store/store.js';
import { cborToJson, payloadJson } from '../../cloud/telemetry/payload.js';
import { toHex } from '../../src/bytes.js';
import { encode, Tag } from '../../src/cbor/index.js';
import { openControlMessage } from '../../src/profile/control.js';
import { encodeKid } from '../../src/profile/counter.js';
import { startBroker } from '../fixtures/broker.js';
import { capturingIo } from '../fixtures/cli-io.js';
import { crypto, sleep, until } from './service-fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-service-units-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('pending buffer', () => {
  test('bounded per device and overall; taken in sequence-number order; expires by age', () => {
    const buffer = new PendingBuffer<string>({ perDevice: 3, total: 4, ttlMs: 1000 });
    const add = (deviceId: string, kid: number, seq: number, at: number) =>
      buffer.add({ deviceId, kid: encodeKid(kid), seq, addedAt: at, value: `${deviceId}/${kid}/${seq}` });
    assert.equal(add('a', 1, 5, 0), 'held');
    assert.equal(add('a', 1, 2, 10), 'held');
    assert.equal(add('a', 2, 0, 20), 'held');
    assert.equal(add('a', 1, 9, 30), 'device-full', 'one device cannot take more than its share');
    assert.equal(add('b', 1, 0, 500), 'held');
    assert.equal(add('c', 1, 0, 40), 'buffer-full');
    assert.equal(buffer.size, 4);
    assert.deepEqual(
      buffer.take('a', encodeKid(1)).map((e) => e.value),
      ['a/1/2', 'a/1/5'],
    );
    assert.equal(buffer.size, 2);
    assert.equal(add('a', 1, 7, 600), 'held', 'room again after take');
    assert.deepEqual(
      buffer.expire(1020).map((e) => e.value),
      ['a/2/0'],
    );
    assert.deepEqual(
      buffer
        .expire(1600)
        .map((e) => e.value)
        .sort(),
      ['a/1/7', 'b/1/0'],
    );
    assert.equal(buffer.size, 0);
    assert.deepEqual(buffer.groups(), []);
  });
});

describe('pending buffer: quotas and eviction (issue 12 §4)', () => {
  test('per (device, kid) quota; a plausible message evicts implausible ones, never the reverse', () => {
    const buffer = new PendingBuffer<string>({ perKid: 2, perDevice: 3, total: 4, ttlMs: 1000 });
    const evicted: string[] = [];
    const add = (deviceId: string, kid: number, seq: number, plausible: boolean) =>
      buffer.add(
        { deviceId, kid: encodeKid(kid), seq, addedAt: 0, value: `${deviceId}/${kid}/${seq}`, plausible },
        (e) => evicted.push(e.value),
      );
    assert.equal(add('a', 9, 0, false), 'held');
    assert.equal(add('a', 9, 1, false), 'held');
    assert.equal(add('a', 9, 2, false), 'kid-full', 'at most perKid per (device, kid)');
    assert.equal(add('a', 2, 0, true), 'held');
    assert.equal(add('a', 3, 0, false), 'device-full', 'an implausible message evicts nothing');
    assert.equal(add('a', 2, 1, true), 'held', 'a plausible one evicts an implausible one of its device');
    assert.deepEqual(evicted, ['a/9/1']);
    assert.equal(add('ghost', 1, 0, false), 'held');
    assert.equal(buffer.size, 4);
    assert.equal(add('b', 5, 0, true), 'held', 'the buffer is full: the largest implausible group gives way');
    assert.deepEqual(evicted, ['a/9/1', 'a/9/0']);
    assert.equal(add('b', 5, 1, true), 'held');
    assert.deepEqual(evicted, ['a/9/1', 'a/9/0', 'ghost/1/0']);
    assert.equal(add('b', 6, 0, true), 'buffer-full', 'nothing implausible is left to evict');
    assert.deepEqual(
      buffer.groups().map((g) => g.deviceId),
      ['a', 'b'],
    );
    assert.equal(buffer.size, 4);
  });
});

describe('session keys at rest', () => {
  const session = { kid: encodeKid(7), key: crypto.randomBytes(16), baseIv: crypto.randomBytes(12) };

  test('sealed under the storage key, bound to (device id, kid); another key is named, not guessed', () => {
    const sealer = new SessionSealer(crypto.randomBytes(32));
    const sealed = sealer.seal('dev-1', session);
    assert.equal(sealed.length, 61);
    assert.ok(!toHex(sealed).includes(toHex(session.key)), 'the key is not in clear');
    const opened = sealer.open('dev-1', encodeKid(7), sealed);
    assert.deepEqual([opened.key, opened.baseIv], [session.key, session.baseIv]);
    assert.throws(() => sealer.open('dev-2', encodeKid(7), sealed), AtRestError);
    assert.throws(() => sealer.open('dev-1', encodeKid(8), sealed), AtRestError);
    const other = new SessionSealer(crypto.randomBytes(32));
    assert.throws(
      () => other.open('dev-1', encodeKid(7), sealed),
      new RegExp(`sealed under storage key ${sealer.keyId}`),
    );
    const damaged = sealed.slice();
    damaged[30]! ^= 1;
    assert.throws(() => sealer.open('dev-1', encodeKid(7), damaged), /does not open/);
  });

  test('the storage key: generated once into DATA_DIR/storage.key (0600), then reused; hex or a file', () => {
    const dir = join(tmp, 'key-data');
    mkdirSync(dir);
    const first = loadStorageKey({ dataDir: dir });
    assert.equal(first.source, 'generated');
    assert.equal(statSync(first.path!).mode & 0o777, 0o600);
    const again = loadStorageKey({ dataDir: dir });
    assert.equal(again.source, 'file');
    assert.deepEqual(again.key, first.key);
    const hex = 'ab'.repeat(32);
    assert.equal(toHex(loadStorageKey({ dataDir: tmp, hex }).key), hex);
    assert.throws(() => loadStorageKey({ dataDir: tmp, hex: 'abcd' }), /64 hex digits/);
    const file = join(tmp, 'explicit.key');
    writeFileSync(file, `${'cd'.repeat(32)}\n`, { mode: 0o644 });
    const warnings: string[] = [];
    const fromFile = loadStorageKey({ dataDir: tmp, file, warn: (m) => warnings.push(m) });
    assert.equal(toHex(fromFile.key), 'cd'.repeat(32));
    assert.match(warnings[0] ?? '', /readable by others/);
    assert.throws(() => loadStorageKey({ dataDir: tmp, file: join(tmp, 'missing.key') }), /does not exist/);
  });
});

describe('Prometheus text', () => {
  test('counters with escaped labels, cumulative histogram buckets', async () => {
    const r = new Registry();
    const c = r.add(new Counter('x_total', 'Things.\nMore.'));
    c.inc({ reason: 'a"b\\c' });
    c.inc({ reason: 'a"b\\c' }, 2);
    c.inc();
    const h = r.add(new Histogram('lat_seconds', 'Latency.', [0.1, 1]));
    for (const v of [0.05, 0.5, 5]) h.observe(v);
    const text = await r.text();
    assert.equal(
      text,
      [
        '# HELP x_total Things.\\nMore.',
        '# TYPE x_total counter',
        'x_total{reason="a\\"b\\\\c"} 3',
        'x_total 1',
        '# HELP lat_seconds Latency.',
        '# TYPE lat_seconds histogram',
        'lat_seconds_bucket{le="0.1"} 1',
        'lat_seconds_bucket{le="1"} 2',
        'lat_seconds_bucket{le="+Inf"} 3',
        'lat_seconds_sum 5.55',
        'lat_seconds_count 3',
        '',
      ].join('\n'),
    );
    assert.throws(() => r.add(new Counter('x_total', 'again')), /twice/);
  });
});

describe('payload JSON', () => {
  test('CBOR turned into JSON; non-CBOR payloads only as hex', () => {
    const value = new Map<unknown, unknown>([
      ['t', 21.5],
      [1, new Uint8Array([1, 2])],
      ['big', 2n ** 64n],
      ['nan', Number.NaN],
      ['list', [true, null, 'x']],
      ['tag', new Tag(5, 42)],
    ]);
    const bytes = encode(value);
    const line = payloadJson({ deviceId: 'd', kid: encodeKid(258), seq: 3, receivedAt: 0, payload: bytes });
    assert.deepEqual(line, {
      deviceId: 'd',
      kid: '0102',
      seq: 3,
      receivedAt: '1970-01-01T00:00:00.000Z',
      payloadHex: toHex(bytes),
      payload: {
        t: 21.5,
        '1': { $bytes: '0102' },
        big: '18446744073709551616',
        nan: null,
        list: [true, null, 'x'],
        tag: { $tag: 42, value: 5 },
      },
    });
    const raw = payloadJson({
      deviceId: 'd',
      kid: encodeKid(1),
      seq: 0,
      receivedAt: 0,
      payload: new Uint8Array([0xff, 0x00]),
    });
    assert.equal(raw.payload, undefined);
    assert.equal(raw.payloadHex, 'ff00');
    assert.equal(cborToJson(new Date(0)), '1970-01-01T00:00:00.000Z');
  });
});

/** A store that only lists payloads (what OutFile uses), with ids the test controls. */
function listingStore(rows: StoredPayload[]): Store {
  return {
    listPayloads: async (q: { after?: number; limit: number }) =>
      rows
        .filter((r) => r.id > (q.after ?? 0))
        .sort((a, b) => a.id - b.id)
        .slice(0, q.limit),
  } as unknown as Store;
}

function row(id: number, seq = id): StoredPayload {
  return {
    id,
    deviceId: 'dev-1',
    epoch: 0,
    kid: encodeKid(1),
    seq,
    receivedAt: 1_750_000_000_000,
    storedAt: 1_750_000_000_001,
    payload: encode(new Map([['seq', seq]])),
  };
}

const seqsIn = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { seq: number }).seq);

describe('--out file', () => {
  test('follows the store; lines written after the last saved cursor are cut and written again', async () => {
    const path = join(tmp, 'out-1.jsonl');
    const rows = [row(1), row(2), row(3)];
    const first = new OutFile(listingStore(rows), path, { pollMs: 10_000 });
    first.open();
    await first.flush();
    await first.close();
    assert.deepEqual(seqsIn(path), [1, 2, 3]);
    // A crash after appending lines but before saving the cursor: the tail is not trusted.
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"deviceId":"dev-1","seq":4}\n{"half`);
    rows.push(row(4), row(5));
    const second = new OutFile(listingStore(rows), path, { pollMs: 10_000 });
    second.open();
    await second.flush();
    await second.close();
    assert.deepEqual(seqsIn(path), [1, 2, 3, 4, 5]);
  });

  test('an id missing below written ones is waited for, then skipped; nothing is written twice', async () => {
    const path = join(tmp, 'out-2.jsonl');
    let now = 0;
    const rows = [row(1), row(2), row(4)];
    const out = new OutFile(listingStore(rows), path, { pollMs: 10_000, gapHoldMs: 1000, now: () => now });
    out.open();
    await out.flush();
    assert.deepEqual(seqsIn(path), [1, 2, 4]);
    rows.push(row(3)); // a transaction that took id 3 commits late
    await out.flush();
    assert.deepEqual(seqsIn(path), [1, 2, 4, 3]);
    rows.push(row(6), row(7)); // id 5 never comes (a rolled-back transaction)
    await out.flush();
    now = 5000;
    await out.flush();
    rows.push(row(8));
    await out.flush();
    await out.close();
    assert.deepEqual(seqsIn(path), [1, 2, 4, 3, 6, 7, 8]);
    const cursor = JSON.parse(readFileSync(`${path}.cursor`, 'utf8')) as { after: number; written: number[] };
    assert.equal(cursor.after, 8);
    assert.deepEqual(cursor.written, []);
  });

  test('an existing file without a cursor is kept and appended to', async () => {
    const path = join(tmp, 'out-3.jsonl');
    writeFileSync(path, 'earlier content\n');
    const errors: string[] = [];
    const out = new OutFile(listingStore([row(1)]), path, { pollMs: 10_000, onError: (e) => errors.push(e.message) });
    out.open();
    await out.flush();
    await out.close();
    assert.match(readFileSync(path, 'utf8'), /^earlier content\n\{"deviceId"/);
    assert.match(errors[0] ?? '', /no cursor/);
  });
});

describe('commit queue', () => {
  const item = (seq: number): DataItem => ({
    deviceId: 'dev-1',
    kid: encodeKid(1),
    seq,
    receivedAt: 0,
    payload: new Uint8Array([seq]),
  });

  test('items that arrive while a batch commits go together in the next one', async () => {
    const batches: number[] = [];
    const store = {
      commitBatch: async (items: readonly DataItem[]) => {
        batches.push(items.length);
        await sleep(20);
        return items.map(() => 'accepted' as CommitResult);
      },
    } as unknown as Store;
    const queue = new CommitQueue(store, { maxBatch: 50 });
    const results = await Promise.all([...Array(120).keys()].map((i) => queue.add(item(i))));
    assert.equal(results.length, 120);
    assert.ok(batches.length <= 4, `batched: ${batches.join(', ')}`);
    assert.ok(batches.every((n) => n <= 50));
    await queue.idle();
  });

  test('a failing commit is retried until it succeeds; abort rejects what waits', async () => {
    let calls = 0;
    const errors: number[] = [];
    const store = {
      commitBatch: async (items: readonly DataItem[]) => {
        calls++;
        if (calls < 3) throw new Error('database is down');
        return items.map(() => 'duplicate' as CommitResult);
      },
    } as unknown as Store;
    const queue = new CommitQueue(store, { retryMinMs: 5, onError: (_e, attempt) => errors.push(attempt) });
    assert.equal(await queue.add(item(1)), 'duplicate');
    assert.deepEqual(errors, [1, 2]);
    assert.equal(queue.failing, false);

    const down = { commitBatch: async () => Promise.reject(new Error('down')) } as unknown as Store;
    const stuck = new CommitQueue(down, { retryMinMs: 5 });
    const pending = stuck.add(item(2));
    await until('a failure', () => stuck.failing);
    stuck.abort(new Error('stopping'));
    await assert.rejects(pending, /stopping/);
  });

  test('a waiter (enqueue) is told exactly once: its result, or failed when aborted, also mid-commit and twice', async () => {
    const told: string[] = [];
    const waiter = (name: string): CommitWaiter => ({
      committed: (r) => told.push(`${name}:${r}`),
      failed: (e) => told.push(`${name}:failed ${e.message}`),
    });
    let release: (() => void) | undefined;
    const store = {
      commitBatch: async (items: readonly DataItem[]) => {
        if (items[0]!.seq === 2) await new Promise<void>((resolve) => (release = resolve));
        return items.map(() => 'accepted' as CommitResult);
      },
    } as unknown as Store;
    const queue = new CommitQueue(store);
    queue.enqueue(item(1), waiter('a'));
    await queue.idle();
    assert.deepEqual(told, ['a:accepted']);
    queue.enqueue(item(2), waiter('b'));
    await until('the commit running', () => release !== undefined);
    queue.enqueue(item(3), waiter('c'));
    queue.abort(new Error('stopping'));
    queue.abort(new Error('stopping again'));
    release!(); // the running commit completes after the abort: its waiter was told already
    await sleep(10);
    queue.enqueue(item(4), waiter('d'));
    assert.deepEqual(told, ['a:accepted', 'c:failed stopping', 'b:failed stopping', 'd:failed stopping again']);
  });
});

describe('re-key requests', () => {
  test('signed for the device and kid, at most one per device per interval', async () => {
    const cloud = crypto.p256Generate();
    const sent: { topic: string; payload: Uint8Array }[] = [];
    let now = 1_000_000;
    // Known devices only, kids at or below the floor (issue 12 §4).
    const floors: Record<string, number> = { 'dev-1': 5, 'dev-2': 1 };
    const store = {
      getDevice: async (id: string) =>
        floors[id] === undefined
          ? undefined
          : ({ kidFloor: encodeKid(floors[id]!) } as Awaited<ReturnType<Store['getDevice']>>),
    };
    const rekey = new RekeyRequester({
      crypto,
      cloudKey: () => cloud,
      prefix: 'p/v1',
      publish: async (topic, payload) => {
        sent.push({ topic, payload });
      },
      store,
      minIntervalMs: 1000,
      now: () => now,
    });
    assert.equal(await rekey.request('dev-1', encodeKid(6)), 'refused', 'a kid above the floor is never signed');
    assert.equal(await rekey.request('nobody', encodeKid(1)), 'refused', 'nor a device the store does not know');
    assert.equal(await rekey.request('dev-1', encodeKid(4)), 'sent');
    assert.equal(await rekey.request('dev-1', encodeKid(5)), 'rate-limited');
    assert.equal(await rekey.request('dev-2', encodeKid(1)), 'sent');
    now += 1000;
    assert.equal(await rekey.request('dev-1', encodeKid(5)), 'sent');
    assert.deepEqual(
      sent.map((s) => s.topic),
      ['p/v1/dev-1/control', 'p/v1/dev-2/control', 'p/v1/dev-1/control'],
    );
    const opened = openControlMessage(crypto, sent[0]!.payload, {
      cloudPublicKeys: [cloud.publicKey],
      deviceId: 'dev-1',
    });
    assert.equal(opened.request, 'rekey');
    assert.deepEqual([...opened.kid], [4]);
    assert.equal(opened.issuedAt, 1000);

    const failing = new RekeyRequester({
      crypto,
      cloudKey: () => cloud,
      prefix: 'p/v1',
      publish: () => Promise.reject(new Error('offline')),
      store,
    });
    assert.equal(await failing.request('dev-1', encodeKid(1)), 'failed');
    assert.equal(await failing.request('dev-1', encodeKid(1)), 'failed', 'a failed request is not rate-limited');
  });
});

describe('configuration', () => {
  test('flags over environment over the file; defaults; errors name the setting', () => {
    const file = join(tmp, 'cloud.json');
    writeFileSync(
      file,
      JSON.stringify({
        broker: 'mqtt://file:1883',
        dataDir: 'from-file',
        window: 128,
        trust: ['a.pem', 'b.pem'],
        http: '9464',
      }),
    );
    const env = { COSE_FLOW_CONFIG: file, COSE_FLOW_DATA_DIR: 'from-env', COSE_FLOW_STORAGE_KEY: 'ab'.repeat(32) };
    const { options, sources, logLevel } = resolveRunConfig(
      { broker: 'mqtt://flag:1883', 'pending-ttl-ms': '500' },
      env,
    );
    assert.equal(options.brokerUrl, 'mqtt://flag:1883');
    assert.equal(options.dataDir, 'from-env');
    assert.equal(options.windowSize, 128);
    assert.deepEqual(options.trustAnchors, ['a.pem', 'b.pem']);
    assert.deepEqual(options.http, { port: 9464 });
    assert.deepEqual(options.pending, { ttlMs: 500 });
    assert.equal(options.storageKeyHex, 'ab'.repeat(32));
    assert.equal(logLevel, 'info');
    assert.deepEqual([sources.broker, sources.dataDir, sources.window], ['flag', 'environment', 'file']);
    assert.deepEqual(resolveRunConfig({ broker: 'mqtt://h', http: '0.0.0.0:80' }, {}).options.http, {
      port: 80,
      host: '0.0.0.0',
    });
    assert.equal(
      resolveRunConfig({ broker: 'mqtt://h', http: '9464', dashboard: 'off' }, {}).options.http?.dashboard,
      false,
    );
    assert.throws(
      () => resolveRunConfig({ broker: 'mqtt://h', dashboard: 'maybe' }, {}),
      /--dashboard must be on or off/,
    );
    assert.throws(() => resolveRunConfig({}, {}), /--broker URL is required/);
    assert.throws(() => resolveRunConfig({ broker: 'http://x' }, {}), ConfigError);
    assert.throws(() => resolveRunConfig({ broker: 'mqtt://h', window: '0' }, {}), /--window must be from 1/);
    assert.throws(() => resolveRunConfig({ broker: 'mqtt://h', store: 'mysql://x' }, {}), /--store must be/);
    assert.throws(
      () => resolveRunConfig({ broker: 'mqtt://h', share: 'g', 'mqtt-version': '3.1.1' }, {}),
      /--share needs MQTT 5/,
    );
    writeFileSync(file, JSON.stringify({ brokr: 'x' }));
    assert.throws(() => resolveRunConfig({}, { COSE_FLOW_CONFIG: file }), /unknown setting "brokr"/);
    assert.equal(resolveStoreUrl({ 'data-dir': 'd' }, {}), 'sqlite:d/cose-flow.db');
    assert.equal(resolveStoreUrl({}, { COSE_FLOW_STORE: 'postgres://x/y' }), 'postgres://x/y');
  });
});

describe('MQTT consumer', () => {
  test('acknowledges only when told; unacknowledged messages come again after a reconnect', async () => {
    const broker = await startBroker();
    const pub = await mqtt.connectAsync(broker.url, { clientId: 'units-pub', protocolVersion: 4 });
    const seen: InboundMessage[] = [];
    const consumer = () =>
      new MqttConsumer({
        url: broker.url,
        clientId: 'units-consumer',
        subscriptions: [{ topic: 't/+/data', qos: 1 }],
        onMessage: (m) => seen.push(m),
      });
    let c = consumer();
    let acked = 0; // PUBACKs of the consumer the broker has taken (its outgoing messages cleared)
    broker.aedes.on('ack', (_packet, client) => {
      if (client?.id === 'units-consumer') acked++;
    });
    try {
      await c.start();
      assert.equal(c.protocolVersion, 4, 'aedes speaks 3.1.1: the consumer fell back');
      for (let i = 0; i < 4; i++) await pub.publishAsync('t/x/data', `m${i}`, { qos: 1 });
      await until('4 messages', () => seen.length === 4);
      assert.equal(c.unacked, 4);
      seen[0]!.ack();
      seen[2]!.ack();
      seen[2]!.ack(); // idempotent
      assert.equal(c.unacked, 2);
      // The two PUBACKs reached the broker (not a fixed wait): else it would send those again too.
      await until('the broker took the two PUBACKs', () => acked >= 2);
      await c.close();
      seen.length = 0;
      c = consumer();
      await c.start();
      await until('the two unacknowledged again', () => seen.length === 2);
      assert.deepEqual(
        seen.map((m) => Buffer.from(m.payload).toString()),
        ['m1', 'm3'],
      );
      for (const m of seen) m.ack();
    } finally {
      await c.close();
      await pub.endAsync();
      await broker.close();
    }
  });

  test('refuses a shared subscription on MQTT 3.1.1 and an unknown scheme', () => {
    const base = { clientId: 'x', onMessage: () => {} };
    assert.throws(
      () =>
        new MqttConsumer({
          ...base,
          url: 'mqtt://h',
          protocolVersion: 4,
          subscriptions: [{ topic: '$share/g/t', qos: 1 }],
        }),
      /need MQTT 5/,
    );
    assert.throws(() => new MqttConsumer({ ...base, url: 'ws://h', subscriptions: [] }), /mqtt:\/\/host/);
  });
});

describe('cose-flow cloud run / reset-kid', () => {
  test('usage errors (exit 2) and an unknown device (exit 1)', async () => {
    const io = capturingIo();
    assert.equal(await main(['cloud', 'run'], io), 2);
    assert.match(io.err, /--broker URL is required/);
    assert.equal(await main(['cloud', 'run', '--broker', 'mqtt://h', '--window', 'x'], io), 2);
    assert.match(io.err, /--window must be a whole number/);
    assert.equal(await main(['cloud', 'reset-kid'], io), 2);
    assert.equal(await main(['cloud', 'reset-kid', 'bad id'], io), 2);
    assert.equal(await main(['cloud', 'reset-kid', 'nobody', '--store', `sqlite:${join(tmp, 'empty.db')}`], io), 1);
    assert.match(io.err, /nobody is not in the store/);
    assert.equal(await main(['cloud', 'bogus'], io), 2);
    assert.equal(await main(['cloud', '--help'], io), 0);
    assert.match(io.out, /cose-flow cloud run --broker URL/);
  });
});
