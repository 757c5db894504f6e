/**
 * The revocation check of the service's pipeline (cloud/service/pipeline.ts `oncePerTurn`): one
 * look at revoked.json per certificate serial and event-loop turn, and a change seen by the next.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { oncePerTurn } from '../../cloud/service/pipeline.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));

test('answers once per serial per turn, and looks again the next turn', async () => {
  let revoked = false;
  const looked: string[] = [];
  const check = oncePerTurn((serial) => {
    looked.push(serial);
    return revoked && serial === 'aa';
  });
  assert.equal(check('aa'), false);
  assert.equal(check('aa'), false);
  assert.equal(check('bb'), false);
  assert.deepEqual(looked, ['aa', 'bb']);
  revoked = true;
  assert.equal(check('aa'), false, 'within the turn: the answer of the turn');
  await turn();
  assert.equal(check('aa'), true);
  assert.equal(check('bb'), false);
  assert.deepEqual(looked, ['aa', 'bb', 'aa', 'bb']);
});

test('a check that throws is not remembered', async () => {
  let fail = true;
  const check = oncePerTurn(() => {
    if (fail) throw new Error('unreadable');
    return true;
  });
  assert.throws(() => check('aa'), /unreadable/);
  fail = false;
  assert.equal(check('aa'), true);
});
