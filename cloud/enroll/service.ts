/**
 * The enrollment service (`cose-flow ca serve`): subscribes to `{prefix}/+/enroll` (QoS 1) on an
 * MQTT broker, decides on each request with the enroller (`enroller.ts`) and publishes the result
 * on `{prefix}/{deviceId}/enroll/result` (QoS 1). One JSON log line per decision.
 *
 * Bounds on the work an anonymous publisher can cause:
 * - each request is first parsed and authenticated (`enroller.admit`: its MAC under the device's
 *   enrollment key, or the allow-list) — cheap, and before any per-device limit, so that garbage on
 *   a device's topic cannot use up that device's turn;
 * - unauthenticated requests (unparsable, a MAC that does not verify, not allow-listed) share one
 *   global limit: at most `maxUnauthenticatedPerSecond` (default 20) a second are answered and
 *   logged, the rest are dropped unanswered and counted in one summary line a second;
 * - authenticated requests wait in one queue with at most one entry per device id: a newer request
 *   of a device that is already waiting replaces the older one in its place (a device re-sends the
 *   same request when it gets no answer, or a new one after giving up: either way only its latest
 *   is answered, so nothing queued is dead work, and a device keeps its turn); at most `maxQueue`
 *   devices wait, a request beyond that is answered `unavailable: busy …` (transient: the device
 *   backs off and asks again) instead of dropped silently; per device id at most one request per
 *   `minIntervalMs` (default 1 s) joins the queue when the device is not already waiting, the
 *   others are dropped unanswered (a device retries with backoff, so it loses nothing);
 * - the queue is decided in batches of up to `batchSize` (default 64), oldest first: one hold of
 *   the data directory lock, one concurrent round of fsyncs (enroller.ts `issueBatch`); the CA is
 *   loaded once, again only when its files change; results are published concurrently (QoS 1)
 *   once the batch's records are durable, without waiting for the broker's acknowledgements
 *   before deciding the next batch;
 * - a request is at most 16 KiB (`ENROLL_MAX_BYTES`); a topic that is not `{prefix}/{valid id}/enroll`
 *   and a payload that does not parse are ignored.
 * Bad input never stops the service: every failure is one log line. `close()` abandons what is
 * queued (the devices ask again) and ends within about a batch and a few seconds of publishing.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { toHex } from '../../src/bytes.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { makeEnrollResult } from '../../src/profile/enrollment.js';
import { DEFAULT_PREFIX } from '../../src/profile/limits.js';
import { checkPrefix, parseTopic, topic, topicFilter } from '../../src/profile/topics.js';
import { LineAggregator } from '../service/log.js';
import { type Admission, createEnroller, type EnrollDecision } from './enroller.js';

export const DEFAULT_MIN_INTERVAL_MS = 1000;
export const DEFAULT_MAX_QUEUE = 256;
export const DEFAULT_MAX_UNAUTHENTICATED_PER_SECOND = 20;
export const DEFAULT_BATCH_SIZE = 64;
/** How long `close()` waits for results already being published before disconnecting anyway. */
const CLOSE_PUBLISH_WAIT_MS = 3000;
/** Device ids remembered for the rate limit before old entries are swept. */
const RATE_TABLE_SWEEP = 10_000;

export type LogLine = Record<string, unknown>;

export interface EnrollmentServiceOptions {
  /** The CA data directory. */
  dataDir: string;
  crypto: CryptoProvider;
  /** mqtt://host:port (or mqtts://, ws://): any URL MQTT.js accepts. */
  brokerUrl: string;
  /** Topic prefix (default cose-flow/v1). */
  prefix?: string;
  /** More MQTT.js connection options (credentials, TLS, clientId …). */
  mqttOptions?: IClientOptions;
  /** Receives one object per decision (and per start/stop); default: none. */
  log?: (line: LogLine) => void;
  minIntervalMs?: number;
  maxQueue?: number;
  /** Unauthenticated requests answered and logged per second, all devices together (default 20). */
  maxUnauthenticatedPerSecond?: number;
  /** Requests decided together under one lock and one round of fsyncs (default 64). */
  batchSize?: number;
  validityDays?: number;
  now?: () => Date;
}

