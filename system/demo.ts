/**
 * The whole system in one process, for `cose-flow demo` (npm start): an MQTT broker (embedded
 * aedes on 127.0.0.1, or the one given), the CA, cloud key and certificates in the data directory
 * (made on the first run, reused after: the layout a real deployment uses), the cloud service on
 * its store with the live dashboard, N simulated devices (the firmware's application on Node) that
 * enroll and send readings, and, on request, the attacker of system/attacker.ts.
 *
 * It also keeps a ledger: what every device sealed and had acknowledged, and what the service
 * delivered. `stop()` drains the devices, waits for the service, and checks the ledger against the
 * rows the store committed during this run: every acknowledged QoS 1 message stored exactly once,
 * nothing stored that no device sent. Rows from earlier runs never count, whatever their kid and seq.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { LiveSnapshot } from '../cloud/dashboard/live-state.js';
import { openDataDir, PRIVATE_DIR_MODE, SECRET_MODE } from '../cloud/pki/data-dir.js';
import { readCertificates } from '../cloud/pki/files.js';
import { createLogger } from '../cloud/service/log.js';
import { type CloudService, startCloudService } from '../cloud/service/service.js';
import type { StoredPayload } from '../cloud/store/store.js';
import { jsonLogger } from '../host-sim/log.js';
import type { CryptoChoice } from '../host-sim/platform.js';
import { nodeCrypto } from '../node/crypto.js';
import { redactUrl } from '../node/redact-url.js';
import { Sleeper } from '../node/sleeper.js';
import { toHex } from '../src/bytes.js';
import type { DeviceEvent } from '../src/device/app.js';
import type { Logger } from '../src/platform/log.js';
import { encodeKid } from '../src/profile/counter.js';
import { Attacker, type AttackKind, type AttackReport } from './attacker.js';
import { type EmbeddedBroker, startEmbeddedBroker } from './broker.js';
import { ensureCa, type Fleet, type FleetTotals, startFleet } from './fleet.js';

export const DEFAULT_DASHBOARD_PORT = 8080;

export interface DemoOptions {
  dataDir: string;
  devices: number;
  rate: number;
  qos: 0 | 1;
  /** An external broker; default: the embedded one. */
  broker?: string;
  /** Port of the embedded broker (default any free port). */
  mqttPort?: number;
  /** sqlite:FILE or postgres://… (default sqlite:DATA_DIR/cose-flow.db). */
  store?: string;
  /** Topic prefix of every part (default cose-flow/v1): keeps the demo apart on a shared broker. */
  prefix?: string;
  /** The dashboard; undefined: no dashboard. Port DEFAULT_DASHBOARD_PORT falls back to a free one when taken. */
  http?: { host: string; port: number };
  crypto?: CryptoChoice;
  note?: (line: string) => void;
}

export interface DeviceLedger {
  deviceId: string;
  /** Kids (hex) of the sessions the device started in this run. */
  kids: string[];
  sealed: number;
  acknowledged: number;
  /** Acknowledged QoS 1 messages found in the store once / not at all. */
  stored: number;
  missing: number;
}

export interface DemoSummary {
  seconds: number;
  broker: string;
  store: string;
  qos: 0 | 1;
  devices: DeviceLedger[];
  totals: FleetTotals;
  /** Payloads the service delivered in this run, and those delivered more than once. */
  delivered: number;
  deliveredTwice: number;
  /** Payloads of this run's sessions in the store that no device sealed (an attacker's success). */
  unexpected: number;
  /** Every device started a session that the cloud stored. */
  allSessions: boolean;
  /** QoS 1: every acknowledged message stored exactly once and nothing else stored. */
  exactlyOnce: boolean;
  duplicates: number;
  rejected: Record<string, number>;
  attack: AttackReport | null;
  latency: LiveSnapshot['latency'];
  /** Devices that had messages left in their queue when the drain timed out. */
  undrained: number;
}

export interface DemoSystem {
  /** SHA-256 of the CA certificate (hex): what a device can pin, shown on the screen. */
  readonly caFingerprint: string;
  readonly brokerUrl: string;
  readonly embeddedBroker: boolean;
  readonly storeUrl: string;
  /** http://host:port/ of the dashboard, when served. */
  readonly dashboardUrl: string | undefined;
  readonly logFiles: { cloud: string; devices: string };
  readonly service: CloudService;
  readonly fleet: Fleet;
  snapshot(): LiveSnapshot;
  /** One attack round (starts the attacker on first use). */
  attack(): Promise<Partial<Record<AttackKind, number>>>;
  stop(options?: DemoStopOptions): Promise<DemoSummary>;
}

