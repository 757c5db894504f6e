/**
 * `startCloudService(options)`: the cloud service as a library — the consumer that takes every
 * device's messages from an MQTT broker and delivers each data payload, verified and decrypted,
 * exactly once to the store and to the registered handlers. `cose-flow cloud run` is this plus
 * flag parsing (cli/cloud.ts); docs/CLOUD.md describes the behaviour and the operations side.
 *
 *   const service = await startCloudService({ brokerUrl: 'mqtt://127.0.0.1:1883', dataDir: 'data' });
 *   service.onPayload(async (p) => console.log(p.deviceId, p.seq, p.payload));
 *   …
 *   await service.stop();   // stop consuming, finish in-flight commits and acks, disconnect
 *
 * The data directory is the CA's (cloud/pki/data-dir.ts): trust anchors (ca.pem), cloud keys
 * (cloud.key and cloud-keys/retired/*), revocations (revoked.json), plus the service's storage
 * key (storage.key) and, by default, its SQLite store (cose-flow.db).
 *
 * The start composes parts, each built by one function: the checked settings; the trust
 * (trust.ts: storage key, CA, revocations) and the cloud key ring (CloudKeyRing, reloaded when the
 * keys change); the store; the observers (observers.ts) with the cloud key tracker and the
 * dashboard plugged in (cloud/dashboard/plugin.ts); the --out file; the broker consumer; the
 * message path (pipeline.ts: sessions, pending buffer, commit queue, re-key requests, receiver);
 * the metrics' gauges; the HTTP endpoint, which mounts the dashboard's routes. `stop()` is
 * shutdown.ts's `stopService`, run once.
 */

import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { nodeCrypto } from '../../node/crypto.js';
import { redactUrl } from '../../node/redact-url.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PREFIX } from '../../src/profile/limits.js';
import { checkPrefix, topicFilter } from '../../src/profile/topics.js';
import type { LiveState } from '../dashboard/live-state.js';
import { type DashboardPlugin, dashboardPlugin } from '../dashboard/plugin.js';
import { type HealthReport, type HttpEndpoint, startHttpEndpoint } from '../http/server.js';
import { MqttConsumer, type MqttConsumerOptions } from '../mqtt/consumer.js';
import { CloudKeyRing } from '../pki/cloud-keys.js';
import { type DataDir, openDataDir } from '../pki/data-dir.js';
import { DEFAULT_WINDOW_SIZE } from '../session/replay-window.js';
import { openStore } from '../store/index.js';
import type { SessionGrace, Store } from '../store/store.js';
import type { ServiceEventHandler } from '../telemetry/events.js';
import type { AdmissionLimits } from './admission.js';
import { CloudKeyTracker, cloudKeyRows } from './cloud-key-tracker.js';
import {
  DEFAULT_RECEIVE_MAXIMUM,
  DEFAULT_SESSION_EXPIRY_SECONDS,
  DEFAULT_SHARED_WINDOW_SIZE,
  DEFAULT_STORE_FILE,
} from './defaults.js';
import { createLogger, type Logger } from './log.js';
import { CONTENT_TYPE, ServiceMetrics } from './metrics.js';
import { type PayloadHandler, ServiceObservers } from './observers.js';
import { OutFile } from './out-file.js';
import type { PendingLimits } from './pending-buffer.js';
import { buildPipeline, type Pipeline } from './pipeline.js';
import { Once, stopService, Teardown } from './shutdown.js';
import { keyMessageOpener, loadTrust, type Trust } from './trust.js';

export type { PayloadHandler } from './observers.js';

/** How often the service looks whether its cloud keys changed on disk (rotation, retirement, deadline). */
const CLOUD_KEY_CHECK_MS = 1000;

