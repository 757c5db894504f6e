/**
 * The chaos campaign (issue 14): a fleet of simulated devices (`cose-flow sim`, QoS 1) publishes
 * through mosquitto to the cloud service (`cose-flow cloud run`, or test/chaos/cloud-child.js when
 * the run slows the store) on SQLite or PostgreSQL, while faults are injected at seeded random
 * moments. After each run the devices' acknowledged count (the sim's --json summary: PUBACKs from
 * the broker) is compared with the rows in the store.
 *
 * A run is either lossless (only faults after which the broker still holds every message it
 * acknowledged: the loss must be 0) or lossy (exactly one fault kind that can make the broker
 * forget messages, so the loss seen is that kind's, reported as expected). Duplicates must be 0
 * in every run. Everything random comes from the seed, so `--seed` replays the plan (the moments
 * the processes land on are the machine's).
 */
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { main as cli } from '../../cli/main.js';
import { prng } from '../fixtures/prng.js';
import {
  Broker,
  Cloud,
  Cut,
  fillDisk,
  freeDisk,
  mountTmpfs,
  Postgres,
  removeDir,
  Sim,
  type SimSummary,
  StoreView,
  sleep,
  unmount,
  until,
} from './parts.js';

/** Faults after which the broker still holds every message it acknowledged: loss must be 0. */
export const LOSSLESS_KINDS = [
  'cloud-kill9',
  'cloud-disconnect',
  'broker-term',
  'pg-restart',
  'disk-full',
  'slow-store',
] as const;
/** Faults that can make the broker forget acknowledged messages: loss is measured and reported. */
export const LOSSY_KINDS = ['broker-kill9-persist', 'broker-kill9-nopersist', 'session-expiry'] as const;
export type FaultKind = (typeof LOSSLESS_KINDS)[number] | (typeof LOSSY_KINDS)[number];
export type StoreKind = 'sqlite' | 'postgres';

export const WHAT_IS_LOST: Record<(typeof LOSSY_KINDS)[number], string> = {
  'broker-kill9-persist':
    'mosquitto writes its persistence file only on SIGTERM and every autosave_interval (here 2 s): a kill -9 loses ' +
    'every message it acknowledged to a device since the last save and had not yet delivered to the cloud and had acknowledged by it',
  'broker-kill9-nopersist':
    "without persistence a kill -9 loses the cloud's session itself: messages queued or in flight for it, and those published " +
    'after the restart before the cloud subscribes again',
  'session-expiry':
    "the broker drops the cloud's session once it has been away longer than --session-expiry: every message published from " +
    'then until the cloud subscribes again has no subscriber and is dropped, though the devices got their PUBACK',
};

export interface RunPlan {
  index: number;
  store: StoreKind;
  faults: FaultKind[];
}

export interface FaultRecord {
  run: number;
  kind: FaultKind;
  /** What exactly was done (durations, modes). */
  detail: string;
  /** Epoch ms: injected, healed (process back, disk freed, connection allowed, delay off). */
  at: number;
  healedAt: number;
  /**
   * The first new payload (a reading taken after `at`) stored after the fault, − healedAt and
   * − at (ms); null: none within the limit.
   */
  recoverMs: number | null;
  faultToStoredMs: number | null;
  note?: string;
}

export interface RunResult {
  run: number;
  store: StoreKind;
  lossy: boolean;
  faults: FaultRecord[];
  /** The sim's summary (devices' view). */
  sim: SimSummary;
  acknowledged: number;
  stored: number;
  /** max(0, acknowledged − stored): acknowledged by the broker to a device, never stored. */
  lost: number;
  /** Messages still unacknowledged when the sim stopped: they may or may not be stored. */
  inFlightAtStop: number;
  duplicated: number;
  duplicateKeys: number;
  /** Stored beyond what devices sealed (must be 0). */
  extra: number;
  /** Sequence numbers missing inside a session's stored range. */
  gaps: number;
  /** Cloud log events counted (mqtt-session-lost, store-error, duplicate, …). */
  cloudEvents: Record<string, number>;
  cloudStarts: number;
  seconds: number;
  /** Why the run is not clean (empty: clean). */
  problems: string[];
  /** What the loss is expected from (lossy runs with loss > 0). */
  expectedLoss?: string;
  skipped?: string[];
}

