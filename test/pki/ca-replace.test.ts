/**
 * `ca init --force` replaces the CA and, in the same step, re-issues the cloud certificate for the
 * same cloud key under the new CA: a cloud certificate left signed by the old CA would not verify
 * on any device enrolled under the new one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { main } from '../../cli/main.js';
import { capturingIo } from '../fixtures/cli-io.js';

test('ca init --force re-issues the cloud certificate for the same key under the new CA', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cose-flow-ca-replace-'));
  try {
    const io = capturingIo();
    assert.equal(await main(['ca', 'init', '--data-dir', dir], io), 0, io.err);
    assert.equal(await main(['cloud', 'keygen', '--data-dir', dir], io), 0, io.err);
    const oldCa = new x509.X509Certificate(readFileSync(join(dir, 'ca.pem'), 'utf8'));
    const oldCloud = new x509.X509Certificate(readFileSync(join(dir, 'cloud.pem'), 'utf8'));
    const cloudKey = readFileSync(join(dir, 'cloud.key'), 'utf8');

    io.clear();
    assert.equal(await main(['ca', 'init', '--data-dir', dir], io), 1, 'refused without --force');
    assert.match(io.err, /already has a CA/);

    io.clear();
    assert.equal(await main(['ca', 'init', '--force', '--data-dir', dir], io), 0, io.err);
    assert.match(io.out, /re-issued the cloud certificate .*cloud\.pem \(same cloud key\) under the new CA/);
    assert.match(io.out, /must enroll again/);
    const newCa = new x509.X509Certificate(readFileSync(join(dir, 'ca.pem'), 'utf8'));
    const newCloud = new x509.X509Certificate(readFileSync(join(dir, 'cloud.pem'), 'utf8'));
    assert.notEqual(newCa.serialNumber, oldCa.serialNumber);
    assert.ok(await newCloud.verify({ publicKey: newCa.publicKey, signatureOnly: true }), 'signed by the new CA');
    assert.ok(!(await newCloud.verify({ publicKey: oldCa.publicKey, signatureOnly: true })), 'not by the old one');
    assert.deepEqual(
      new Uint8Array(newCloud.publicKey.rawData),
      new Uint8Array(oldCloud.publicKey.rawData),
      'the same cloud key',
    );
    assert.equal(newCloud.subject, oldCloud.subject);
    assert.equal(readFileSync(join(dir, 'cloud.key'), 'utf8'), cloudKey, 'the cloud key is kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