export interface CloudServiceOptions {
  /** mqtt://[user:password@]host[:port] or mqtts://… */
  brokerUrl: string;
  /** The CA data directory (ca.pem, cloud keys, revoked.json; storage.key and the default store). */
  dataDir: string;
  /** sqlite:FILE, postgres://…, or an open Store (not closed by stop()). Default sqlite:DATA_DIR/cose-flow.db. */
  store?: string | Store;
  /** Append every stored payload as a JSON line to this file (docs/CLOUD.md). */
  out?: string;
  /**
   * Serve /metrics, /health and the live dashboard (/; port 0: any free port). `dashboard: false`
   * leaves the page out; `attack` is the demo's action behind the page's attack button.
   */
  http?: {
    port: number;
    host?: string;
    dashboard?: boolean;
    attack?: () => Promise<Record<string, number>>;
  };
  /** Topic prefix (default cose-flow/v1). */
  prefix?: string;
  /** MQTT 5 shared subscription group: N instances with the same group split the messages. */
  shareGroup?: string;
  /** Stable per instance (the broker keeps the session under it). Default derived from host name and data directory. */
  clientId?: string;
  mqtt?: Partial<
    Pick<
      MqttConsumerOptions,
      | 'protocolVersion'
      | 'sessionExpirySeconds'
      | 'keepaliveSeconds'
      | 'receiveMaximum'
      | 'username'
      | 'password'
      | 'tls'
    >
  >;
  /** The at-rest key for session keys: bytes, a hex string (COSE_FLOW_STORAGE_KEY) or a file. */
  storageKey?: Uint8Array;
  storageKeyHex?: string;
  storageKeyFile?: string;
  /** CA certificate files trusted for device certificates (default DATA_DIR/ca.pem). */
  trustAnchors?: string[];
  /** Replay window size W (default 64; 1024 with a shared subscription). */
  windowSize?: number;
  /** Larger messages are refused as too-large (default 65 536). */
  maxMessageBytes?: number;
  /** Most payloads per store transaction (default 1000). */
  maxBatch?: number;
  pending?: PendingLimits;
  /** Per-device key-message rates and session / payload-byte quotas (cloud/service/admission.ts). */
  admission?: Partial<AdmissionLimits>;
  /** At most one re-key request per device per this many ms (default 60 000). */
  rekeyIntervalMs?: number;
  /**
   * How long (ms) and for how many more payloads a session stays open once a newer kid of its
   * device is stored (default 120 000 ms and 1000; PROTOCOL.md §6.1). Applies to a store opened
   * from a URL; an open Store keeps its own.
   */
  sessionGrace?: Partial<SessionGrace>;
  logger?: Logger;
  crypto?: CryptoProvider;
  /** How long stop() waits for in-flight work before giving up on it (default 10 000 ms). */
  shutdownTimeoutMs?: number;
  /** The clock for certificate validity (tests). */
  certificateTime?: () => Date;
  /**
   * Payload handlers from the first message on. (Messages queued in the broker arrive as soon as
   * the service connects: a handler added with `onPayload` after the start misses those.)
   */
  onPayload?: PayloadHandler | PayloadHandler[];
  /** Event handlers (sessions stored, refusals, duplicates) from the first message on. */
  onEvent?: ServiceEventHandler;
}

export interface CloudService {
  readonly store: Store;
  readonly metrics: ServiceMetrics;
  readonly clientId: string;
  /** The /metrics and /health endpoint, when `http` was given. */
  readonly http: HttpEndpoint | undefined;
  /** What the dashboard shows (also when only the terminal shows it): fed from the first message. */
  readonly live: LiveState;
  /** The --out file, when `out` was given. */
  readonly outFile: OutFile | undefined;
  readonly logger: Logger;
  /**
   * Calls `handler` for each payload this instance stores from now on, after the commit and before
   * the ack. To see the messages the broker queued while the service was away, pass handlers in
   * the `onPayload` option instead.
   */
  onPayload(handler: PayloadHandler): () => void;
  /** Calls `handler` for each session stored, message refused and duplicate from now on. */
  onEvent(handler: ServiceEventHandler): () => void;
  health(): HealthReport;
  /** Resolves when no message is being handled (messages waiting for their key message aside). */
  idle(): Promise<void>;
  /** Data messages waiting for their key message. */
  pendingCount(): number;
  stop(): Promise<void>;
}

