/**
 * A finding of the chaos suite, kept as its own test until it is fixed: PostgreSQL restarted with
 * a fast shutdown (`pg_ctl stop -m fast`, SIGINT: the server ends every session with "terminating
 * connection due to administrator command") while a commit of the cloud service waits on a lock
 * (here another session holds the payloads table; in production a long migration, a VACUUM FULL,
 * another instance under --share), so that the service has a pool client checked out. The service
 * must ride it out (cloud/service/store-retry.ts retries the store), not exit on an unhandled
 * 'error' event of the pg Client that cloud/store/postgres.ts's #transaction holds: pg-pool removes
 * its idle error listener from a client while it is checked out, and pg's Client emits 'error'
 * when its socket ends unexpectedly. Without the lock the same crash happens by chance, when the
 * shutdown lands during a commit (in about half the fast restarts of `npm run chaos`):
 *
 *   npm run chaos -- --seed 11 --devices 3 --run postgres:pg-restart,pg-restart,pg-restart,pg-restart
 *
 * Either way nothing acknowledged may be lost: the campaign restarts a dead service as a
 * supervisor would, and counts the store.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mosquittoAvailability } from '../fixtures/mosquitto.js';
import { runCampaign, table } from './campaign.js';

const mosquitto = mosquittoAvailability('the chaos suite');

test('chaos: the cloud service survives a PostgreSQL fast restart while a commit waits on a lock', {
  skip: mosquitto.run ? false : mosquitto.why,
  timeout: 300_000,
}, async () => {
  const result = await runCampaign({
    seed: 11,
    mode: 'ci',
    devices: 3,
    rate: 4,
    pgRestartMode: 'fast',
    pgRestartBlocked: true,
    plans: [{ index: 1, store: 'postgres', faults: ['pg-restart', 'pg-restart'] }],
  });
  const report = table(result);
  const run = result.runs[0]!;
  assert.equal(run.faults.length, 2, report);
  assert.equal(run.duplicated, 0, report);
  assert.equal(run.lost, 0, `nothing acknowledged lost\n${report}`);
  assert.deepEqual(
    run.problems.filter((p) => p.includes('died by itself')),
    [],
    `the cloud service must not exit when PostgreSQL restarts\n${report}`,
  );
  assert.deepEqual(run.problems, [], report);
});
