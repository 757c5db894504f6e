/** node/sleeper.ts: a sleep that a wake ends at once, and that ends by itself otherwise. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sleeper } from '../../node/sleeper.js';

test('wake() ends the sleep under way at once; later wakes are no-ops', async () => {
  const sleeper = new Sleeper();
  let done = false;
  const sleeping = sleeper.sleep(1e9).then(() => {
    done = true;
  });
  await Promise.resolve();
  assert.equal(done, false);
  sleeper.wake();
  await sleeping;
  assert.equal(done, true);
  sleeper.wake(); // nothing under way
});

test('without a wake the sleep ends by itself, and a wake before a sleep does not end the next one early', async () => {
  const sleeper = new Sleeper();
  sleeper.wake();
  let done = false;
  const sleeping = sleeper.sleep(5).then(() => {
    done = true;
  });
  await Promise.resolve();
  assert.equal(done, false);
  await sleeping;
  assert.equal(done, true);
});