export interface CampaignOptions {
  seed: number;
  /** 'ci': a fixed short cover of every kind on both stores; 'long': random runs for `minutes`. */
  mode: 'ci' | 'long';
  minutes?: number;
  devices?: number;
  rate?: number;
  /** Always this PostgreSQL shutdown mode for pg-restart (default: fast or immediate at random). */
  pgRestartMode?: 'fast' | 'immediate';
  /**
   * pg-restart while a commit of the service waits on a lock (another session holds the payloads
   * table in EXCLUSIVE mode): the service then has a client checked out of its pool for certain.
   */
  pgRestartBlocked?: boolean;
  /** Explicit runs instead of the mode's plan (to replay or study one fault kind). */
  plans?: RunPlan[];
  /** One line per step (stderr). */
  say?: (line: string) => void;
  /** Each run's result as soon as it is known. */
  onRun?: (r: RunResult) => void;
}

export interface CampaignResult {
  seed: number;
  mode: string;
  runs: RunResult[];
  tmpfs: string | undefined;
  skippedKinds: FaultKind[];
}

function kindsFor(store: StoreKind, diskFull: boolean): FaultKind[] {
  return LOSSLESS_KINDS.filter((k) => (k !== 'pg-restart' || store === 'postgres') && (k !== 'disk-full' || diskFull));
}

/** The plan of a CI campaign: every kind on a store at least once, lossless kinds in two runs. */
export function ciPlan(rand: () => number, diskFull: boolean): RunPlan[] {
  const shuffle = <T>(a: T[]): T[] => {
    const b = [...a];
    for (let i = b.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [b[i], b[j]] = [b[j]!, b[i]!];
    }
    return b;
  };
  const lossyStores: StoreKind[] = rand() < 0.5 ? ['sqlite', 'postgres', 'sqlite'] : ['postgres', 'sqlite', 'postgres'];
  return [
    { index: 1, store: 'sqlite', faults: shuffle(kindsFor('sqlite', diskFull)) },
    { index: 2, store: 'postgres', faults: shuffle(kindsFor('postgres', diskFull)) },
    ...LOSSY_KINDS.map((k, i) => ({ index: 3 + i, store: lossyStores[i]!, faults: [k] as FaultKind[] })),
  ];
}

/** The next run of a long campaign: 3 of 4 lossless with 3–6 faults, 1 of 4 one lossy kind. */
export function longRun(rand: () => number, index: number, diskFull: boolean): RunPlan {
  const store: StoreKind = index % 2 === 1 ? 'sqlite' : 'postgres';
  if (rand() < 0.25) {
    const kind = LOSSY_KINDS[Math.floor(rand() * LOSSY_KINDS.length)]!;
    return { index, store, faults: [kind] };
  }
  const kinds = kindsFor(store, diskFull);
  const n = 3 + Math.floor(rand() * 4);
  return { index, store, faults: Array.from({ length: n }, () => kinds[Math.floor(rand() * kinds.length)]!) };
}

const between = (rand: () => number, lo: number, hi: number) => Math.round(lo + rand() * (hi - lo));

interface Shared {
  base: string;
  dataDir: string;
  pg: Postgres | undefined;
  /** Why disk-full cannot run (mount refused), or undefined. */
  noTmpfs: string | undefined;
  devices: number;
  rate: number;
  pgRestartMode: 'fast' | 'immediate' | undefined;
  pgRestartBlocked: boolean;
  seed: number;
  say: (line: string) => void;
}

