/**
 * "A reset at any moment never reuses a kid", end to end: a simulated device is killed hundreds
 * of times at random points — inside a store write (between the erase and the write, as an ESP32
 * Preference.set can be cut), right after one, or at a random moment of its session — and
 * restarted each time from what its store holds. The store is `ErasingStore`, which writes the way
 * the ESP32's Preference does (erase, then write), so the scheme that protects the real device is
 * the one under test. Every key message any incarnation got onto the broker is collected there;
 * no kid may ever be announced with two different keys.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { ErasingStore, MemoryStore } from '../../host-sim/store.js';
import { equal } from '../../src/bytes.js';
import { decodeKid } from '../../src/profile/counter.js';
import { parseDataMessage } from '../../src/profile/data-message.js';
import { openKeyMessage } from '../../src/profile/key-message.js';
import { parseTopic } from '../../src/profile/topics.js';
import { type RestartableBroker, startAedes } from './brokers.js';
import { host, makeTestPki, simDevice, sleep, type TestPki } from './harness.js';

const RUNS = Number(process.env.KILL_RUNS ?? 250);
const SEED = Number(process.env.KILL_SEED ?? Date.now() % 1_000_000);

/** A small seeded PRNG (mulberry32), so a failure can be replayed with KILL_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class PowerCut extends Error {}

let pki: TestPki;
let broker: RestartableBroker;
before(async () => {
  pki = await makeTestPki();
  broker = await startAedes();
});
after(async () => {
  await broker.close();
});

test(`kill the device ${RUNS} times at random points, mid-persist included: no kid is ever reused (seed ${SEED})`, async () => {
  const random = prng(SEED);
  const deviceId = 'kill-test-1';
  const verify = deviceCertificateVerifier({ crypto: host, trustAnchors: [pki.caDer], cacheSize: 0 });
  const announced = new Map<bigint, Uint8Array>();
  const reused: string[] = [];
  const dataKids = new Set<bigint>();
  broker.onPublish((name, payload) => {
    const parsed = parseTopic(name);
    if (parsed?.deviceId !== deviceId) return;
    if (parsed.kind === 'data') {
      dataKids.add(decodeKid(parseDataMessage(payload).kid));
      return;
    }
    if (parsed.kind !== 'session') return;
    const opened = openKeyMessage(host, payload, {
      cloudKey: () => pki.cloud.key,
      verifyCertificate: verify,
      topicDeviceId: deviceId,
    });
    const kid = decodeKid(opened.session.kid);
    const before = announced.get(kid);
    if (before === undefined) announced.set(kid, payload);
    else if (!equal(before, payload)) reused.push(`kid ${kid} announced twice with different key messages`);
  });

  const flash = new MemoryStore(); // what survives every power cut
  const counts = { writePlans: 0, midPersist: 0, afterWrite: 0, timed: 0, erases: 0 };
  for (let run = 0; run < RUNS; run++) {
    // The plan for this life: cut the power inside the k-th store write (after its erase, or after
    // its write), or at a random moment.
    const byWrite = random() < 0.6;
    const cutAtWrite = 1 + Math.floor(random() * 3);
    const phase: 'afterErase' | 'afterWrite' = random() < 0.7 ? 'afterErase' : 'afterWrite';
    const lifetimeMs = Math.floor(random() * 60);
    let dead = false;
    let writes = 0;
    let kill: () => void = () => {};
    // Provisioning the first life's credentials is the test's setup, not the device's own writing:
    // the power is cut only in what the device persists after that.
    let armed = false;
    const cut = (at: 'afterErase' | 'afterWrite') => {
      if (!armed) return;
      if (at === 'afterErase') writes++;
      if (!byWrite || dead || at !== phase || writes !== cutAtWrite) return;
      if (at === 'afterErase') counts.midPersist++;
      else counts.afterWrite++;
      kill();
      throw new PowerCut(`power cut ${at} in write ${writes}`);
    };
    const erasing = new ErasingStore(flash, {
      afterErase: () => cut('afterErase'),
      afterWrite: () => cut('afterWrite'),
    });
    // A dead device touches nothing any more.
    const store = {
      get: (key: string) => (dead ? undefined : erasing.get(key)),
      set: (key: string, value: Uint8Array) => {
        if (dead) throw new PowerCut('dead');
        erasing.set(key, value);
      },
      delete: (key: string) => {
        if (!dead) erasing.delete(key);
      },
    };
    const d = await simDevice({
      broker: broker.url,
      deviceId,
      pki,
      store,
      provision: run === 0,
      config: {
        intervalMs: 2,
        kidBlock: 3,
        rekey: { afterMessages: 2, afterMs: 0, seqLimit: 0xffffffff, minIntervalMs: 0 },
      },
    });
    kill = () => {
      dead = true;
      void d.app.stop();
    };
    armed = true;
    if (byWrite) counts.writePlans++;
    else counts.timed++;
    await d.app.start().catch(() => {});
    const deadline = Date.now() + (byWrite ? 400 : lifetimeMs);
    while (!dead && Date.now() < deadline) await sleep(2);
    if (!dead) kill();
    await d.app.stop();
    counts.erases += erasing.erases;
  }
  await sleep(100); // the last messages on their way through the broker

  assert.deepEqual(reused, [], `seed ${SEED}`);
  const kids = [...announced.keys()].sort((a, b) => (a < b ? -1 : 1));
  assert.ok(kids.length >= RUNS / 2, `${kids.length} sessions announced in ${RUNS} lives (seed ${SEED})`);
  assert.ok(counts.midPersist >= RUNS / 10, `power cuts between erase and write: ${JSON.stringify(counts)}`);
  for (const kid of dataKids) assert.ok(announced.has(kid), `data under kid ${kid} has its key message`);
  process.stdout.write(
    `# ${RUNS} lives, ${kids.length} kids announced (highest ${kids.at(-1)}), ${JSON.stringify(counts)}, seed ${SEED}\n`,
  );
});
