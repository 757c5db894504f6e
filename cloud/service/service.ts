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
 */

import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { nodeCrypto } from '../../node/crypto.js';
import { redactUrl } from '../../node/redact-url.js';
import { CoseError } from '../../src/cose/errors.js';
import type { CryptoProvider, P256PrivateKey } from '../../src/crypto/provider.js';
import { type OpenedKeyMessage, openKeyMessage } from '../../src/profile/key-message.js';
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PREFIX } from '../../src/profile/limits.js';
import { checkPrefix, topicFilter } from '../../src/profile/topics.js';
import { type CloudKeyCount, LiveState } from '../dashboard/live-state.js';
import { type Dashboard, dashboard } from '../dashboard/routes.js';
import { type HealthReport, type HttpEndpoint, startHttpEndpoint } from '../http/server.js';
import { MqttConsumer, type MqttConsumerOptions } from '../mqtt/consumer.js';
import { type CloudKey, cloudKeyLookup, cloudKeysVersion, loadCloudKeys } from '../pki/cloud-keys.js';
import { DataDirError, openDataDir } from '../pki/data-dir.js';
import { readCertificates } from '../pki/files.js';
import { revocationChecker } from '../pki/revocation.js';
import { deviceCertificateVerifier } from '../pki/verify.js';
import { DEFAULT_WINDOW_SIZE } from '../session/replay-window.js';
import { openStore } from '../store/index.js';
import type { SessionGrace, Store } from '../store/store.js';
import { Admission, type AdmissionLimits } from './admission.js';
import { loadStorageKey, SessionSealer } from './at-rest.js';
import { CloudKeyTracker } from './cloud-key-tracker.js';
import { CommitQueue, DEFAULT_MAX_BATCH } from './commit-queue.js';
import {
  DEFAULT_RECEIVE_MAXIMUM,
  DEFAULT_SESSION_EXPIRY_SECONDS,
  DEFAULT_SHARED_WINDOW_SIZE,
  DEFAULT_STORE_FILE,
} from './defaults.js';
import type { ServiceEventHandler } from './events.js';
import { createLogger, type Logger } from './log.js';
import { CONTENT_TYPE, ServiceMetrics } from './metrics.js';
import { OutFile } from './out-file.js';
import type { DeliveredPayload } from './payload.js';
import { DEFAULT_PENDING, PendingBuffer, type PendingLimits } from './pending-buffer.js';
import { type PendingData, Receiver } from './receiver.js';
import { DEFAULT_REKEY_INTERVAL_MS, RekeyRequester } from './rekey.js';
import { SessionTable } from './session-table.js';

/** How often the service looks whether its cloud keys changed on disk (rotation, retirement, deadline). */
const CLOUD_KEY_CHECK_MS = 1000;

