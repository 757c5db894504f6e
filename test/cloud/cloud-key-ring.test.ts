/**
 * The service's cloud keys (CloudKeyRing, cloud/pki/cloud-keys.ts): lookup by key id, the current
 * key, reload on change (a rotation adds a key; a passed deadline removes one; a broken key file
 * keeps the keys loaded before), and the watch timer. Also: openKeyMessage's signed-content
 * digest, which the receiver stores instead of decoding the key message again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type CloudKeyChange, CloudKeyRing, cloudKeygen } from '../../cloud/pki/cloud-keys.js';
import { openDataDir } from '../../cloud/pki/data-dir.js';
import { readCertificates } from '../../cloud/pki/files.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { fromHex } from '../../src/bytes.js';
import { decodeSign1, sign1ToBeSigned } from '../../src/cose/sign1.js';
import { openKeyMessage } from '../../src/profile/key-message.js';
import { crypto, makeCloudDataDir, makeDevice, until } from './service-fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-key-ring-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('cloud key ring', () => {
  test('loads the current key; lookup by key id', async () => {
    const dir = join(tmp, 'load');
    await makeCloudDataDir(dir, 'ring CA');
    const ring = new CloudKeyRing(crypto, dir);
    const [only, ...rest] = ring.keys();
    assert.ok(only?.current);
    assert.equal(rest.length, 0);
    assert.equal(ring.current().kidHex, only.kidHex);
    assert.equal(ring.get(only.kidHex), only);
    assert.equal(ring.lookup(fromHex(only.kidHex)), only.key);
    assert.equal(ring.lookup(new Uint8Array(8)), undefined);
    assert.equal(ring.reload(), false, 'nothing changed');
  });

  test('a rotation is picked up by reload; a passed deadline drops the old key', async () => {
    const dir = join(tmp, 'rotate');
    await makeCloudDataDir(dir, 'ring rotate CA');
    let now = Date.now();
    const changes: CloudKeyChange[] = [];
    const ring = new CloudKeyRing(crypto, dir, { now: () => now, onChange: (c) => changes.push(c) });
    const old = ring.current();
    const version = ring.version;
    const rotated = await cloudKeygen(crypto, dir, { rotate: true, retireAt: new Date(now + 60_000) });
    assert.equal(ring.lookup(fromHex(rotated.kidHex)), undefined, 'not before the reload');
    assert.equal(ring.reload(), true, 'a key was added');
    assert.notEqual(ring.version, version);
    assert.equal(ring.current().kidHex, rotated.kidHex);
    assert.ok(ring.lookup(fromHex(old.kidHex)) !== undefined, 'the retired key still opens sessions');
    assert.deepEqual(
      changes.map((c) => [c.added, c.removed]),
      [[[rotated.kidHex], []]],
    );

    now += 61_000;
    assert.equal(ring.reload(), false, 'nothing added');
    assert.equal(ring.get(old.kidHex), undefined);
    assert.deepEqual(changes[1]?.removed, [old.kidHex]);
    assert.equal(ring.reload(), false);
    assert.equal(changes.length, 2, 'no change, no report');
  });

  test('a broken key on disk: the error is reported and the keys loaded before stay', async () => {
    const dir = join(tmp, 'broken');
    await makeCloudDataDir(dir, 'ring broken CA');
    const errors: Error[] = [];
    const ring = new CloudKeyRing(crypto, dir, { onError: (e) => errors.push(e) });
    const before = ring.current().kidHex;
    writeFileSync(openDataDir(dir).cloudKey, 'not a key\n');
    assert.equal(ring.reload(), false);
    assert.equal(errors.length, 1);
    assert.equal(ring.current().kidHex, before);
    assert.equal(ring.reload(), false, 'not tried again until the keys change again');
    assert.equal(errors.length, 1);
  });

  test('watch reloads by itself until close', async () => {
    const dir = join(tmp, 'watch');
    await makeCloudDataDir(dir, 'ring watch CA');
    const ring = new CloudKeyRing(crypto, dir);
    ring.watch(20);
    try {
      const rotated = await cloudKeygen(crypto, dir, { rotate: true });
      await until('the new key loaded', () => ring.lookup(fromHex(rotated.kidHex)) !== undefined);
    } finally {
      ring.close();
    }
  });
});

describe('openKeyMessage', () => {
  test('returns the digest of the signed content (protected bytes + payload)', async () => {
    const dir = join(tmp, 'digest');
    const fixture = await makeCloudDataDir(dir, 'digest CA');
    const device = await makeDevice(fixture, 'dev-digest');
    const bytes = device.keyMessage(1);
    const ring = new CloudKeyRing(crypto, dir);
    const verifyCertificate = deviceCertificateVerifier({
      crypto,
      trustAnchors: readCertificates(openDataDir(dir).caCertificate),
      isRevoked: () => false,
    });
    const opened = openKeyMessage(crypto, bytes, { cloudKey: ring.lookup, verifyCertificate });
    const sign1 = decodeSign1(bytes, { requireTag: true });
    assert.ok(sign1.payload !== null);
    const expected = crypto.sha256(sign1ToBeSigned(sign1.protectedBytes, new Uint8Array(0), sign1.payload));
    assert.deepEqual(opened.signedContentDigest, expected);
  });
});
