/**
 * `cose-flow watch`: a live, read-only subscriber that verifies and opens messages as the cloud
 * does, printing one line (or JSON object) per message. In-process, against the embedded broker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { main } from '../../cli/main.js';
import { nodeCrypto } from '../../node/crypto.js';
import { encode } from '../../src/cbor/index.js';
import { makeKeyMessage, newSessionKey, sealData } from '../../src/profile/index.js';
import { type EmbeddedBroker, startEmbeddedBroker } from '../../system/broker.js';
import { capturingIo } from '../fixtures/cli-io.js';
import { makePki, type Pki } from '../fixtures/pki.js';

const crypto = nodeCrypto();
let dir: string;
let pki: Pki;
let broker: EmbeddedBroker;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-watch-'));
  pki = await makePki({ deviceIds: ['dev-1'] });
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  writeFileSync(join(dir, 'cloud.pem'), pki.cloud.pem);
  writeFileSync(join(dir, 'cloud.key'), pki.cloud.keyPem, { mode: 0o600 });
  broker = await startEmbeddedBroker();
});

after(async () => {
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => boolean): Promise<void> {
  const end = Date.now() + 60_000;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('watch prints each message as the cloud judges it, then stops after --count', async () => {
  const io = capturingIo();
  const watching = main(['watch', '--broker', broker.url, '--data-dir', dir, '--count', '4', '--json'], io);
  await until('the subscription', () => io.err.includes('watching'));
  assert.match(io.err, /^connecting to mqtt:\/\/127\.0\.0\.1:\d+…\n/);

  const dev = pki.devices.get('dev-1')!;
  const session = newSessionKey(crypto, 7);
  const publisher = await mqtt.connectAsync(broker.url);
  const data = (seq: number) => sealData(crypto, session, seq, encode(new Map<unknown, unknown>([['temp', 20 + seq]])));
  await publisher.publishAsync('cose-flow/v1/dev-1/data', Buffer.from(data(0))); // before its key message
  const key = makeKeyMessage(crypto, {
    deviceId: 'dev-1',
    deviceKey: crypto.p256Import(dev.privateScalar),
    deviceCertificate: dev.der,
    cloudPublicKey: pki.cloud.publicKey,
    session,
  });
  await publisher.publishAsync('cose-flow/v1/dev-1/session', Buffer.from(key));
  await publisher.publishAsync('cose-flow/v1/dev-1/data', Buffer.from(data(1)));
  const forged = data(2);
  forged[forged.length - 1]! ^= 1;
  await publisher.publishAsync('cose-flow/v1/dev-1/data', Buffer.from(forged));
  await publisher.endAsync();

  assert.equal(await watching, 0, io.err);
  const out = io.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    out.map((o) => [o.type, o.valid, o.opened]),
    [
      ['data', true, false],
      ['session', true, true],
      ['data', true, true],
      ['data', false, false],
    ],
  );
  assert.match(String(out[0]!.error), /no session yet/);
  assert.equal(out[1]!.deviceId, 'dev-1');
  assert.deepEqual(out[2]!.payload, { temp: 21 });
  assert.equal(out[3]!.reason, 'decrypt-failed');
});

test('watch against a broker that refuses: one line naming it, exit 1', async () => {
  const io = capturingIo();
  assert.equal(await main(['watch', '--broker', 'mqtt://127.0.0.1:1', '--data-dir', dir], io), 1);
  assert.match(
    io.err,
    /cose-flow watch: cannot connect to mqtt:\/\/127\.0\.0\.1:1: connection refused \(is the broker/,
  );
  assert.doesNotMatch(io.err, /\n\s+at /);
});