export interface DemoStopOptions {
  /** How long the devices may take to send what they have queued (default 5000 ms). */
  drainMs?: number;
  /**
   * How long the service may take to receive what the broker acknowledged to the devices (default
   * DEFAULT_SETTLE_MS): the check waits for those messages, not for a fixed time.
   */
  settleMs?: number;
}

/**
 * The bound on waiting for messages the broker acknowledged to reach the service. They arrive in
 * milliseconds; on a loaded machine, with a broker in another process, later: the wait ends as
 * soon as they are in, and only a message that never comes waits this long (then it is reported).
 */
export const DEFAULT_SETTLE_MS = 30_000;

export interface Ledger {
  kids: Set<string>;
  sealed: Set<string>;
  acknowledged: Set<string>;
}

export const ledgerKey = (kidHex: string, seq: number) => `${kidHex}/${seq}`;

/**
 * How often each (kid, seq) the devices of `ledgers` sealed in this run's sessions is in `rows`,
 * per device, and how many rows of those sessions no device sealed. Only rows the store committed
 * at or after `since` (this run's start) count: a store kept from an earlier run — a PostgreSQL URL
 * outlives a deleted data directory — can hold rows with the same device, kid and seq.
 */
export function countStored(
  ledgers: ReadonlyMap<string, Ledger>,
  rows: readonly StoredPayload[],
  since: number,
): { per: Map<string, Map<string, number>>; unexpected: number } {
  const per = new Map<string, Map<string, number>>();
  for (const deviceId of ledgers.keys()) per.set(deviceId, new Map());
  let unexpected = 0;
  for (const p of rows) {
    const l = ledgers.get(p.deviceId);
    if (l === undefined || p.storedAt < since) continue;
    const kidHex = toHex(p.kid);
    if (!l.kids.has(kidHex)) continue;
    const k = ledgerKey(kidHex, p.seq);
    const counts = per.get(p.deviceId)!;
    counts.set(k, (counts.get(k) ?? 0) + 1);
    if (!l.sealed.has(k)) unexpected++;
  }
  return { per, unexpected };
}

/** `preferred` when it can be listened on now, else 0 (any free port). */
async function portOrAny(host: string, preferred: number): Promise<number> {
  if (preferred === 0) return 0;
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(0));
    probe.listen(preferred, host, () => probe.close(() => resolve(preferred)));
  });
}

