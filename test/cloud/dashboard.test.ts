/** The live view (LiveState) and the dashboard's HTTP routes, without a browser. */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { LiveState } from '../../cloud/dashboard/live-state.js';
import { type Dashboard, dashboard } from '../../cloud/dashboard/routes.js';
import { type HttpEndpoint, startHttpEndpoint } from '../../cloud/http/server.js';
import type { DeliveredPayload } from '../../cloud/telemetry/payload.js';
import { encode } from '../../src/cbor/index.js';
import { encodeReading } from '../../src/device/reading.js';
import { prng } from '../fixtures/prng.js';

/** An HTTP endpoint (any free port) with `page`'s routes mounted, as the service mounts them. */
function serve(page: Dashboard): Promise<HttpEndpoint> {
  return startHttpEndpoint({
    port: 0,
    metrics: async () => '',
    metricsContentType: 'text/plain',
    health: () => ({ status: 'ok' }),
    routes: page.route,
  });
}

function payload(deviceId: string, kidHex: string, seq: number, bytes: Uint8Array): DeliveredPayload {
  return {
    deviceId,
    kid: Uint8Array.from(Buffer.from(kidHex, 'hex')),
    kidHex,
    seq,
    receivedAt: new Date(),
    payload: bytes,
  };
}

describe('LiveState', () => {
  test('devices, sessions, readings, per-second counts, rejections and latency', () => {
    const start = Date.UTC(2026, 11, 2);
    let now = start;
    const live = new LiveState({ now: () => now, seconds: 10, latencySamplesPerSecond: Infinity });
    live.record({ type: 'session', deviceId: 'b', kidHex: '01', at: now });
    live.record({ type: 'session', deviceId: 'a', kidHex: '07', at: now });
    for (let i = 0; i < 3; i++)
      live.recordPayload(payload('a', '07', i, encodeReading({ uptime: i, temperature: 21.5, time: now - 40 })));
    now += 1000;
    live.recordPayload(payload('b', '01', 0, encodeReading({ uptime: 1, time: now - 10 })));
    live.recordPayload(payload('b', '01', 5, new Uint8Array([0xff]))); // not CBOR: no reading
    live.record({ type: 'duplicate', kind: 'data', deviceId: 'a', kidHex: '07', seq: 1, at: now });
    live.record({
      type: 'rejected',
      kind: 'data',
      reason: 'decrypt-failed',
      deviceId: 'a',
      kidHex: '07',
      seq: 9,
      detail: 'x',
      at: now,
    });
    live.record({ type: 'rejected', kind: 'session', reason: 'bad-certificate', deviceId: 'zz', detail: 'y', at: now });
    live.record({ type: 'rejected', kind: 'data', reason: 'decrypt-failed', detail: 'z', at: now });
    now += 1000;
    const s = live.snapshot();
    assert.deepEqual(s.totals, { sessions: 2, accepted: 5, duplicates: 1, rejected: 3 });
    assert.deepEqual(
      s.devices.map((d) => [d.deviceId, d.kid, d.seq, d.messages, d.rejected]),
      [
        ['a', '07', 2, 3, 1],
        ['b', '01', 5, 2, 0],
      ],
      'sorted by id; an unknown device id in a refusal adds no device',
    );
    assert.deepEqual(s.devices[0]!.reading, { t: start - 40, temp: 21.5, up: 2 });
    assert.equal(s.devices[1]!.reading, undefined);
    assert.equal(s.rate.length, 10);
    assert.deepEqual(s.rate.slice(-2), [3, 2]);
    assert.deepEqual(s.rejections, { 'decrypt-failed': 2, 'bad-certificate': 1 });
    assert.equal(s.recentRejections.length, 3);
    assert.deepEqual(s.latency && [s.latency.samples, s.latency.maxMs], [4, 40]);
    // Seconds without traffic read as zero, also after the ring wrapped around.
    now += 15_000;
    assert.deepEqual(live.snapshot().rate, new Array(10).fill(0));
    assert.equal(live.snapshot().perSecond, 0);
  });

  test('stays bounded: devices, recent refusals, latency samples', () => {
    const live = new LiveState({
      maxDevices: 3,
      maxRecent: 2,
      maxLatencySamples: 5,
      latencySamplesPerSecond: Infinity,
    });
    for (let i = 0; i < 10; i++) {
      live.recordPayload(payload(`d${i}`, '01', 0, encode(new Map([['t', Date.now() - i]]))));
      live.record({ type: 'rejected', kind: 'data', reason: 'replay', detail: String(i), at: i });
    }
    const s = live.snapshot();
    assert.deepEqual(
      s.devices.map((d) => d.deviceId),
      ['d7', 'd8', 'd9'],
      'the least recently heard of are forgotten',
    );
    assert.equal(s.devicesDropped, 7);
    assert.deepEqual(
      s.recentRejections.map((r) => r.detail),
      ['8', '9'],
    );
    assert.equal(s.latency?.samples, 5);
  });
});