/** The default client id: stable for one data directory on one host. */
export function defaultClientId(dataDir: string, shareGroup?: string): string {
  const h = createHash('sha256')
    .update(`${hostname()}\u0000${resolve(dataDir)}\u0000${shareGroup ?? ''}`)
    .digest('hex')
    .slice(0, 12);
  return `cose-flow-cloud-${h}`;
}

export async function startCloudService(options: CloudServiceOptions): Promise<CloudService> {
  const settings = serviceSettings(options);
  const { crypto, log } = settings;
  // Keys and trust, before anything connects: a configuration problem stops the start.
  const trust = loadTrust(crypto, settings.dataDir, options, log);
  const keys = cloudKeyRing(settings);
  const teardown = new Teardown();
  try {
    const storage = await openServiceStore(options, settings);
    teardown.defer(() => storage.close());
    const metrics = new ServiceMetrics();
    const { observers, tracker, dashboard } = serviceObservers(options, log, keys, metrics);
    const outFile = options.out === undefined ? undefined : openOutFile(storage.store, options.out, log);
    if (outFile !== undefined) teardown.defer(() => outFile.close());
    const consumer = brokerConsumer(options, settings);
    const pipeline = buildPipeline({
      ...pipelineOptions(options, settings),
      store: storage.store,
      trust,
      keys,
      tracker,
      openKeyMessage: keyMessageOpener(crypto, keys, trust, settings.maxMessageBytes),
      observers,
      metrics,
      consumer,
      ...(outFile === undefined ? {} : { onAccepted: () => outFile.kick() }),
    });
    metrics.watch(metricSources(pipeline, consumer, storage.store));
    const sweeper = setInterval(() => void pipeline.receiver.sweep(), 100);
    teardown.defer(() => clearInterval(sweeper));
    const timeoutMs = options.shutdownTimeoutMs ?? 10_000;
    const stopper = new Once(() => stopService({ log, timeoutMs, pipeline, consumer, metrics, sweeper, teardown }));
    const health = healthReport({ settings, pipeline, consumer, metrics, store: storage.store, stopper });
    const http = options.http === undefined ? undefined : await serveHttp(options.http, metrics, health, dashboard);
    if (http !== undefined)
      teardown.defer(async () => {
        dashboard.close();
        await http.close();
      });
    keys.watch(CLOUD_KEY_CHECK_MS);
    teardown.defer(() => keys.close());
    await consumer.start((message) => pipeline.receiver.handle(message));
    logStarted(settings, options, { storage, consumer, http, trust, keys });
    return {
      store: storage.store,
      metrics,
      clientId: settings.clientId,
      http,
      outFile,
      live: dashboard.live,
      logger: log,
      onPayload: (handler) => observers.onPayload(handler),
      onEvent: (handler) => observers.onEvent(handler),
      health,
      idle: () => pipeline.receiver.idle(),
      pendingCount: () => pipeline.pending.size,
      stop: () => stopper.run(),
    };
  } catch (e) {
    keys.close();
    await teardown.run(() => {});
    throw e;
  }
}

/** The options every part reads, checked. */
interface Settings {
  crypto: CryptoProvider;
  log: Logger;
  prefix: string;
  dataDir: DataDir;
  clientId: string;
  maxMessageBytes: number;
  /** The broker's in-flight window for this instance. */
  receiveMaximum: number;
}

function serviceSettings(options: CloudServiceOptions): Settings {
  if (options.shareGroup !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(options.shareGroup))
    throw new RangeError('the share group must be 1–64 of A-Z a-z 0-9 . _ -');
  return {
    crypto: options.crypto ?? nodeCrypto(),
    log: options.logger ?? createLogger(),
    prefix: checkPrefix(options.prefix ?? DEFAULT_PREFIX),
    dataDir: openDataDir(options.dataDir),
    clientId: options.clientId ?? defaultClientId(options.dataDir, options.shareGroup),
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    receiveMaximum: options.mqtt?.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM,
  };
}