export async function startDemoSystem(options: DemoOptions): Promise<DemoSystem> {
  const note = options.note ?? (() => {});
  const began = Date.now();
  const crypto = nodeCrypto();
  await ensureCa(options.dataDir, note);
  const logDir = join(options.dataDir, 'logs');
  mkdirSync(logDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const logFiles = { cloud: join(logDir, 'cloud.log'), devices: join(logDir, 'devices.log') };
  const streams: WriteStream[] = [];
  const stopAll: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const fn of stopAll.splice(0).reverse()) await fn().catch(() => {});
  };

  try {
    let broker: EmbeddedBroker | undefined;
    if (options.broker === undefined) {
      broker = await startEmbeddedBroker(options.mqttPort === undefined ? {} : { port: options.mqttPort });
      const b = broker;
      stopAll.push(() => b.close());
    }
    const brokerUrl = options.broker ?? broker!.url;
    const storeUrl = options.store ?? `sqlite:${join(options.dataDir, 'cose-flow.db')}`;

    const ledgers = new Map<string, Ledger>();
    const ledger = (deviceId: string): Ledger => {
      let l = ledgers.get(deviceId);
      if (l === undefined) {
        l = { kids: new Set(), sealed: new Set(), acknowledged: new Set() };
        ledgers.set(deviceId, l);
      }
      return l;
    };
    const delivered = new Map<string, number>();
    // A device's acknowledgement comes from the broker, which still has to pass the message on to
    // the service: what the broker acknowledged (QoS 1 data, key messages) and the service has not
    // stored yet is awaited at the stop, so that the check reads the store once it has arrived.
    const storedSessions = new Set<string>();
    const awaitedData = new Set<string>();
    const awaitedSessions = new Set<string>();
    const arrived = new Sleeper();

    // The attacker listens from the start (it can only replay what it has seen) and injects
    // nothing until asked.
    const attacker = await Attacker.start({
      broker: brokerUrl,
      cloudCertificate: readCertificates(openDataDir(options.dataDir).cloudCertificate)[0]!,
      crypto,
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    });
    stopAll.push(() => attacker.close());
    let attacks = 0;
    const attack = () => {
      attacks++;
      return attacker.round();
    };

    const cloudLog = createWriteStream(logFiles.cloud, { flags: 'a', mode: SECRET_MODE });
    streams.push(cloudLog);
    const http =
      options.http === undefined
        ? undefined
        : {
            host: options.http.host,
            port:
              options.http.port === DEFAULT_DASHBOARD_PORT
                ? await portOrAny(options.http.host, DEFAULT_DASHBOARD_PORT)
                : options.http.port,
            attack: async () => (await attack()) as Record<string, number>,
          };
    const service = await startCloudService({
      brokerUrl,
      dataDir: options.dataDir,
      store: storeUrl,
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      logger: createLogger({ destination: cloudLog }),
      ...(http === undefined ? {} : { http }),
      // Both after the store committed (a payload: before its ack).
      onPayload: (p) => {
        const k = `${p.deviceId}|${ledgerKey(p.kidHex, p.seq)}`;
        delivered.set(k, (delivered.get(k) ?? 0) + 1);
        if (awaitedData.delete(k)) arrived.wake();
      },
      onEvent: (e) => {
        if (e.type === 'session') {
          const k = `${e.deviceId}|${e.kidHex}`;
          storedSessions.add(k);
          if (awaitedSessions.delete(k)) arrived.wake();
          return;
        }
        // Refused or a duplicate: it has arrived, and is not stored by this run (the check says so).
        if (e.deviceId === undefined || e.kidHex === undefined) return;
        const done =
          e.kind === 'session'
            ? awaitedSessions.delete(`${e.deviceId}|${e.kidHex}`)
            : e.kind === 'data' &&
              e.seq !== undefined &&
              awaitedData.delete(`${e.deviceId}|${ledgerKey(e.kidHex, e.seq)}`);
        if (done) arrived.wake();
      },
    });
    stopAll.push(() => service.stop());
    service.live.setExtra(() => ({
      demo: {
        broker: redactUrl(brokerUrl),
        store: redactUrl(storeUrl),
        devices: options.devices,
        rate: options.rate,
        qos: options.qos,
      },
      attack: attacker.report(),
    }));

    const deviceLog = createWriteStream(logFiles.devices, { flags: 'a', mode: SECRET_MODE });
    streams.push(deviceLog);
    const onEvent = (deviceId: string, event: DeviceEvent) => {
      if (event.type === 'session') ledger(deviceId).kids.add(toHex(encodeKid(event.kid)));
      else if (event.type === 'sealed') ledger(deviceId).sealed.add(ledgerKey(toHex(encodeKid(event.kid)), event.seq));
      else if (event.type === 'acknowledged') {
        const key = ledgerKey(toHex(encodeKid(event.kid)), event.seq);
        ledger(deviceId).acknowledged.add(key);
        // QoS 0: at most once, nothing to wait for (the broker did not acknowledge it).
        const k = `${deviceId}|${key}`;
        if (options.qos === 1 && !delivered.has(k)) awaitedData.add(k);
      } else if (event.type === 'key-acked') {
        const k = `${deviceId}|${toHex(encodeKid(event.kid))}`;
        if (!storedSessions.has(k)) awaitedSessions.add(k);
      }
    };
    // Device errors go to the log file and, once per device and kind, to the operator: a device
    // that cannot enroll (say, its id is bound to another key) must not fail silently.
    const fileLog = jsonLogger((line) => deviceLog.write(line), 'info');
    const told = new Set<string>();
    const deviceLogger: Logger = {
      log(level, event, fields = {}) {
        fileLog.log(level, event, fields);
        if (level !== 'error') return;
        const key = `${String(fields.device)}\u0000${event}`;
        if (told.has(key) || told.size > 100) return;
        told.add(key);
        note(`device ${String(fields.device)}: ${event}: ${String(fields.error ?? '')}`);
      },
    };
    const fleet = await startFleet({
      broker: brokerUrl,
      dataDir: options.dataDir,
      devices: options.devices,
      rate: options.rate,
      qos: options.qos,
      crypto: options.crypto ?? 'noble',
      log: deviceLogger,
      note,
      onEvent,
      ...(options.prefix === undefined ? {} : { config: { prefix: options.prefix } }),
    });
    stopAll.push(async () => {
      await fleet.stop();
    });

    /** This run's rows of every device that started a session, from the store. */
    const rowsOfThisRun = async (): Promise<StoredPayload[]> => {
      const rows: StoredPayload[] = [];
      for (const [deviceId, l] of ledgers) {
        if (l.kids.size === 0) continue;
        for (let after = 0; ; ) {
          const page = await service.store.listPayloads({ deviceId, after, limit: 10_000 });
          rows.push(...page);
          if (page.length < 10_000) break;
          after = page[page.length - 1]!.id;
        }
      }
      return rows;
    };

    /** Resolves true once nothing the broker acknowledged is awaited, false after `timeoutMs`. */
    const settle = async (timeoutMs: number): Promise<boolean> => {
      const deadline = Date.now() + timeoutMs;
      while (awaitedData.size > 0 || awaitedSessions.size > 0) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await arrived.sleep(left);
      }
      return true;
    };

    let stopping: Promise<DemoSummary> | undefined;
    const stop = async (stopOptions: DemoStopOptions = {}): Promise<DemoSummary> => {
      const drainMs = stopOptions.drainMs ?? 5000;
      const settleMs = stopOptions.settleMs ?? DEFAULT_SETTLE_MS;
      await fleet.started;
      const totals = await fleet.stop({ drainMs });
      const left = fleet.devices.filter((d) => d.app.queued > 0).length;
      if (!(await settle(settleMs)))
        note(
          `after ${settleMs / 1000} s the service still had not received ${awaitedData.size} data message(s) ` +
            `and ${awaitedSessions.size} key message(s) the broker had acknowledged`,
        );
      await service.idle();
      // Data held for a key message still on its way gets a moment to arrive.
      for (let i = 0; i < 50 && service.pendingCount() > 0; i++) await new Promise((r) => setTimeout(r, 100));
      const { per, unexpected } = countStored(ledgers, await rowsOfThisRun(), began);
      const snapshot = service.live.snapshot();
      const attackReport = attacks > 0 ? attacker.report() : null;
      await cleanUp();
      for (const s of streams) s.end();
      const devices: DeviceLedger[] = fleet.devices.map(({ deviceId }) => {
        const l = ledger(deviceId);
        const counts = per.get(deviceId) ?? new Map<string, number>();
        let stored = 0;
        let missing = 0;
        for (const k of l.acknowledged) {
          if ((counts.get(k) ?? 0) >= 1) stored++;
          else missing++;
        }
        return {
          deviceId,
          kids: [...l.kids],
          sealed: l.sealed.size,
          acknowledged: l.acknowledged.size,
          stored,
          missing,
        };
      });
      let storedTwice = 0;
      for (const counts of per.values()) for (const n of counts.values()) if (n > 1) storedTwice++;
      let deliveredTwice = 0;
      for (const n of delivered.values()) if (n > 1) deliveredTwice++;
      const sessionsStored = new Set(snapshot.devices.filter((d) => d.sessions > 0).map((d) => d.deviceId));
      const allSessions = devices.every((d) => d.kids.length > 0 && sessionsStored.has(d.deviceId));
      const missing = devices.reduce((n, d) => n + d.missing, 0);
      return {
        seconds: Math.round((Date.now() - began) / 100) / 10,
        broker: redactUrl(brokerUrl),
        store: redactUrl(storeUrl),
        qos: options.qos,
        devices,
        totals,
        delivered: delivered.size,
        deliveredTwice,
        unexpected,
        allSessions,
        exactlyOnce:
          storedTwice === 0 && deliveredTwice === 0 && unexpected === 0 && (options.qos === 0 || missing === 0),
        duplicates: snapshot.totals.duplicates,
        rejected: snapshot.rejections,
        attack: attackReport,
        latency: snapshot.latency,
        undrained: left,
      };
    };

    return {
      caFingerprint: toHex(crypto.sha256(readCertificates(openDataDir(options.dataDir).caCertificate)[0]!)),
      brokerUrl,
      embeddedBroker: broker !== undefined,
      storeUrl,
      dashboardUrl: service.http === undefined ? undefined : `${service.http.url}/`,
      logFiles,
      service,
      fleet,
      snapshot: () => service.live.snapshot(),
      attack,
      stop: (o) => {
        stopping ??= stop(o);
        return stopping;
      },
    };
  } catch (e) {
    await cleanUp();
    for (const s of streams) s.end();
    throw e;
  }
}