describe('LiveState on a busy service', () => {
  test('decodes a random sample of about latencySamplesPerSecond payloads for the latency and tells onLatency', () => {
    let now = Date.UTC(2026, 11, 2);
    const told: number[] = [];
    const random = prng(7);
    const live = new LiveState({
      now: () => now,
      latencySamplesPerSecond: 10,
      random,
      onLatency: (ms) => told.push(ms),
    });
    // Second 1: 10 payloads, all taken (at most 10 a second so far); second 2: 1000 in a burst,
    // each taken with probability 10/10 (the last second's count) — all; second 3: 1000, each
    // with probability 10/1000, wherever it lies in the burst.
    const burst = (n: number, age: (i: number) => number) => {
      for (let i = 0; i < n; i++)
        live.recordPayload(payload('a', '01', i, encodeReading({ uptime: i, time: now - age(i) })));
    };
    burst(10, () => 7);
    assert.equal(told.length, 10);
    assert.ok(told.every((ms) => ms === 7));
    now += 1000;
    burst(1000, () => 5);
    assert.equal(told.length, 1010);
    now += 1000;
    told.length = 0;
    burst(1000, (i) => i); // the i-th payload of the burst waited i ms
    assert.ok(told.length >= 3 && told.length <= 25, `${told.length} samples of 1000 (about 10)`);
    assert.ok(
      told.some((ms) => ms >= 500),
      'the second half of the burst is sampled too',
    );
    assert.equal(live.snapshot().totals.accepted, 2010, 'every payload is counted');
    // A t that is not a time stamp (before 2020: a clock not set) gives no latency.
    told.length = 0;
    now += 5000; // a quiet second before: every payload is taken
    live.recordPayload(payload('a', '01', 100, encodeReading({ uptime: 1, time: 20_000 })));
    assert.equal(told.length, 0);
    live.recordPayload(payload('a', '01', 101, encodeReading({ uptime: 1, time: now - 3 })));
    assert.deepEqual(told, [3]);
  });

  test("shows each device's last reading, decoded when a snapshot asks, and again only when it changed", () => {
    let now = 1_000;
    const live = new LiveState({ now: () => now, latencySamplesPerSecond: 0 });
    live.recordPayload(payload('a', '01', 1, encodeReading({ uptime: 1, time: now })));
    live.recordPayload(payload('a', '01', 2, encodeReading({ uptime: 2, time: now })));
    const first = live.snapshot().devices[0]!.reading;
    assert.deepEqual(first, { t: 1_000, up: 2 });
    assert.equal(live.snapshot().devices[0]!.reading, first, 'the same payload is not decoded again');
    now += 5;
    live.recordPayload(payload('a', '01', 3, new Uint8Array([0xff])));
    assert.equal(live.snapshot().devices[0]!.reading, undefined, 'not CBOR: no reading');
    live.recordPayload(payload('a', '01', 4, encodeReading({ uptime: 4, time: now })));
    assert.deepEqual(live.snapshot().devices[0]!.reading, { t: 1_005, up: 4 });
  });
});