export type PayloadHandler = (payload: DeliveredPayload) => void | Promise<void>;

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
  const crypto = options.crypto ?? nodeCrypto();
  const log = options.logger ?? createLogger();
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const dataDir = options.dataDir;
  const layout = openDataDir(dataDir);
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (options.shareGroup !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(options.shareGroup))
    throw new RangeError('the share group must be 1–64 of A-Z a-z 0-9 . _ -');
  const clientId = options.clientId ?? defaultClientId(dataDir, options.shareGroup);

  // Keys and trust, before anything connects: a configuration problem stops the start.
  const storageKey = options.storageKey
    ? { key: options.storageKey, source: 'option', keyId: new SessionSealer(options.storageKey).keyId }
    : loadStorageKey({
        dataDir,
        ...(options.storageKeyHex === undefined ? {} : { hex: options.storageKeyHex }),
        ...(options.storageKeyFile === undefined ? {} : { file: options.storageKeyFile }),
        warn: (message) => log.warn({ event: 'storage-key-mode' }, message),
      });
  const sealer = new SessionSealer(storageKey.key);
  const anchorFiles = options.trustAnchors ?? [layout.caCertificate];
  const anchors = anchorFiles.flatMap((file) => {
    try {
      return readCertificates(file);
    } catch (e) {
      throw new DataDirError(
        `cannot read the trusted CA certificate ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): ` +
          `run \`cose-flow ca init --data-dir ${dataDir}\`, or name the CA file(s) with --trust`,
      );
    }
  });
  const isRevoked = revocationChecker(dataDir);
  const verifyCertificate = deviceCertificateVerifier({
    crypto,
    trustAnchors: anchors,
    isRevoked,
    ...(options.certificateTime === undefined ? {} : { now: options.certificateTime }),
  });
  // Cloud keys: loaded again whenever the data directory's keys change (a rotation, a retirement:
  // two stats, checked every CLOUD_KEY_CHECK_MS and when a key message names an unknown key) and
  // when a retired key's deadline passes — so that during a rotation both keys open sessions, and
  // a retired key stops at its deadline.
  let keysVersion = cloudKeysVersion(dataDir);
  let cloudKeys = loadCloudKeys(crypto, dataDir);
  let lookup = cloudKeyLookup(cloudKeys);
  const currentKey = (): P256PrivateKey => {
    for (const k of cloudKeys.values()) if (k.current) return k.key;
    throw new Error('no current cloud key');
  };
  const reloadCloudKeys = (): boolean => {
    const version = cloudKeysVersion(dataDir);
    const now = Date.now();
    const expired = [...cloudKeys.values()].some((k) => k.retireAt !== undefined && k.retireAt.getTime() <= now);
    if (version === keysVersion && !expired) return false;
    keysVersion = version;
    try {
      const fresh = loadCloudKeys(crypto, dataDir, now);
      const added = [...fresh.keys()].filter((k) => !cloudKeys.has(k));
      const removed = [...cloudKeys.keys()].filter((k) => !fresh.has(k));
      cloudKeys = fresh;
      lookup = cloudKeyLookup(fresh);
      if (added.length > 0 || removed.length > 0) {
        log.info(
          {
            event: 'cloud-keys-reloaded',
            added,
            removed,
            keys: [...fresh.values()].map((k) => ({ kid: k.kidHex, current: k.current, retireAt: k.retireAt })),
          },
          'cloud keys changed',
        );
      }
      return added.length > 0;
    } catch (e) {
      log.error({ event: 'cloud-keys-reload-failed', error: (e as Error).message });
      return false;
    }
  };
  // Which cloud key each device's latest stored session was sealed to (rotation progress; the key
  // that signs the device's control messages).
  const cloudKeyOf = new CloudKeyTracker();
  const openKey = (bytes: Uint8Array, topicDeviceId: string): OpenedKeyMessage => {
    const open = () =>
      openKeyMessage(crypto, bytes, { cloudKey: lookup, verifyCertificate, topicDeviceId, maxBytes: maxMessageBytes });
    try {
      return open();
    } catch (e) {
      // A key message for a cloud key created by `cloud keygen --rotate` after we started.
      if (e instanceof CoseError && e.reason === 'unknown-recipient' && reloadCloudKeys()) return open();
      throw e;
    }
  };

  const ownStore = typeof options.store !== 'object';
  const storeUrl = typeof options.store === 'string' ? options.store : `sqlite:${join(dataDir, DEFAULT_STORE_FILE)}`;
  const store: Store =
    typeof options.store === 'object'
      ? options.store
      : await openStore(storeUrl, {
          windowSize:
            options.windowSize ?? (options.shareGroup === undefined ? DEFAULT_WINDOW_SIZE : DEFAULT_SHARED_WINDOW_SIZE),
          ...(options.sessionGrace === undefined ? {} : { sessionGrace: options.sessionGrace }),
        });

  const cleanUp: (() => Promise<void>)[] = [];
  if (ownStore) cleanUp.push(() => store.close());
  try {
    const receiveMaximum = options.mqtt?.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM;
    const pendingLimits = { ...DEFAULT_PENDING, ...options.pending };
    if (pendingLimits.total > receiveMaximum / 2) {
      // Unacknowledged pending data must leave room in the broker's in-flight window for the key
      // messages they wait for.
      pendingLimits.total = Math.floor(receiveMaximum / 2);
      log.warn(
        { event: 'pending-limit' },
        `pending buffer limited to ${pendingLimits.total} (half the receive maximum)`,
      );
    }
    const sessions = new SessionTable(store, sealer);
    const pending = new PendingBuffer<PendingData>(pendingLimits);
    const live = new LiveState();
    const handlers = new Set<PayloadHandler>([
      (p) => live.recordPayload(p),
      ...(options.onPayload === undefined
        ? []
        : Array.isArray(options.onPayload)
          ? options.onPayload
          : [options.onPayload]),
    ]);
    const eventHandlers = new Set<ServiceEventHandler>([
      (e) => {
        if (e.type === 'session' && e.cloudKid !== undefined) cloudKeyOf.record(e.deviceId, e.cloudKid);
      },
      (e) => live.record(e),
    ]);
    live.setCloudKeys(() => {
      const counts = cloudKeyOf.counts();
      const rows: CloudKeyCount[] = [...cloudKeys.values()].map((k) => ({
        kid: k.kidHex,
        current: k.current,
        loaded: true,
        devices: counts.get(k.kidHex) ?? 0,
        retireAt: k.retireAt === undefined ? null : k.retireAt.getTime(),
      }));
      // Devices still on a key no longer loaded (retired for good): they cannot open a session
      // until they take the current certificate.
      for (const [kid, devices] of counts) {
        if (!cloudKeys.has(kid)) rows.push({ kid, current: false, loaded: false, devices, retireAt: null });
      }
      return rows;
    });
    if (options.onEvent !== undefined) eventHandlers.add(options.onEvent);
    let consumer: MqttConsumer | undefined;
    let outFile: OutFile | undefined;
    let commits: CommitQueue | undefined;
    const metrics = new ServiceMetrics({
      sessionsCached: () => sessions.size,
      pending: () => pending.size,
      commitQueue: () => commits?.depth ?? 0,
      unacked: () => consumer?.unacked ?? 0,
      mqttConnected: () => consumer?.connected ?? false,
      mqttReconnects: () => consumer?.reconnects ?? 0,
      storeStats: () => store.stats(),
    });
    commits = new CommitQueue(store, {
      maxBatch: options.maxBatch ?? DEFAULT_MAX_BATCH,
      onCommit: (size, ms) => {
        metrics.batchSize.observe(size);
        metrics.commitSeconds.observe(ms / 1000);
      },
      onError: (error, attempt, size) => {
        metrics.storeErrors.inc();
        log.error({ event: 'store-error', operation: 'commitBatch', attempt, size, error: error.message });
      },
    });
    const rekey = new RekeyRequester({
      crypto,
      store,
      cloudKey: (deviceId) => {
        const kid = cloudKeyOf.keyOf(deviceId);
        return (kid === undefined ? undefined : cloudKeys.get(kid)?.key) ?? currentKey();
      },
      prefix,
      publish: (t, payload) => {
        if (consumer === undefined) return Promise.reject(new Error('not connected'));
        return consumer.publish(t, payload, 1);
      },
      minIntervalMs: options.rekeyIntervalMs ?? DEFAULT_REKEY_INTERVAL_MS,
      onOutcome: (deviceId, kid, outcome, error) => {
        metrics.rekeyRequests.inc({ outcome });
        const fields = { event: 'rekey-request', deviceId, kid, outcome, error: error?.message };
        if (outcome === 'sent') log.info(fields, 'asked the device for a new session');
        else if (outcome === 'failed') log.warn(fields, 're-key request not sent');
        else log.debug(fields, 're-key request rate-limited');
      },
    });
    const deliver = async (payload: DeliveredPayload) => {
      for (const handler of handlers) {
        try {
          await handler(payload);
        } catch (e) {
          log.error(
            {
              event: 'handler-failed',
              deviceId: payload.deviceId,
              kid: payload.kidHex,
              seq: payload.seq,
              error: String(e),
            },
            'a payload handler threw (the payload is stored)',
          );
        }
      }
    };
    if (options.out !== undefined) {
      outFile = new OutFile(store, options.out, {
        onError: (e) => log.error({ event: 'out-file-error', file: options.out, error: e.message }),
      });
      outFile.open();
      const f = outFile;
      cleanUp.push(() => f.close());
    }
    const receiver = new Receiver({
      crypto,
      store,
      sessions,
      pending,
      commits,
      rekey,
      sealer,
      openKeyMessage: openKey,
      deliver,
      metrics,
      log,
      prefix,
      maxMessageBytes,
      isRevoked,
      admission: new Admission(options.admission),
      ...(outFile === undefined ? {} : { onAccepted: () => outFile!.kick() }),
      observe: (event) => {
        for (const handler of eventHandlers) handler(event);
      },
    });

    let stopping: Promise<void> | undefined;
    let http: HttpEndpoint | undefined;
    let page: Dashboard | undefined;
    const health = (): HealthReport => {
      const connected = consumer?.connected ?? false;
      const failing = commits!.failing;
      return {
        status: stopping ? 'stopping' : connected && !failing && receiver.unreadable === 0 ? 'ok' : 'degraded',
        mqtt: { connected, protocolVersion: consumer?.protocolVersion, clientId, unacked: consumer?.unacked ?? 0 },
        store: { kind: store.kind, failing, unreadableSessions: receiver.unreadable },
        pending: pending.size,
        inFlight: receiver.inFlight,
        commitQueue: commits!.depth,
        uptimeSeconds: Math.round((Date.now() - metrics.startedAt) / 1000),
      };
    };
    if (options.http !== undefined) {
      if (options.http.dashboard !== false) {
        page = dashboard({
          state: live,
          ...(options.http.attack === undefined ? {} : { attack: options.http.attack }),
        });
      }
      const p = page;
      http = await startHttpEndpoint({
        ...(p === undefined ? {} : { routes: p.route }),
        port: options.http.port,
        ...(options.http.host === undefined ? {} : { host: options.http.host }),
        metrics: () => metrics.registry.text(),
        metricsContentType: CONTENT_TYPE,
        health,
      });
      const h = http;
      cleanUp.push(async () => {
        p?.close();
        await h.close();
      });
    }

    const share = (filter: string) =>
      options.shareGroup === undefined ? filter : `$share/${options.shareGroup}/${filter}`;
    const mqttLog = log.child({ component: 'mqtt' });
    consumer = new MqttConsumer({
      url: options.brokerUrl,
      clientId,
      subscriptions: [
        { topic: share(topicFilter('session', prefix)), qos: 2 },
        { topic: share(topicFilter('data', prefix)), qos: 1 },
      ],
      onMessage: (m) => receiver.handle(m),
      sessionExpirySeconds: DEFAULT_SESSION_EXPIRY_SECONDS,
      // MQTT 5 Maximum Packet Size: a message, its topic and the packet's own fields.
      maxPacketBytes: maxMessageBytes + 1024,
      ...options.mqtt,
      receiveMaximum,
      log: (level, event, fields) => mqttLog[level]({ event, ...fields }, event),
    });
    const sweepTimer = setInterval(() => void receiver.sweep(), 100);
    cleanUp.push(async () => clearInterval(sweepTimer));
    const keysTimer = setInterval(reloadCloudKeys, CLOUD_KEY_CHECK_MS);
    keysTimer.unref();
    cleanUp.push(async () => clearInterval(keysTimer));
    await consumer.start();
    const mqtt = consumer;

    log.info(
      {
        event: 'started',
        broker: redactUrl(options.brokerUrl),
        clientId,
        protocolVersion: mqtt.protocolVersion,
        shareGroup: options.shareGroup,
        prefix,
        store: typeof options.store === 'object' ? store.kind : redactUrl(storeUrl),
        dataDir,
        out: options.out,
        http: http?.url,
        storageKeyId: storageKey.keyId,
        storageKeySource: storageKey.source,
        cloudKeys: [...cloudKeys.values()].map((k: CloudKey) => ({ kid: k.kidHex, current: k.current })),
        trustAnchors: anchors.length,
        windowSize: store.windowSize,
        sessionGrace: store.sessionGrace,
      },
      'cloud service started',
    );

    const stop = async (): Promise<void> => {
      mqtt.pauseDelivery(); // whatever arrives now stays unacknowledged: the broker redelivers it
      clearInterval(sweepTimer);
      pending.clear(); // unacknowledged too
      const timeoutMs = options.shutdownTimeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        receiver.idle().then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        log.warn({ event: 'shutdown-timeout', inFlight: receiver.inFlight }, 'giving up on in-flight messages');
        receiver.stop();
        commits!.abort(new Error('the service is stopping'));
        await receiver.idle();
      }
      receiver.stop();
      await mqtt.close();
      for (const fn of cleanUp.reverse()) {
        try {
          await fn();
        } catch (e) {
          log.error({ event: 'stop-error', error: (e as Error).message });
        }
      }
      sessions.clear();
      log.info(
        {
          event: 'stopped',
          accepted: {
            session: metrics.accepted.get({ kind: 'session' }),
            data: metrics.accepted.get({ kind: 'data' }),
          },
          duplicates: {
            session: metrics.duplicates.get({ kind: 'session' }),
            data: metrics.duplicates.get({ kind: 'data' }),
          },
          rejected: metrics.rejectedByReason(),
        },
        'cloud service stopped',
      );
      log.flush?.();
    };

    return {
      store,
      metrics,
      clientId,
      http,
      outFile,
      live,
      logger: log,
      onPayload(handler) {
        handlers.add(handler);
        return () => handlers.delete(handler);
      },
      onEvent(handler) {
        eventHandlers.add(handler);
        return () => eventHandlers.delete(handler);
      },
      health,
      idle: () => receiver.idle(),
      pendingCount: () => pending.size,
      stop: () => {
        stopping ??= stop();
        return stopping;
      },
    };
  } catch (e) {
    for (const fn of cleanUp.reverse()) await fn().catch(() => {});
    throw e;
  }
}
