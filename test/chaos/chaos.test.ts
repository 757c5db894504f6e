/**
 * The short chaos campaign (issue 14; `npm run chaos -- --ci` runs the same): SQLite and
 * PostgreSQL, every fault kind at least once, with a fixed seed (CHAOS_SEED overrides it). Asserts
 * no duplicate anywhere, no loss where the broker kept the messages, a recovery after every
 * fault, and that the losses a lossy fault can cause are reported as such (the cloud logs
 * mqtt-session-lost; the run's loss is marked expected with what was lost).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mosquittoAvailability } from '../fixtures/mosquitto.js';
import { LOSSY_KINDS, runCampaign, table } from './campaign.js';

const mosquitto = mosquittoAvailability('the chaos suite');

test('chaos: faults at random moments on SQLite and PostgreSQL lose and duplicate nothing the broker kept', {
  skip: mosquitto.run ? false : mosquitto.why,
  timeout: 600_000,
}, async () => {
  const seed = Number(process.env.CHAOS_SEED ?? 1414);
  const lines: string[] = [];
  const result = await runCampaign({
    seed,
    mode: 'ci',
    devices: 3,
    rate: 4,
    say: (l) => {
      lines.push(l);
      if (process.env.CHAOS_VERBOSE) process.stderr.write(`${l}\n`);
    },
  });
  const report = `seed ${seed}\n${table(result)}\n${lines.slice(-20).join('\n')}`;
  process.stderr.write(`${table(result)}\n`);
  const injected = new Set(result.runs.flatMap((r) => r.faults.map((f) => f.kind)));
  for (const store of ['sqlite', 'postgres'])
    assert.ok(
      result.runs.some((r) => r.store === store && r.faults.length > 0),
      `a run on ${store}\n${report}`,
    );
  for (const kind of ['cloud-kill9', 'cloud-disconnect', 'broker-term', 'pg-restart', 'slow-store', ...LOSSY_KINDS])
    assert.ok(injected.has(kind as never), `${kind} injected\n${report}`);
  if (!result.skippedKinds.includes('disk-full')) assert.ok(injected.has('disk-full'), `disk-full injected\n${report}`);
  for (const r of result.runs) {
    assert.equal(r.duplicated, 0, `run ${r.run}: duplicates\n${report}`);
    assert.equal(r.extra, 0, `run ${r.run}: stored beyond what was sealed\n${report}`);
    if (!r.lossy) assert.equal(r.lost, 0, `run ${r.run}: lost where the broker kept the messages\n${report}`);
    for (const f of r.faults)
      assert.notEqual(f.recoverMs, null, `run ${r.run}: no recovery after ${f.kind}\n${report}`);
    assert.deepEqual(r.problems, [], `run ${r.run}\n${report}`);
    if (r.lost > 0) assert.ok(r.lossy && r.expectedLoss, `run ${r.run}: a loss reported as expected\n${report}`);
  }
  const expiry = result.runs.find((r) => r.faults.some((f) => f.kind === 'session-expiry'))!;
  assert.ok(expiry.lost > 0, `session expiry: messages published while the cloud had no session are lost\n${report}`);
  assert.ok((expiry.cloudEvents['mqtt-session-lost'] ?? 0) > 0, `session expiry: the cloud says so\n${report}`);
  const noPersist = result.runs.find((r) => r.faults.some((f) => f.kind === 'broker-kill9-nopersist'))!;
  assert.ok(
    (noPersist.cloudEvents['mqtt-session-lost'] ?? 0) > 0,
    `broker without persistence: the cloud says so\n${report}`,
  );
});