/** The data directory's cloud keys, reloaded when they change (changes and failures are logged). */
function cloudKeyRing({ crypto, dataDir, log }: Settings): CloudKeyRing {
  return new CloudKeyRing(crypto, dataDir.root, {
    onChange: ({ added, removed, keys }) =>
      log.info(
        {
          event: 'cloud-keys-reloaded',
          added,
          removed,
          keys: keys.map((k) => ({ kid: k.kidHex, current: k.current, retireAt: k.retireAt })),
        },
        'cloud keys changed',
      ),
    onError: (e) => log.error({ event: 'cloud-keys-reload-failed', error: e.message }),
  });
}

interface ServiceStore {
  store: Store;
  /** What the start log names: the URL (redacted) or the kind of a Store given open. */
  description: string;
  /** Closes a store the service opened (one given open stays open). */
  close(): Promise<void>;
}

async function openServiceStore(options: CloudServiceOptions, { dataDir }: Settings): Promise<ServiceStore> {
  if (typeof options.store === 'object') {
    const store = options.store;
    return { store, description: store.kind, close: async () => {} };
  }
  const url = options.store ?? `sqlite:${join(dataDir.root, DEFAULT_STORE_FILE)}`;
  const store = await openStore(url, {
    // SQLite's connection in a writer thread: no SQL and no fsync on the thread that reads the broker.
    writerThread: true,
    windowSize:
      options.windowSize ?? (options.shareGroup === undefined ? DEFAULT_WINDOW_SIZE : DEFAULT_SHARED_WINDOW_SIZE),
    ...(options.sessionGrace === undefined ? {} : { sessionGrace: options.sessionGrace }),
  });
  return { store, description: redactUrl(url), close: () => store.close() };
}

/**
 * Who is told what the service stored: the cloud key tracker (rotation progress, and the key each
 * device's re-key requests are signed with), the dashboard plug-in (its page only when the HTTP
 * endpoint serves it), then the handlers of the options.
 */
function serviceObservers(
  options: CloudServiceOptions,
  log: Logger,
  keys: CloudKeyRing,
  metrics: ServiceMetrics,
): { observers: ServiceObservers; tracker: CloudKeyTracker; dashboard: DashboardPlugin } {
  const observers = new ServiceObservers(log);
  const tracker = new CloudKeyTracker();
  observers.onEvent((e) => {
    if (e.type === 'session' && e.cloudKid !== undefined) tracker.record(e.deviceId, e.cloudKid);
  });
  const http = options.http;
  const dashboard = dashboardPlugin({
    cloudKeys: () => cloudKeyRows(keys.keys(), tracker.counts()),
    // The live view's latency samples (reading time stamp → stored) are also the /metrics histogram.
    live: { onLatency: (ms) => metrics.readingAge.observe(ms / 1000) },
    ...(http === undefined || http.dashboard === false
      ? {}
      : { page: http.attack === undefined ? {} : { attack: http.attack } }),
  });
  observers.plug(dashboard);
  const payloadHandlers = options.onPayload === undefined ? [] : [options.onPayload].flat();
  for (const handler of payloadHandlers) observers.onPayload(handler);
  if (options.onEvent !== undefined) observers.onEvent(options.onEvent);
  return { observers, tracker, dashboard };
}

function openOutFile(store: Store, file: string, log: Logger): OutFile {
  const out = new OutFile(store, file, {
    onError: (e) => log.error({ event: 'out-file-error', file, error: e.message }),
  });
  out.open();
  return out;
}

function brokerConsumer(
  options: CloudServiceOptions,
  { prefix, clientId, maxMessageBytes, receiveMaximum, log }: Settings,
) {
  const share = (filter: string) =>
    options.shareGroup === undefined ? filter : `$share/${options.shareGroup}/${filter}`;
  const mqttLog = log.child({ component: 'mqtt' });
  return new MqttConsumer({
    url: options.brokerUrl,
    clientId,
    subscriptions: [
      { topic: share(topicFilter('session', prefix)), qos: 2 },
      { topic: share(topicFilter('data', prefix)), qos: 1 },
    ],
    sessionExpirySeconds: DEFAULT_SESSION_EXPIRY_SECONDS,
    // MQTT 5 Maximum Packet Size: a message, its topic and the packet's own fields.
    maxPacketBytes: maxMessageBytes + 1024,
    ...options.mqtt,
    receiveMaximum,
    log: (level, event, fields) => mqttLog[level]({ event, ...fields }, event),
  });
}