describe('dashboard routes', () => {
  const live = new LiveState();
  let page: Dashboard;
  let http: HttpEndpoint;
  let attacks = 0;
  before(async () => {
    page = dashboard({
      state: live,
      intervalMs: 50,
      attack: async () => {
        attacks++;
        return { replay: 1 };
      },
    });
    http = await serve(page);
  });
  after(async () => {
    page.close();
    await http.close();
  });

  async function get(path: string, init: RequestInit = {}) {
    return fetch(`${http.url}${path}`, init);
  }

  test('the page and its files, with a strict CSP', async () => {
    for (const [path, type] of [
      ['/', /text\/html/],
      ['/dashboard.js', /javascript/],
      ['/dashboard.css', /text\/css/],
    ] as const) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get('content-type') ?? '', type);
      assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      assert.ok((await r.text()).length > 100);
    }
    assert.equal((await get('/favicon.ico')).status, 204);
    assert.equal((await get('/nothing')).status, 404);
    assert.equal((await get('/health')).status, 200, 'the endpoint still serves its own routes');
  });

  test('/api/state is the snapshot as JSON', async () => {
    live.record({ type: 'session', deviceId: 'dev-1', kidHex: '02', at: Date.now() });
    const r = await get('/api/state');
    assert.equal(r.status, 200);
    const body = (await r.json()) as { totals: { sessions: number }; devices: { deviceId: string }[] };
    assert.equal(body.totals.sessions, 1);
    assert.equal(body.devices[0]!.deviceId, 'dev-1');
  });

  test('/api/events streams a state event at once and then every interval', async () => {
    const events = await new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      const req = request(`${http.url}/api/events`, (res) => {
        assert.match(res.headers['content-type'] ?? '', /text\/event-stream/);
        let buffer = '';
        res.on('data', (chunk) => {
          buffer += chunk;
          let at = buffer.indexOf('\n\n');
          while (at >= 0) {
            seen.push(buffer.slice(0, at));
            buffer = buffer.slice(at + 2);
            at = buffer.indexOf('\n\n');
          }
          if (seen.length >= 3) {
            req.destroy();
            resolve(seen);
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
    for (const e of events) {
      assert.match(e, /^(retry: 2000\n)?event: state\ndata: \{/);
      const data = JSON.parse(e.split('data: ')[1]!) as { totals: object };
      assert.ok('totals' in data);
    }
    // The server sees the close when it sees it: waited for (bounded), not a fixed 100 ms.
    const deadline = Date.now() + 60_000;
    while (page.clients !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(page.clients, 0, 'a closed stream is let go (waited up to 60 s)');
  });

  test('POST /api/attack needs its header; GET is refused', async () => {
    assert.equal((await get('/api/attack', { method: 'POST' })).status, 403);
    assert.equal(attacks, 0);
    assert.equal((await get('/api/attack')).status, 405);
    const r = await get('/api/attack', { method: 'POST', headers: { 'X-Cose-Flow-Action': 'attack' } });
    assert.equal(r.status, 202);
    assert.deepEqual(await r.json(), { injected: { replay: 1 } });
    assert.equal(attacks, 1);
  });

  test('on a loopback address, only requests addressed to the loopback are answered (DNS rebinding)', async () => {
    const guarded = dashboard({ state: new LiveState() });
    const endpoint = await serve(guarded);
    const status = (path: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${endpoint.url}${path}`, { headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    try {
      for (const host of [`127.0.0.1:${endpoint.port}`, `localhost:${endpoint.port}`, 'localhost', '[::1]:8080']) {
        for (const path of ['/api/state', '/', '/metrics', '/health']) {
          assert.equal(await status(path, host), 200, `${path} with Host ${host}`);
        }
      }
      for (const host of ['attacker.example', `attacker.example:${endpoint.port}`, '127.0.0.1.attacker.example']) {
        // The dashboard and the endpoint's own routes alike: /metrics and /health tell a page what runs here.
        for (const path of ['/api/state', '/', '/metrics', '/health', '/healthz', '/nowhere']) {
          assert.equal(await status(path, host), 421, `${path} with Host ${host}`);
        }
      }
    } finally {
      guarded.close();
      await endpoint.close();
    }
  });

  test('with loopbackOnly off (the default on a non-loopback address), every Host is answered', async () => {
    const open = dashboard({ state: new LiveState() });
    const endpoint = await startHttpEndpoint({
      port: 0,
      metrics: async () => '',
      metricsContentType: 'text/plain',
      health: () => ({ status: 'ok' }),
      routes: open.route,
      loopbackOnly: false,
    });
    try {
      const answer = await new Promise<number>((resolve, reject) => {
        const req = request(`${endpoint.url}/metrics`, { headers: { host: 'metrics.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(answer, 200);
    } finally {
      open.close();
      await endpoint.close();
    }
  });

  test('without an attack action there is no attack route', async () => {
    const plain = dashboard({ state: new LiveState() });
    const endpoint = await serve(plain);
    try {
      const r = await fetch(`${endpoint.url}/api/attack`, {
        method: 'POST',
        headers: { 'X-Cose-Flow-Action': 'attack' },
      });
      assert.equal(r.status, 405, 'falls through to the endpoint, which allows GET and HEAD only');
    } finally {
      plain.close();
      await endpoint.close();
    }
  });
});