async function runOne(plan: RunPlan, rand: () => number, shared: Shared): Promise<RunResult> {
  const { say } = shared;
  const began = Date.now();
  const lossy = plan.faults.some((k) => (LOSSY_KINDS as readonly string[]).includes(k));
  const runDir = join(shared.base, `run-${plan.index}`);
  mkdirSync(runDir, { recursive: true });
  const problems: string[] = [];
  const faults: FaultRecord[] = [];
  const skipped: string[] = [];

  // The store's disk: a tmpfs of its own (SQLite file, or a PostgreSQL tablespace) when allowed.
  const storeDisk = join(runDir, 'store-disk');
  const owner = plan.store === 'postgres' ? Postgres.identity() : undefined;
  let mounted = false;
  if (shared.noTmpfs === undefined) {
    const refused = mountTmpfs(storeDisk, plan.store === 'postgres' ? 40 : 24, owner);
    if (refused === undefined) mounted = true;
    else {
      shared.noTmpfs = refused;
      say(
        `!!!!!!!!!! WARNING: mount -t tmpfs refused (${refused}): the disk-full fault is SKIPPED from now on !!!!!!!!!!`,
      );
    }
  }
  if (!mounted) mkdirSync(storeDisk, { recursive: true });
  let storeUrl: string;
  let pgDb: string | undefined;
  const pgTs = `chaos_ts_${plan.index}`;
  if (plan.store === 'sqlite') storeUrl = `sqlite:${join(storeDisk, 'cose-flow.db')}`;
  else {
    const pgs = shared.pg!;
    pgDb = `chaos_run_${plan.index}`;
    if (mounted) {
      await pgs.sql(`CREATE TABLESPACE ${pgTs} LOCATION '${storeDisk}'`);
      await pgs.sql(`CREATE DATABASE ${pgDb} TEMPLATE template0 TABLESPACE ${pgTs}`);
    } else await pgs.sql(`CREATE DATABASE ${pgDb} TEMPLATE template0`);
    storeUrl = pgs.url(pgDb);
  }

  const persistence = !plan.faults.includes('broker-kill9-nopersist');
  const broker = await Broker.start(join(runDir, 'mosquitto'), { persistence, autosaveSeconds: 2 });
  const cut = await Cut.start(broker.port);
  const expiry = plan.faults.includes('session-expiry') ? 2 : 86_400;
  const logs = process.env.CHAOS_LOGS;
  if (logs) mkdirSync(logs, { recursive: true });
  const cloud = new Cloud({
    wrapped: plan.faults.includes('slow-store'),
    ...(logs ? { logFile: join(logs, `cloud-seed${shared.seed}-run${plan.index}.log`) } : {}),
    args: [
      '--broker',
      cut.url,
      '--data-dir',
      shared.dataDir,
      '--store',
      storeUrl,
      '--client-id',
      `chaos-cloud-${plan.index}`,
      '--session-expiry',
      String(expiry),
      '--log-level',
      'info',
    ],
  });
  const view = new StoreView(storeUrl);
  // A cloud service that dies by itself is a finding: recorded, then restarted as a supervisor
  // (systemd, Kubernetes) would, so that the run still measures what the broker kept.
  const supervise = async (when: string) => {
    if (cloud.alive || cloud.starts === 0) return;
    const why = cloud
      .tail()
      .split('\n')
      .filter((l) => /Error|error/.test(l))
      .slice(-2)
      .join(' | ');
    problems.push(`the cloud service died by itself ${when} (${cloud.ended}): ${why.slice(0, 600)}`);
    say(`  !! the cloud service died by itself ${when} (${cloud.ended}); restarting it`);
    await cloud.start();
  };
  let sim: Sim | undefined;
  let summary: SimSummary | undefined;
  try {
    await cloud.start();
    sim = new Sim([
      '--broker',
      broker.url,
      '--data-dir',
      shared.dataDir,
      '--devices',
      String(shared.devices),
      '--rate',
      String(shared.rate),
      '--qos',
      '1',
      '--crypto',
      'node',
      '--id-prefix',
      'chaos-',
      '--duration',
      '7200',
      '--json',
    ]);
    const s = sim;
    await until('every device sending and a first payload stored', 180_000, async () => {
      if (s.exited) throw new Error(`the sim exited: ${s.progress}`);
      return s.sending >= shared.devices && ((await view.count()) ?? 0) > 0;
    });
    say(`run ${plan.index} (${plan.store}): fleet sending; faults ${plan.faults.join(', ')}`);

    for (const kind of plan.faults) {
      await sleep(between(rand, 1500, 5000)); // a random moment of the flow
      const rec = await inject(kind, rand, {
        broker,
        cut,
        cloud,
        pg: shared.pg,
        storeDisk,
        mounted,
        pgRestartMode: shared.pgRestartMode,
        pgRestartBlocked: shared.pgRestartBlocked,
        storeUrl,
      });
      if (rec === undefined) {
        skipped.push(kind);
        continue;
      }
      const f: FaultRecord = { run: plan.index, kind, ...rec, recoverMs: null, faultToStoredMs: null };
      faults.push(f);
      // Recovered: the first new payload stored after the heal (bounded generously: devices back off).
      try {
        await until(`a new payload stored after ${kind}`, 150_000, async () => {
          await supervise(`after ${kind}`);
          return (await view.firstNewStoredAfter(f.at, f.healedAt)) !== undefined;
        });
        const first = (await view.firstNewStoredAfter(f.at, f.healedAt))!;
        f.recoverMs = first - f.healedAt;
        f.faultToStoredMs = first - f.at;
      } catch (e) {
        problems.push(`no recovery after ${kind}: ${(e as Error).message}`);
        break;
      }
      say(
        `  ${kind} (${f.detail}): recovered ${f.recoverMs} ms after the heal, ${f.faultToStoredMs} ms after the fault`,
      );
    }
    await sleep(3000); // the flow after the last recovery, so a loss shows as a gap, not a tail
    // Stop the fleet once every device is connected again and its queue is down to what is in
    // flight, so that nearly every message sealed is acknowledged and the comparison is exact.
    await until('every device connected with its queue drained', 120_000, async () => {
      await supervise('at the end of the run');
      if (s.exited) throw new Error(`the sim exited: ${s.progress}`);
      return s.connected >= shared.devices && s.queued <= shared.devices;
    }).catch((e: Error) => problems.push(`${e.message} (${s.progress})`));
    summary = await sim.stop();
    // The cloud commits what the broker still holds for it: wait until every acknowledged message
    // is stored, or the store stopped growing for 30 s (then what is missing is lost; 10 s had been
    // short for a service catching up on a loaded machine).
    let last = -1;
    let still = Date.now();
    await until('the store to settle', 300_000, async () => {
      await supervise('while the store settled');
      const n = (await view.count()) ?? -1;
      if (n !== last) {
        last = n;
        still = Date.now();
      }
      return n >= summary!.acknowledged || Date.now() - still > 30_000;
    });
    await sleep(1000); // anything arriving now would be a duplicate or extra, and is counted
  } catch (e) {
    problems.push((e as Error).message);
    if (sim !== undefined && !sim.exited) summary = await sim.stop().catch(() => undefined);
  }
  await supervise('before the final count').catch(() => {});
  await cloud.stop();
  const facts = await view.facts().catch((e: Error) => {
    problems.push(`store not readable: ${e.message}`);
    return { stored: 0, duplicateKeys: 0, duplicateCopies: 0, gaps: 0, sessions: 0 };
  });
  await view.close();
  cut.close();
  await broker.term();
  if (plan.store === 'postgres' && shared.pg !== undefined) {
    await shared.pg.sql(`DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`).catch(() => {});
    if (mounted) await shared.pg.sql(`DROP TABLESPACE IF EXISTS ${pgTs}`).catch(() => {});
  }
  if (mounted) unmount(storeDisk);
  removeDir(runDir);

  const sim0: SimSummary = summary ?? {
    devices: 0,
    seconds: 0,
    sealed: 0,
    sent: 0,
    acknowledged: 0,
    resent: 0,
    dropped: 0,
    skipped: 0,
    queuedAtStop: 0,
    sessions: 0,
    rekeys: 0,
    reconnects: 0,
    errors: 0,
  };
  const acknowledged = sim0.acknowledged;
  const lost = Math.max(0, acknowledged - facts.stored);
  const extra = Math.max(0, facts.stored - facts.duplicateCopies - sim0.sealed);
  const cloudEvents = Object.fromEntries(cloud.events);
  if (facts.duplicateCopies > 0) problems.push(`${facts.duplicateCopies} duplicate payload(s) in the store`);
  if (extra > 0) problems.push(`${extra} payload(s) stored beyond what the devices sealed`);
  let expectedLoss: string | undefined;
  if (lost > 0) {
    if (lossy) expectedLoss = WHAT_IS_LOST[plan.faults[0] as (typeof LOSSY_KINDS)[number]];
    else problems.push(`${lost} acknowledged message(s) lost although the broker kept its sessions`);
  }
  if (
    lossy &&
    plan.faults[0] !== 'broker-kill9-persist' &&
    faults.length > 0 &&
    !(cloudEvents['mqtt-session-lost'] > 0)
  )
    problems.push(`${plan.faults[0]}: the cloud did not log mqtt-session-lost (a loss must not be silent)`);
  return {
    run: plan.index,
    store: plan.store,
    lossy,
    faults,
    sim: sim0,
    acknowledged,
    stored: facts.stored,
    lost,
    inFlightAtStop: sim0.queuedAtStop,
    duplicated: facts.duplicateCopies,
    duplicateKeys: facts.duplicateKeys,
    extra,
    gaps: facts.gaps,
    cloudEvents,
    cloudStarts: cloud.starts,
    seconds: Math.round((Date.now() - began) / 100) / 10,
    problems,
    ...(expectedLoss === undefined ? {} : { expectedLoss }),
    ...(skipped.length === 0 ? {} : { skipped }),
  };
}

