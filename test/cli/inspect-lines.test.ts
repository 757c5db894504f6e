/**
 * `cose-flow inspect --lines` on a capture as `mosquitto_sub -v -F '%t %x'` writes it: messages
 * judged in order per device, as the cloud would; one result per line (text or JSON). In-process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { looksLikeLines } from '../../cli/inspect-lines.js';
import { nodeCrypto } from '../../node/crypto.js';
import { toHex } from '../../src/bytes.js';
import { encode } from '../../src/cbor/index.js';
import { makeKeyMessage, newSessionKey, sealData } from '../../src/profile/index.js';
import { runCli } from '../fixtures/cli-io.js';
import { makePki, type Pki } from '../fixtures/pki.js';

const crypto = nodeCrypto();
let dir: string;
let pki: Pki;
let capture: string;

const reading = (t: number, ...more: [string, unknown][]) =>
  encode(new Map<unknown, unknown>([['t', 1_700_000_000_000 + t], ['temp', 21.5], ...more]));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-inspect-lines-'));
  pki = await makePki({ deviceIds: ['dev-1', 'dev-2'] });
  const lines: string[] = [];
  const sessions = new Map<string, ReturnType<typeof newSessionKey>>();
  for (const id of ['dev-1', 'dev-2']) {
    const dev = pki.devices.get(id)!;
    const session = newSessionKey(crypto, 1); // both devices use kid 1: sessions are per device
    sessions.set(id, session);
    const key = makeKeyMessage(crypto, {
      deviceId: id,
      deviceKey: crypto.p256Import(dev.privateScalar),
      deviceCertificate: dev.der,
      cloudPublicKey: pki.cloud.publicKey,
      session,
    });
    lines.push(`cose-flow/v1/${id}/session ${toHex(key)}`);
  }
  const d1 = sealData(crypto, sessions.get('dev-1')!, 0, reading(0));
  lines.push(`cose-flow/v1/dev-1/data ${toHex(d1)}`);
  const raw = reading(1, ['raw', Uint8Array.of(1, 2)], ['count', 2n ** 63n]); // as --out shows them
  lines.push(`cose-flow/v1/dev-2/data ${toHex(sealData(crypto, sessions.get('dev-2')!, 0, raw))}`);
  lines.push(`cose-flow/v1/dev-1/data ${toHex(d1)}`); // the broker delivered it twice
  const tampered = sealData(crypto, sessions.get('dev-1')!, 1, reading(2));
  tampered[tampered.length - 1]! ^= 1;
  lines.push(`cose-flow/v1/dev-1/data ${toHex(tampered)}`);
  // dev-2's message on dev-1's topic: dev-1's session (same kid) does not open it
  lines.push(`cose-flow/v1/dev-1/data ${toHex(sealData(crypto, sessions.get('dev-2')!, 5, reading(3)))}`);
  lines.push('not a capture line');
  capture = `${lines.join('\n')}\n`;
  writeFileSync(join(dir, 'capture.txt'), capture);
  writeFileSync(join(dir, 'cloud-key.pem'), pki.cloud.keyPem);
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('a capture is judged in order: sessions per device, duplicates, tampering, stray lines', async () => {
  const r = await runCli([
    'inspect',
    '--lines',
    '--json',
    '--ca',
    join(dir, 'ca.pem'),
    '--cloud-key',
    join(dir, 'cloud-key.pem'),
    join(dir, 'capture.txt'),
  ]);
  assert.equal(r.status, 1, 'a capture with refusals exits 1');
  const out = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(out.length, 8, r.stdout);
  assert.deepEqual(
    out.map((o) => [o.line, o.type, o.valid, o.opened]),
    [
      [1, 'session', true, true],
      [2, 'session', true, true],
      [3, 'data', true, true],
      [4, 'data', true, true],
      [5, 'data', true, true],
      [6, 'data', false, false],
      [7, 'data', false, false],
      [8, 'unknown', false, false],
    ],
  );
  assert.equal(out[0]!.deviceId, 'dev-1');
  assert.deepEqual(out[2]!.payload, { t: 1_700_000_000_000, temp: 21.5 });
  assert.deepEqual(out[3]!.payload, {
    t: 1_700_000_000_001,
    temp: 21.5,
    raw: { $bytes: '0102' },
    count: '9223372036854775808',
  });
  assert.equal(out[4]!.duplicateOf, 3);
  assert.equal(out[5]!.reason, 'decrypt-failed');
  assert.equal(out[7]!.reason, 'bad-line');
});

test('text: one line per message; a capture is detected without --lines', async () => {
  const r = await runCli(['inspect', '--cloud-key', join(dir, 'cloud-key.pem'), join(dir, 'capture.txt')]);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 8, r.stdout);
  assert.match(lines[0]!, /^1: cose-flow\/v1\/dev-1\/session key message kid 1: opened$/);
  assert.match(
    lines[2]!,
    /^3: cose-flow\/v1\/dev-1\/data data kid 1 seq 0: opened \{"t":1700000000000,"temp":21\.5\}$/,
  );
  assert.match(lines[4]!, /duplicate of line 3/);
  assert.match(lines[5]!, /REFUSED decrypt-failed/);
});

test('looksLikeLines', () => {
  assert.equal(looksLikeLines('cose-flow/v1/a/data 8301\n'), true);
  assert.equal(looksLikeLines('d28443a10126a0'), false);
});