export interface EnrollmentService {
  /** The subscription filter: `{prefix}/+/enroll`. */
  readonly filter: string;
  readonly client: MqttClient;
  /** Resolves once every request received so far has been decided and its result published. */
  idle(): Promise<void>;
  /**
   * Stops taking requests, abandons the queued ones (not decided, not answered: their devices ask
   * again), lets the batch being decided finish, waits a few seconds at most for results being
   * published, disconnects.
   */
  close(): Promise<void>;
  /** What the service has done so far. */
  stats(): EnrollmentServiceStats;
}

export interface EnrollmentServiceStats {
  /** Requests decided (issued, re-served or refused after the CSR and record checks). */
  decided: number;
  /** Requests waiting now (one per device id). */
  queued: number;
  /** Queued requests replaced by a newer request of the same device before their turn. */
  superseded: number;
  /** Requests answered `unavailable: busy` because `maxQueue` devices were waiting. */
  busy: number;
  /** Requests abandoned by `close()`. */
  abandoned: number;
}

/** Connects to the broker, subscribes, and serves until `close()`. */
export async function startEnrollmentService(options: EnrollmentServiceOptions): Promise<EnrollmentService> {
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const filter = topicFilter('enroll', prefix);
  const minInterval = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
  const maxUnauthenticated = options.maxUnauthenticatedPerSecond ?? DEFAULT_MAX_UNAUTHENTICATED_PER_SECOND;
  const log = options.log ?? (() => {});
  const now = options.now ?? (() => new Date());
  const enroller = createEnroller({
    dataDir: options.dataDir,
    crypto: options.crypto,
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });

  const client = await mqtt.connectAsync(options.brokerUrl, {
    clientId: `cose-flow-enroll-${Math.random().toString(16).slice(2, 10)}`,
    clean: true,
    reconnectPeriod: 1000,
    ...options.mqttOptions,
  });
  const lastSeen = new Map<string, number>();
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH_SIZE);
  /** The queue: one admitted request per device id, in the order the devices first asked. */
  const pending = new Map<string, Extract<Admission, { kind: 'admitted' }>>();
  /** Results being published: the service does not wait for one before deciding the next batch. */
  const publishing = new Set<Promise<void>>();
  let worker: Promise<void> | undefined;
  let closing = false;
  const counts: EnrollmentServiceStats = { decided: 0, queued: 0, superseded: 0, busy: 0, abandoned: 0 };

  const emit = (decision: EnrollDecision) => {
    const { reply: _reply, ...fields } = decision;
    log({ time: now().toISOString(), event: 'enroll', ...fields });
  };

  function rateLimited(deviceId: string): boolean {
    const t = Date.now();
    const last = lastSeen.get(deviceId);
    if (last !== undefined && t - last < minInterval) return true;
    if (lastSeen.size >= RATE_TABLE_SWEEP) {
      for (const [id, seen] of lastSeen) if (t - seen >= minInterval) lastSeen.delete(id);
    }
    lastSeen.set(deviceId, t);
    return false;
  }

  /** The global budget of unauthenticated requests: a one-second window, with a count of the dropped. */
  let windowStart = 0;
  let windowUsed = 0;
  let dropped = 0;
  function unauthenticatedAllowed(): boolean {
    const t = Date.now();
    if (t - windowStart >= 1000) {
      if (dropped > 0) {
        log({
          time: now().toISOString(),
          event: 'unauthenticated-dropped',
          dropped,
          reason: `more than ${maxUnauthenticated} unauthenticated requests a second: dropped unanswered`,
        });
      }
      windowStart = t;
      windowUsed = 0;
      dropped = 0;
    }
    if (windowUsed >= maxUnauthenticated) {
      dropped++;
      return false;
    }
    windowUsed++;
    return true;
  }

  /** Logs a decision and publishes its result without waiting for the broker's acknowledgement. */
  function answer(decision: EnrollDecision, logged = true): void {
    if (logged) emit(decision);
    if (decision.reply === undefined) return;
    const { deviceId } = decision;
    const sent = client
      .publishAsync(topic('enroll/result', deviceId, prefix), Buffer.from(decision.reply), { qos: 1 })
      .then(
        () => {},
        (e: unknown) =>
          log({ time: now().toISOString(), event: 'publish-failed', deviceId, error: (e as Error).message }),
      )
      .finally(() => publishing.delete(sent));
    publishing.add(sent);
  }

  /** Decides the queue, a batch at a time, oldest first, until it is empty or the service closes. */
  async function work(): Promise<void> {
    while (pending.size > 0 && !closing) {
      const batch: Extract<Admission, { kind: 'admitted' }>[] = [];
      for (const [deviceId, admitted] of pending) {
        batch.push(admitted);
        pending.delete(deviceId);
        if (batch.length >= batchSize) break;
      }
      try {
        for (const decision of await enroller.issueBatch(batch)) {
          counts.decided++;
          answer(decision);
        }
      } catch (e) {
        log({ time: now().toISOString(), event: 'error', error: String(e) });
      }
    }
  }

  function kick(): void {
    if (worker !== undefined || closing) return;
    // Started on the next turn of the event loop, so that a burst of requests makes one batch.
    worker = new Promise<void>((resolve) => setImmediate(resolve)).then(work).finally(() => {
      worker = undefined;
      if (pending.size > 0 && !closing) kick();
    });
  }

  // Requests dropped unanswered (busy, rate-limited, not an enroll topic): the first 5 per code
  // and 10 s are logged, the others counted in one summary line (a flood made 100 MB of "busy").
  const ignored = new LineAggregator((s) =>
    log({
      time: now().toISOString(),
      event: 'enroll-ignored-summary',
      outcome: 'ignored',
      code: s.key,
      count: s.count,
      devices: s.devices,
      examples: s.examples,
      seconds: s.seconds,
    }),
  );

  client.on('message', (name, payload) => {
    if (closing) return;
    const parsed = parseTopic(name, prefix);
    if (parsed === undefined || parsed.kind !== 'enroll') {
      if (!ignored.admit('bad-request')) return;
      log({
        time: now().toISOString(),
        event: 'enroll',
        topic: name.slice(0, 200),
        outcome: 'ignored',
        code: 'bad-request',
        reason: 'bad-request: not an enroll topic',
      });
      return;
    }
    const { deviceId } = parsed;
    const admitted = enroller.admit(deviceId, new Uint8Array(payload)); // a private copy, a plain Uint8Array
    if (admitted.kind === 'unauthenticated') {
      if (unauthenticatedAllowed()) answer(admitted.decision);
      return;
    }
    if (pending.has(deviceId)) {
      // Waiting already: the newer request takes the older one's place (only the latest is answered).
      pending.set(deviceId, admitted);
      counts.superseded++;
      return;
    }
    if (rateLimited(deviceId)) {
      if (ignored.admit('rate-limited', deviceId))
        emit({
          deviceId,
          outcome: 'ignored',
          code: 'rate-limited',
          reason: `rate-limited: more than one request per ${minInterval} ms`,
        });
      return;
    }
    if (pending.size >= maxQueue) {
      // Not in the protocol as a status of its own: a transient refusal, which devices retry.
      counts.busy++;
      const reason = `unavailable: busy: ${pending.size} devices waiting; try again later`;
      const reply = makeEnrollResult({ status: 'refused', requestId: admitted.request.requestId, reason });
      const decision: EnrollDecision = {
        deviceId,
        outcome: 'refused',
        code: 'busy',
        reason,
        requestId: toHex(admitted.request.requestId),
        reply,
      };
      answer(decision, ignored.admit('busy', deviceId)); // beyond a few, counted in the summary line
      return;
    }
    pending.set(deviceId, admitted);
    kick();
  });
  client.on('error', (e) => log({ time: now().toISOString(), event: 'mqtt-error', error: e.message }));

  try {
    await client.subscribeAsync(filter, { qos: 1 });
  } catch (e) {
    await client.endAsync(true);
    throw e;
  }
  log({ time: now().toISOString(), event: 'listening', broker: options.brokerUrl, filter, dataDir: options.dataDir });

  const settled = async () => {
    for (;;) {
      if (worker !== undefined) await worker;
      else if (publishing.size > 0) await Promise.allSettled([...publishing]);
      else if (pending.size > 0 && !closing) kick();
      else return;
    }
  };

  return {
    filter,
    client,
    idle: settled,
    stats: () => ({ ...counts, queued: pending.size }),
    close: async () => {
      if (closing) return;
      closing = true;
      counts.abandoned += pending.size;
      const abandoned = pending.size;
      pending.clear();
      try {
        await client.unsubscribeAsync(filter);
      } catch {
        // disconnected already: nothing to unsubscribe
      }
      if (worker !== undefined) await worker; // the batch being decided: its records are written
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        Promise.allSettled([...publishing]).then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), CLOSE_PUBLISH_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      await client.endAsync(!waited);
      ignored.flush();
      log({ time: now().toISOString(), event: 'stopped', abandoned, decided: counts.decided });
    },
  };
}
