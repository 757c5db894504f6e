/**
 * The service's revocation check (cloud/pki/revocation.ts `revocationCheckerPerTurn`): revoked.json
 * looked at once per event-loop turn whatever the number of serials asked about, a change seen by
 * the next turn, and an unreadable file refusing every call of its turn (fail closed).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { revocationChecker, revocationCheckerPerTurn } from '../../cloud/pki/revocation.js';

const dir = mkdtempSync(join(tmpdir(), 'cose-flow-revocation-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const turn = () => new Promise((resolve) => setImmediate(resolve));
const revoke = (...serials: string[]) =>
  writeFileSync(join(dir, 'revoked.json'), JSON.stringify(serials.map((serial) => ({ serial, deviceId: 'd' }))));

test('one look per turn: a change is seen by the next turn; the per-call checker sees it at once', async () => {
  rmSync(join(dir, 'revoked.json'), { force: true });
  const perTurn = revocationCheckerPerTurn(dir);
  const perCall = revocationChecker(dir);
  assert.equal(perTurn('aa'), false, 'no file: nothing revoked');
  revoke('aa');
  assert.equal(perTurn('aa'), false, 'within the turn: what the turn read');
  assert.equal(perCall('aa'), true);
  await turn();
  assert.equal(perTurn('aa'), true);
  assert.equal(perTurn('00aa'), true, 'serials compare without leading zero bytes');
  assert.equal(perTurn('bb'), false);
  revoke('aa', 'bb');
  await turn();
  assert.equal(perTurn('bb'), true);
});

test('an unreadable file refuses every call of its turn, and is read again the next turn', async () => {
  revoke('aa');
  const perTurn = revocationCheckerPerTurn(dir);
  assert.equal(perTurn('aa'), true);
  writeFileSync(join(dir, 'revoked.json'), '{ not json');
  await turn();
  assert.throws(() => perTurn('aa'));
  assert.throws(() => perTurn('cc'), /./, 'not the old list: fail closed for the whole turn');
  revoke('cc');
  assert.throws(() => perTurn('cc'), /./, 'still the same turn');
  await turn();
  assert.equal(perTurn('cc'), true);
  assert.equal(perTurn('aa'), false);
});