interface Parts {
  broker: Broker;
  cut: Cut;
  cloud: Cloud;
  pg: Postgres | undefined;
  storeDisk: string;
  mounted: boolean;
  pgRestartMode: 'fast' | 'immediate' | undefined;
  pgRestartBlocked: boolean;
  storeUrl: string;
}

/** Injects one fault, holds it, heals it; undefined when it cannot run here. */
async function inject(
  kind: FaultKind,
  rand: () => number,
  p: Parts,
): Promise<{ detail: string; at: number; healedAt: number; note?: string } | undefined> {
  const at = Date.now();
  switch (kind) {
    case 'cloud-kill9': {
      const down = between(rand, 0, 2000);
      await p.cloud.kill9();
      await sleep(down);
      const healedAt = Date.now();
      await p.cloud.start();
      return { detail: `SIGKILL, restarted after ${down} ms`, at, healedAt };
    }
    case 'cloud-disconnect': {
      const away = between(rand, 2000, 6000);
      p.cut.cut();
      await sleep(away);
      p.cut.heal();
      return { detail: `connection dropped for ${away} ms (session expiry 1 day)`, at, healedAt: Date.now() };
    }
    case 'session-expiry': {
      const away = between(rand, 6000, 10_000);
      p.cut.cut();
      await sleep(away);
      p.cut.heal();
      return { detail: `connection dropped for ${away} ms, session expiry 2 s`, at, healedAt: Date.now() };
    }
    case 'broker-term':
    case 'broker-kill9-persist':
    case 'broker-kill9-nopersist': {
      const down = between(rand, 500, 3000);
      if (kind === 'broker-term') await p.broker.term();
      else await p.broker.kill9();
      await sleep(down);
      const healedAt = Date.now();
      await p.broker.start();
      const how = kind === 'broker-term' ? 'SIGTERM (persistence written)' : 'SIGKILL';
      const persist = p.broker.options.persistence ? 'persistence on, autosave 2 s' : 'persistence off';
      return { detail: `${how}, ${persist}, down ${down} ms`, at, healedAt };
    }
    case 'pg-restart': {
      if (p.pg === undefined) return undefined;
      const coin = rand() < 0.5 ? 'fast' : 'immediate';
      const mode = p.pgRestartMode ?? coin;
      const down = between(rand, 500, 4000);
      let blocked = '';
      if (p.pgRestartBlocked) {
        const locker = new pg.Client({ connectionString: p.storeUrl });
        locker.on('error', () => {}); // the shutdown ends this session too
        await locker.connect();
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE payloads IN EXCLUSIVE MODE');
        await sleep(1000); // the service's next commit now waits for the lock
        blocked = ', while a commit waited on a table lock';
      }
      await p.pg.stop(mode);
      await sleep(down);
      const healedAt = Date.now();
      await p.pg.start();
      return { detail: `${mode} shutdown${blocked}, down ${down} ms`, at, healedAt };
    }
    case 'disk-full': {
      if (!p.mounted) return undefined;
      const hold = between(rand, 3000, 8000);
      const filler = fillDisk(p.storeDisk);
      await sleep(hold);
      freeDisk(filler);
      return { detail: `store's tmpfs full for ${hold} ms`, at, healedAt: Date.now() };
    }
    case 'slow-store': {
      const delay = between(rand, 200, 800);
      const hold = between(rand, 4000, 8000);
      p.cloud.slow(delay);
      await sleep(hold);
      p.cloud.slow(0);
      return { detail: `every commit delayed ${delay} ms for ${hold} ms`, at, healedAt: Date.now() };
    }
  }
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const say = options.say ?? (() => {});
  const rand = prng(options.seed);
  const base = mkdtempSync(join(tmpdir(), 'cose-flow-chaos-'));
  chmodSync(base, 0o711); // PostgreSQL runs as its own user and must reach its directory inside
  const dataDir = join(base, 'data');
  const quiet = { stdout: () => {}, stderr: (t: string) => say(t.trimEnd()), stdin: async function* () {} };
  if ((await cli(['ca', 'init', '--data-dir', dataDir], quiet)) !== 0) throw new Error('ca init failed');
  if ((await cli(['cloud', 'keygen', '--data-dir', dataDir], quiet)) !== 0) throw new Error('cloud keygen failed');
  const shared: Shared = {
    base,
    dataDir,
    pg: undefined,
    noTmpfs: undefined,
    devices: options.devices ?? 4,
    rate: options.rate ?? 4,
    pgRestartMode: options.pgRestartMode,
    pgRestartBlocked: options.pgRestartBlocked ?? false,
    seed: options.seed,
    say,
  };
  const runs: RunResult[] = [];
  const skippedKinds = new Set<FaultKind>();
  try {
    // Probe the mount once, so that the plan knows whether disk-full can run.
    const probe = join(base, 'probe');
    const refused = mountTmpfs(probe, 1);
    if (refused === undefined) unmount(probe);
    else {
      shared.noTmpfs = refused;
      skippedKinds.add('disk-full');
      say(
        `!!!!!!!!!! WARNING: mount -t tmpfs is not permitted here (${refused}): disk-full faults are SKIPPED !!!!!!!!!!`,
      );
    }
    const plans: RunPlan[] = options.plans ?? (options.mode === 'ci' ? ciPlan(rand, shared.noTmpfs === undefined) : []);
    const deadline = Date.now() + (options.minutes ?? 10) * 60_000;
    for (let i = 0; ; i++) {
      let plan: RunPlan;
      if (options.mode === 'ci' || options.plans !== undefined) {
        if (i >= plans.length) break;
        plan = plans[i]!;
      } else {
        if (Date.now() > deadline) break;
        plan = longRun(rand, i + 1, shared.noTmpfs === undefined);
      }
      if (plan.store === 'postgres' && shared.pg === undefined) shared.pg = await Postgres.start(join(base, 'pg'));
      const r = await runOne(plan, rand, shared);
      for (const k of r.skipped ?? []) skippedKinds.add(k as FaultKind);
      runs.push(r);
      options.onRun?.(r);
    }
  } finally {
    await shared.pg?.stop('fast');
    removeDir(base);
  }
  return { seed: options.seed, mode: options.mode, runs, tmpfs: shared.noTmpfs, skippedKinds: [...skippedKinds] };
}

