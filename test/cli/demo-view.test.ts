/** What `cose-flow demo` prints, from a snapshot: the screen, the status line, the summary. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ALTERNATE_SCREEN,
  age,
  formatSummary,
  frameInPlace,
  kidNumber,
  readingText,
  renderScreen,
  statusLine,
} from '../../cli/demo-view.js';
import { LiveState } from '../../cloud/dashboard/live-state.js';
import { encodeReading } from '../../src/device/reading.js';
import type { DemoSummary } from '../../system/demo.js';

function snapshot() {
  let now = 5_000_000;
  const live = new LiveState({ now: () => now });
  live.record({ type: 'session', deviceId: 'sim-0001', kidHex: '0a', at: now });
  live.record({ type: 'session', deviceId: 'visitor', kidHex: '01', at: now });
  live.recordPayload({
    deviceId: 'sim-0001',
    kid: Uint8Array.of(10),
    kidHex: '0a',
    seq: 4,
    receivedAt: new Date(now),
    payload: encodeReading({ uptime: 12, temperature: 21.456, freeHeap: 180_000, time: now - 5 }),
  });
  live.record({
    type: 'rejected',
    kind: 'data',
    reason: 'decrypt-failed',
    deviceId: 'sim-0001',
    kidHex: '0a',
    seq: 21,
    detail: 'decrypt-failed: AES-GCM authentication failed',
    at: now,
  });
  now += 3000;
  return live.snapshot();
}

test('the screen: header, devices with their decrypted reading, refusals, notes; cut to the terminal width', () => {
  const s = snapshot();
  const screen = renderScreen(s, {
    brokerUrl: 'mqtt://127.0.0.1:1883',
    embeddedBroker: true,
    storeUrl: 'sqlite:data/cose-flow.db',
    dashboardUrl: 'http://127.0.0.1:8080/',
    attack: { rounds: 2, injected: { replay: 2, tampered: 2 } },
    notes: ['device sim-0002: enroll-refused: key-conflict: …'],
  });
  assert.match(screen, /broker mqtt:\/\/127\.0\.0\.1:1883 \(embedded\)/);
  assert.match(screen, /dashboard http:\/\/127\.0\.0\.1:8080\//);
  assert.match(screen, /sessions 2 · stored 1 /);
  assert.match(screen, /^sim-0001 +10 +4 +3 s +1 +21\.46 °C · heap 180000 · up 12 s$/m);
  assert.match(screen, /rejected by reason: decrypt-failed 1/);
  assert.match(screen, /decrypt-failed sim-0001 kid 10 seq 21/);
  assert.match(screen, /attack: 2 round\(s\), 4 message\(s\) injected \(replay 2, tampered 2\)/);
  assert.match(screen, /^! device sim-0002: enroll-refused/m);
  const narrow = renderScreen(s, {
    brokerUrl: 'mqtt://127.0.0.1:1883',
    embeddedBroker: true,
    storeUrl: 'sqlite:data/cose-flow.db',
    dashboardUrl: undefined,
    attack: undefined,
    columns: 40,
  });
  for (const line of narrow.split('\n')) assert.ok(line.length <= 40, line);
  assert.match(narrow, /dashboard off/);
});

test('the status line counts only the demo fleet', () => {
  const line = statusLine(snapshot(), new Set(['sim-0001', 'sim-0002']));
  assert.match(line, /^3 s · 1\/2 devices with a session \(\+1 other\) · stored 1 · /);
  assert.match(line, /rejected 1 \(decrypt-failed 1\)/);
});

test('small helpers', () => {
  assert.equal(age(null, 0), '—');
  assert.equal(age(0, 119_000), '119 s');
  assert.equal(age(0, 600_000), '10 min');
  assert.equal(readingText(undefined), '—');
  assert.equal(readingText({ a: 'x'.repeat(60) }).length, 40);
  assert.equal(readingText([1, 2]), '[1,2]');
});

test('the summary says plainly when delivery was not exactly once', () => {
  const base: DemoSummary = {
    seconds: 10,
    broker: 'mqtt://b',
    store: 'sqlite:x',
    qos: 1,
    devices: [{ deviceId: 'sim-0001', kids: ['01'], sealed: 5, acknowledged: 5, stored: 4, missing: 1 }],
    totals: { devices: 1, sessions: 1, rekeys: 0, errors: 0 } as DemoSummary['totals'],
    delivered: 4,
    deliveredTwice: 0,
    unexpected: 0,
    allSessions: true,
    exactlyOnce: false,
    duplicates: 0,
    rejected: {},
    attack: null,
    latency: null,
    undrained: 0,
  };
  const text = formatSummary(base);
  assert.match(text, /sim-0001: session kid 1; sealed 5, acknowledged 5, stored 4, MISSING 1/);
  assert.match(text, /exactly once: NO — 4 of 5 acknowledged QoS 1 messages stored/);
  assert.match(formatSummary({ ...base, qos: 0, exactlyOnce: true }), /at most once \(QoS 0\): yes/);
});

test('the screen shows the CA fingerprint, kids as decimal numbers with what a jump means, refusals in red only with colour', () => {
  const s = snapshot();
  const info = {
    brokerUrl: 'mqtt://127.0.0.1:1883',
    embeddedBroker: true,
    storeUrl: 'sqlite:data/cose-flow.db',
    dashboardUrl: undefined,
    attack: undefined,
    caFingerprint: 'ab'.repeat(32),
  };
  const plain = renderScreen(s, info);
  assert.match(plain, new RegExp(`^CA SHA-256 ${'ab'.repeat(32)}$`, 'm'));
  assert.match(plain, /^kid: the session number; a restarted device goes on from the next block of 16/m);
  assert.doesNotMatch(plain, /\x1b\[/, 'no escape codes without colour');
  const coloured = renderScreen(s, { ...info, color: true });
  assert.match(coloured, /\x1b\[31mrejected by reason: decrypt-failed 1\x1b\[0m/);
  assert.match(coloured, /\x1b\[31m {2}\d\d:\d\d:\d\d decrypt-failed sim-0001 kid 10 seq 21/);
  assert.equal(kidNumber('11'), '17');
  assert.equal(kidNumber('0a'), '10');
  assert.equal(kidNumber(undefined), '—');
});

test('the screen is redrawn in place on the alternate screen: no full clear that would fill the scrollback', () => {
  const frame = frameInPlace('line one\nline two');
  assert.equal(frame, '\x1b[Hline one\x1b[K\nline two\x1b[K\x1b[J');
  assert.doesNotMatch(frame, /\x1b\[2J/, 'no clear-screen');
  assert.equal(ALTERNATE_SCREEN.enter, '\x1b[?1049h\x1b[?25l');
  assert.equal(ALTERNATE_SCREEN.leave, '\x1b[?1049l\x1b[?25h');
});
