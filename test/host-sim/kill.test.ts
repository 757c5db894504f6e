/**
 * "A reset at any moment never reuses a kid", end to end: simulated devices are killed hundreds
 * of times (KILL_RUNS, default 500; KILL_SEED replays) at random points and restarted each time
 * from what their store holds. The store is `ErasingStore`, which writes the way the ESP32's
 * Preference does (erase, then write), so the scheme that protects the real device is the one
 * under test. Every key message any incarnation got onto the broker is collected there; no kid
 * of a device may ever be announced with two different keys.
 *
 * Two kinds of lives:
 * - a provisioned device (kill-test-1) that re-keys every 2 messages, cut inside a store write
 *   (between the erase and the write: "mid-persist"; or right after it), or at a random moment;
 *   a cut after the life's first completed session counts as "during re-key" (the device is then
 *   starting a new session, or writing the kid block a new session needs);
 * - devices with no certificate that enroll with a batch credential through the enrollment service
 *   (cloud/enroll/service.ts) on the same broker, cut while enrolling — inside the write of the
 *   enrolled certificates or at a random moment — and restarted until enrolled (a new device after
 *   4 lives). The stored certificates are never torn: after every cut they read back whole, or
 *   not at all, and the device enrolls again.
 * The figures (kills by kind) are printed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { batchDeviceKey, createBatch } from '../../cloud/enroll/policy.js';
import { type EnrollmentService, startEnrollmentService } from '../../cloud/enroll/service.js';
import { cloudKeygen, cloudKeyLookup, loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { initCa } from '../../cloud/pki/setup.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { ErasingStore, MemoryStore } from '../../host-sim/store.js';
import { equal } from '../../src/bytes.js';
import { CredentialStore } from '../../src/device/credentials.js';
import { decodeKid } from '../../src/profile/counter.js';
import { parseDataMessage } from '../../src/profile/data-message.js';
import type { OpenKeyMessage } from '../../src/profile/key-message.js';
import { openKeyMessage } from '../../src/profile/key-message.js';
import { parseTopic } from '../../src/profile/topics.js';
import { prng } from '../fixtures/prng.js';
import { type RestartableBroker, startAedes } from './brokers.js';
import { host, makeTestPki, simDevice, sleep, type TestPki, until } from './harness.js';

const RUNS = Number(process.env.KILL_RUNS ?? 500);
const SEED = Number(process.env.KILL_SEED ?? Date.now() % 1_000_000);
/** Share of lives spent on enrolling devices. */
const ENROLL_SHARE = 0.3;
const BATCH = 'kill-batch';

class PowerCut extends Error {}
/** aedes keeps its connected clients by id (not in its typings). */
type AedesClients = { clients: Record<string, unknown> };

