/**
 * The device's control decisions (src/device/control.ts): pure functions from a control message
 * and what the device holds to what it does, and the interval counter behind its budgets.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { x509 } from '../../cloud/pki/x509.js';
import { type ControlView, decideControl, overBudget, RateWindow, screenControl } from '../../src/device/control.js';
import type { TrustedCloud } from '../../src/device/trust.js';
import type { OpenedControlMessage } from '../../src/profile/control.js';
import { encodeKid } from '../../src/profile/counter.js';
import { issueCertificate, makeCa, type TestCa } from '../fixtures/pki.js';

const HOUR = 3600_000;
let ca: TestCa;
/** Three cloud certificates, each issued (notBefore) later than the one before. */
let clouds: TrustedCloud[];

before(async () => {
  ca = await makeCa();
  clouds = [];
  for (const hoursAgo of [3, 2, 1]) {
    const issued = await issueCertificate(ca, {
      commonName: 'cloud',
      keyUsage: x509.KeyUsageFlags.keyAgreement,
      notBefore: new Date(Date.now() - hoursAgo * HOUR),
    });
    clouds.push({ certificate: issued.der, publicKey: issued.publicKey });
  }
});

const view = (over: Partial<ControlView> = {}): ControlView => ({
  kid: 7,
  now: 100_000,
  lastCloudRekey: -Infinity,
  minRekeyIntervalMs: 60_000,
  cloud: clouds[1]!,
  next: undefined,
  ...over,
});

const rekey = { request: 'rekey' as const, kid: encodeKid(7), issuedAt: 0 };
const announce = (cloud: TrustedCloud): OpenedControlMessage => ({
  request: 'cloud-certificate',
  kid: encodeKid(7),
  issuedAt: 0,
  cloudCertificate: cloud.certificate,
  signedBy: 0,
});

describe('device control decisions', () => {
  test('screenControl: the current kid only, cloud re-keys at most once per minRekeyIntervalMs', () => {
    assert.equal(screenControl(rekey, view()), undefined);
    assert.deepEqual(screenControl({ ...rekey, kid: encodeKid(6) }, view()), {
      request: 'rekey',
      reason: 'stale-kid',
      fields: { kid: '06', current: '07' },
    });
    assert.deepEqual(screenControl(rekey, view({ lastCloudRekey: 50_000 })), {
      request: 'rekey',
      reason: 'rate-limited',
    });
    assert.equal(screenControl(rekey, view({ lastCloudRekey: 40_000 })), undefined);
    const certificate = { ...rekey, request: 'cloud-certificate' as const };
    assert.equal(
      screenControl(certificate, view({ lastCloudRekey: 99_999 })),
      undefined,
      'only re-keys are rate limited',
    );
    assert.deepEqual(overBudget(rekey, { maxVerifications: 8, intervalMs: 60_000 }), {
      request: 'rekey',
      reason: 'verification-limit',
      fields: { limit: '8 per 60000 ms' },
    });
  });

  test('decideControl: re-key; a certificate in use or announced; a rollback; a newer one taken', () => {
    assert.deepEqual(decideControl({ ...rekey, signedBy: 0 }, undefined, view()), { type: 'rekey' });
    assert.deepEqual(decideControl(announce(clouds[1]!), clouds[1], view()), {
      type: 'accept',
      request: 'cloud-certificate',
      reason: 'already in use',
    });
    assert.deepEqual(decideControl(announce(clouds[2]!), clouds[2], view({ next: clouds[2] })), {
      type: 'accept',
      request: 'cloud-certificate',
      reason: 'already announced',
    });
    const rollback = decideControl(announce(clouds[0]!), clouds[0], view());
    assert.ok(rollback.type === 'ignore' && /not newer than the cloud certificate in use/.test(rollback.reason));
    const behindNext = decideControl(announce(clouds[1]!), clouds[1], view({ cloud: clouds[0]!, next: clouds[2] }));
    assert.ok(behindNext.type === 'ignore' && /not newer than the one announced before/.test(behindNext.reason));
    assert.deepEqual(decideControl(announce(clouds[2]!), clouds[2], view()), {
      type: 'take-certificate',
      cloud: clouds[2],
    });
  });

  test('RateWindow: at most max per interval, the interval starting at its first use', () => {
    const w = new RateWindow(1000, 3);
    assert.equal(w.take(0, 2), true);
    assert.equal(w.take(500, 2), false, 'would be 4');
    assert.equal(w.take(999), true);
    assert.equal(w.take(999), false);
    assert.equal(w.take(1000, 3), true, 'a new interval');
    assert.equal(w.take(1500), false);
  });
});