function pipelineOptions(options: CloudServiceOptions, settings: Settings) {
  return {
    crypto: settings.crypto,
    log: settings.log,
    prefix: settings.prefix,
    maxMessageBytes: settings.maxMessageBytes,
    receiveMaximum: settings.receiveMaximum,
    ...(options.pending === undefined ? {} : { pending: options.pending }),
    ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    ...(options.admission === undefined ? {} : { admission: options.admission }),
    ...(options.rekeyIntervalMs === undefined ? {} : { rekeyIntervalMs: options.rekeyIntervalMs }),
  };
}

function metricSources({ sessions, pending, commits }: Pipeline, consumer: MqttConsumer, store: Store) {
  return {
    sessionsCached: () => sessions.size,
    pending: () => pending.size,
    commitQueue: () => commits.depth,
    unacked: () => consumer.unacked,
    mqttConnected: () => consumer.connected,
    mqttReconnects: () => consumer.reconnects,
    storeStats: () => store.stats(),
  };
}

function healthReport(parts: {
  settings: Settings;
  pipeline: Pipeline;
  consumer: MqttConsumer;
  metrics: ServiceMetrics;
  store: Store;
  stopper: Once;
}): () => HealthReport {
  const { pipeline, consumer, metrics, store } = parts;
  const { receiver, commits, pending } = pipeline;
  return () => {
    const connected = consumer.connected;
    const failing = commits.failing;
    return {
      status: parts.stopper.started
        ? 'stopping'
        : connected && !failing && receiver.unreadable === 0
          ? 'ok'
          : 'degraded',
      mqtt: {
        connected,
        protocolVersion: consumer.protocolVersion,
        clientId: parts.settings.clientId,
        unacked: consumer.unacked,
      },
      store: { kind: store.kind, failing, unreadableSessions: receiver.unreadable },
      pending: pending.size,
      inFlight: receiver.inFlight,
      commitQueue: commits.depth,
      uptimeSeconds: Math.round((Date.now() - metrics.startedAt) / 1000),
    };
  };
}

/** /metrics and /health, with the dashboard plug-in's routes mounted when it serves a page. */
function serveHttp(
  http: NonNullable<CloudServiceOptions['http']>,
  metrics: ServiceMetrics,
  health: () => HealthReport,
  plugin: DashboardPlugin,
): Promise<HttpEndpoint> {
  return startHttpEndpoint({
    ...(plugin.route === undefined ? {} : { routes: plugin.route }),
    port: http.port,
    ...(http.host === undefined ? {} : { host: http.host }),
    metrics: () => metrics.registry.text(),
    metricsContentType: CONTENT_TYPE,
    health,
  });
}

function logStarted(
  { log, clientId, prefix, dataDir }: Settings,
  options: CloudServiceOptions,
  parts: {
    storage: ServiceStore;
    consumer: MqttConsumer;
    http: HttpEndpoint | undefined;
    trust: Trust;
    keys: CloudKeyRing;
  },
): void {
  const { store } = parts.storage;
  log.info(
    {
      event: 'started',
      broker: redactUrl(options.brokerUrl),
      clientId,
      protocolVersion: parts.consumer.protocolVersion,
      shareGroup: options.shareGroup,
      prefix,
      store: parts.storage.description,
      dataDir: dataDir.root,
      out: options.out,
      http: parts.http?.url,
      storageKeyId: parts.trust.storageKey.keyId,
      storageKeySource: parts.trust.storageKey.source,
      cloudKeys: parts.keys.keys().map((k) => ({ kid: k.kidHex, current: k.current })),
      trustAnchors: parts.trust.anchors.length,
      windowSize: store.windowSize,
      sessionGrace: store.sessionGrace,
    },
    'cloud service started',
  );
}