// ---------------------------------------------------------------------------------------------
// Figures

export interface KindFigures {
  kind: FaultKind;
  injected: number;
  recovered: number;
  recoverMsMedian: number | null;
  recoverMsMax: number | null;
  faultToStoredMsMedian: number | null;
  faultToStoredMsMax: number | null;
}

export interface Figures {
  seed: number;
  runs: number;
  runsSqlite: number;
  runsPostgres: number;
  faults: number;
  acknowledged: number;
  stored: number;
  lostInLosslessRuns: number;
  lostInLossyRuns: number;
  duplicated: number;
  extra: number;
  problems: number;
  byKind: KindFigures[];
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

export function figures(c: CampaignResult): Figures {
  const all = c.runs.flatMap((r) => r.faults);
  const byKind: KindFigures[] = [...LOSSLESS_KINDS, ...LOSSY_KINDS].map((kind) => {
    const fs = all.filter((f) => f.kind === kind);
    const rec = fs.filter((f) => f.recoverMs !== null).map((f) => f.recoverMs!);
    const f2s = fs.filter((f) => f.faultToStoredMs !== null).map((f) => f.faultToStoredMs!);
    return {
      kind,
      injected: fs.length,
      recovered: rec.length,
      recoverMsMedian: median(rec),
      recoverMsMax: rec.length ? Math.max(...rec) : null,
      faultToStoredMsMedian: median(f2s),
      faultToStoredMsMax: f2s.length ? Math.max(...f2s) : null,
    };
  });
  const sum = (f: (r: RunResult) => number, runs = c.runs) => runs.reduce((a, r) => a + f(r), 0);
  return {
    seed: c.seed,
    runs: c.runs.length,
    runsSqlite: c.runs.filter((r) => r.store === 'sqlite').length,
    runsPostgres: c.runs.filter((r) => r.store === 'postgres').length,
    faults: all.length,
    acknowledged: sum((r) => r.acknowledged),
    stored: sum((r) => r.stored),
    lostInLosslessRuns: sum(
      (r) => r.lost,
      c.runs.filter((r) => !r.lossy),
    ),
    lostInLossyRuns: sum(
      (r) => r.lost,
      c.runs.filter((r) => r.lossy),
    ),
    duplicated: sum((r) => r.duplicated),
    extra: sum((r) => r.extra),
    problems: sum((r) => r.problems.length),
    byKind,
  };
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

export function table(c: CampaignResult): string {
  const f = figures(c);
  const lines = [
    `runs ${f.runs} (sqlite ${f.runsSqlite}, postgres ${f.runsPostgres}) · faults ${f.faults} · acknowledged ${f.acknowledged} · stored ${f.stored}` +
      ` · lost ${f.lostInLosslessRuns} where the broker kept the messages, ${f.lostInLossyRuns} in lossy runs (expected) · duplicated ${f.duplicated} · problems ${f.problems}`,
    '',
    'run store     faults                                                   acked  stored  lost  dup  gaps  inflight  s',
  ];
  for (const r of c.runs) {
    lines.push(
      `${pad(r.run, 3)} ${r.store.padEnd(9)} ${r.faults
        .map((x) => x.kind)
        .join(',')
        .slice(0, 56)
        .padEnd(
          56,
        )} ${pad(r.acknowledged, 6)} ${pad(r.stored, 7)} ${pad(r.lost, 5)} ${pad(r.duplicated, 4)} ${pad(r.gaps, 5)} ${pad(r.inFlightAtStop, 9)} ${pad(r.seconds, 4)}` +
        (r.lost > 0 && r.lossy ? '  (expected)' : '') +
        (r.problems.length > 0 ? `  PROBLEM: ${r.problems.join('; ')}` : ''),
    );
  }
  lines.push(
    '',
    'fault kind               injected  recovered  heal→stored ms (median / max)  fault→stored ms (median / max)',
  );
  for (const k of f.byKind) {
    lines.push(
      `${k.kind.padEnd(24)} ${pad(k.injected, 8)} ${pad(k.recovered, 10)}  ${pad(k.recoverMsMedian ?? '-', 14)} / ${pad(k.recoverMsMax ?? '-', 6)}  ${pad(k.faultToStoredMsMedian ?? '-', 16)} / ${pad(k.faultToStoredMsMax ?? '-', 6)}`,
    );
  }
  if (c.skippedKinds.length > 0)
    lines.push('', `SKIPPED fault kinds: ${c.skippedKinds.join(', ')}${c.tmpfs ? ` (mount: ${c.tmpfs})` : ''}`);
  return lines.join('\n');
}