let pki: TestPki;
let broker: RestartableBroker;
let tmp: string;
let dataDir: string;
let enrollCa: Uint8Array;
let enrollment: EnrollmentService;
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cose-flow-kill-'));
  dataDir = join(tmp, 'data');
  [pki, broker, enrollCa] = await Promise.all([
    makeTestPki(),
    startAedes(),
    initCa(host, dataDir, { name: 'kill test enrollment CA' }).then((r) => r.ca.der),
  ]);
  await cloudKeygen(host, dataDir);
  createBatch(host, dataDir, BATCH);
  enrollment = await startEnrollmentService({ dataDir, crypto: host, brokerUrl: broker.url, minIntervalMs: 0 });
});
after(async () => {
  await enrollment?.close();
  await broker?.close();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

const STEADY = 'kill-test-1';

test(`kill devices ${RUNS} times at random points — mid-persist, while enrolling, while re-keying: no kid is ever reused (seed ${SEED})`, async () => {
  const started = Date.now();
  const random = prng(SEED);
  const steadyOpen: OpenKeyMessage = {
    cloudKey: () => pki.cloud.key,
    verifyCertificate: deviceCertificateVerifier({ crypto: host, trustAnchors: [pki.caDer], cacheSize: 0 }),
  };
  const enrolledOpen: OpenKeyMessage = {
    cloudKey: cloudKeyLookup(loadCloudKeys(host, dataDir)),
    verifyCertificate: deviceCertificateVerifier({ crypto: host, trustAnchors: [enrollCa], cacheSize: 0 }),
  };
  const announced = new Map<string, Uint8Array>(); // "device/kid" → key message
  const reused: string[] = [];
  const refused: string[] = [];
  const dataKids = new Set<string>();
  broker.onPublish((name, payload) => {
    const parsed = parseTopic(name);
    if (parsed === undefined || !parsed.deviceId.startsWith('kill-')) return;
    const id = parsed.deviceId;
    if (parsed.kind === 'data') {
      dataKids.add(`${id}/${decodeKid(parseDataMessage(payload).kid)}`);
      return;
    }
    if (parsed.kind !== 'session') return;
    let kid: bigint;
    try {
      const options = id === STEADY ? steadyOpen : enrolledOpen;
      kid = decodeKid(openKeyMessage(host, payload, { ...options, topicDeviceId: id }).session.kid);
    } catch (e) {
      refused.push(`${id}: ${(e as Error).message}`);
      return;
    }
    const key = `${id}/${kid}`;
    const before = announced.get(key);
    if (before === undefined) announced.set(key, payload);
    else if (!equal(before, payload)) reused.push(`${key} announced twice with different key messages`);
  });

  const steadyFlash = new MemoryStore(); // what survives every power cut
  let steadyProvisioned = false;
  let enrolling: { id: string; flash: MemoryStore; lives: number } | undefined;
  let enrollDevices = 0;
  let enrolledDevices = 0;
  const torn: string[] = [];
  const kills = {
    midPersist: 0,
    afterWrite: 0,
    timed: 0,
    duringEnrollment: 0,
    duringRekey: 0,
    steadyLives: 0,
    enrollLives: 0,
    erases: 0,
  };

  for (let run = 0; run < RUNS; run++) {
    const enrollLife = random() < ENROLL_SHARE;
    if (enrollLife && (enrolling === undefined || enrolling.lives >= 4)) {
      enrolling = { id: `kill-enroll-${++enrollDevices}`, flash: new MemoryStore(), lives: 0 };
    }
    const deviceId = enrollLife ? enrolling!.id : STEADY;
    const flash = enrollLife ? enrolling!.flash : steadyFlash;
    if (enrollLife) {
      kills.enrollLives++;
      enrolling!.lives++;
    } else kills.steadyLives++;

    // The plan for this life: cut the power inside the k-th store write (after its erase, or after
    // its write), or at a random moment. An enrolling device's first write is its certificates.
    const byWrite = random() < (enrollLife ? 0.5 : 0.6);
    const cutAtWrite = enrollLife ? 1 : 1 + Math.floor(random() * 3);
    const phase: 'afterErase' | 'afterWrite' = random() < 0.7 ? 'afterErase' : 'afterWrite';
    const lifetimeMs = Math.floor(random() * (enrollLife ? 150 : 60));
    let dead = false;
    let writes = 0;
    let sessionCompleted = false;
    let killedBy: 'write' | 'time' | undefined;
    let kill: () => void = () => {};
    // Provisioning the steady device's certificates is the test's setup, not the device's own
    // writing: the power is cut only in what the device persists after that.
    let armed = false;
    const cut = (at: 'afterErase' | 'afterWrite') => {
      if (!armed) return;
      if (at === 'afterErase') writes++;
      if (!byWrite || dead || at !== phase || writes !== cutAtWrite) return;
      if (at === 'afterErase') kills.midPersist++;
      else kills.afterWrite++;
      killedBy = 'write';
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
      provision: !enrollLife && !steadyProvisioned,
      config: {
        intervalMs: 2,
        kidBlock: 3,
        rekey: { afterMessages: 2, afterMs: 0, seqLimit: 0xffffffff, minIntervalMs: 0 },
        ...(enrollLife
          ? {
              enroll: {
                credential: { batchId: BATCH, key: batchDeviceKey(host, dataDir, BATCH, deviceId) },
                ca: enrollCa,
                retry: { responseTimeoutMs: 2000, initialDelayMs: 20, maxDelayMs: 200, maxAttempts: 1000 },
              },
            }
          : {}),
      },
      onEvent: (event) => {
        if (event.type === 'key-acked') sessionCompleted = true;
      },
    });
    if (!enrollLife) steadyProvisioned = true;
    kill = () => {
      if (dead) return;
      dead = true;
      // What the device was doing when the power went.
      const state = d.app.state;
      if (state === 'enrolling' || (enrollLife && state === 'boot')) kills.duringEnrollment++;
      else if (sessionCompleted && (state === 'session' || killedBy === 'write')) kills.duringRekey++;
      void d.app.stop();
    };
    armed = true;
    await d.app.start().catch(() => {});
    const deadline = Date.now() + (byWrite ? 400 : lifetimeMs);
    while (!dead && Date.now() < deadline) await sleep(2);
    if (!dead) {
      kills.timed++;
      killedBy = 'time';
      kill();
    }
    await d.app.stop();
    kills.erases += erasing.erases;

    if (enrollLife) {
      // The certificates in flash: whole, or none (then the next life enrolls again).
      try {
        const stored = new CredentialStore(flash).load();
        if (stored !== undefined) {
          assert.ok(equal(stored.caCertificate, enrollCa), 'the stored CA is the enrollment CA');
          if (sessionCompleted) {
            enrolledDevices++;
            enrolling = undefined; // enrolled and sending: the next enrollment life is a new device
          }
        }
      } catch (e) {
        torn.push(`${deviceId} after life ${run}: ${(e as Error).message}`);
      }
    }
  }
  // The last messages on their way through the broker: every device connection closed on the
  // broker's side (it has read all they sent), not a fixed wait.
  await until(
    () => !Object.keys((broker.aedes!() as unknown as AedesClients).clients).some((id) => id.startsWith('kill-')),
    'every device connection closed at the broker',
  );

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const kidsOf = (id: string) => [...announced.keys()].filter((k) => k.startsWith(`${id}/`)).length;
  process.stdout.write(
    `# ${RUNS} kills in ${seconds} s: ${JSON.stringify(kills)}; ${kidsOf(STEADY)} kids announced by ${STEADY}, ` +
      `${announced.size - kidsOf(STEADY)} by ${enrollDevices} enrolling devices (${enrolledDevices} enrolled and sending); seed ${SEED}\n`,
  );
  assert.deepEqual(reused, [], `seed ${SEED}`);
  assert.deepEqual(torn, [], `torn certificates (seed ${SEED})`);
  assert.deepEqual(refused, [], `key messages that do not open (seed ${SEED})`);
  assert.equal(kills.midPersist + kills.afterWrite + kills.timed, RUNS, 'every life ends in exactly one cut');
  assert.ok(kidsOf(STEADY) >= kills.steadyLives / 2, `${kidsOf(STEADY)} sessions in ${kills.steadyLives} lives`);
  assert.ok(kills.midPersist >= RUNS / 10, `power cuts between erase and write: ${JSON.stringify(kills)}`);
  assert.ok(kills.duringEnrollment >= RUNS / 20, `cuts while enrolling: ${JSON.stringify(kills)}`);
  assert.ok(kills.duringRekey >= RUNS / 20, `cuts while re-keying: ${JSON.stringify(kills)}`);
  assert.ok(enrolledDevices >= 1, 'a device cut while enrolling enrolls once restarted');
  for (const kid of dataKids) assert.ok(announced.has(kid), `data under kid ${kid} has its key message`);
});
