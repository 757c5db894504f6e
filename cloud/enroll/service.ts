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
 * - authenticated requests are decided one at a time, in arrival order; at most `maxQueue` wait,
 *   more are dropped; per device id at most one per `minIntervalMs` (default 1 s) is looked at, the
 *   others are dropped unanswered (a device retries with backoff, so it loses nothing);
 * - a request is at most 16 KiB (`ENROLL_MAX_BYTES`); a topic that is not `{prefix}/{valid id}/enroll`
 *   and a payload that does not parse are ignored.
 * Bad input never stops the service: every failure is one log line.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { DEFAULT_PREFIX } from '../../src/profile/limits.js';
import { checkPrefix, parseTopic, topic, topicFilter } from '../../src/profile/topics.js';
import { LineAggregator } from '../service/log.js';
import { type Admission, createEnroller, type EnrollDecision } from './enroller.js';

export const DEFAULT_MIN_INTERVAL_MS = 1000;
export const DEFAULT_MAX_QUEUE = 256;
export const DEFAULT_MAX_UNAUTHENTICATED_PER_SECOND = 20;
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
  validityDays?: number;
  now?: () => Date;
}

export interface EnrollmentService {
  /** The subscription filter: `{prefix}/+/enroll`. */
  readonly filter: string;
  readonly client: MqttClient;
  /** Resolves once every request received so far has been decided and its result published. */
  idle(): Promise<void>;
  /** Stops taking requests, finishes the queued ones, disconnects. */
  close(): Promise<void>;
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
  let tail: Promise<void> = Promise.resolve();
  let queued = 0;
  let closing = false;

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

  async function answer(decision: EnrollDecision): Promise<void> {
    const { deviceId } = decision;
    if (decision.reply !== undefined) {
      try {
        await client.publishAsync(topic('enroll/result', deviceId, prefix), Buffer.from(decision.reply), { qos: 1 });
      } catch (e) {
        log({ time: now().toISOString(), event: 'publish-failed', deviceId, error: (e as Error).message });
      }
    }
    emit(decision);
  }

  async function decide(admitted: Extract<Admission, { kind: 'admitted' }>): Promise<void> {
    await answer(await enroller.issue(admitted));
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
      if (unauthenticatedAllowed()) {
        const { decision } = admitted;
        tail = tail
          .then(() => answer(decision))
          .catch((e) => log({ time: now().toISOString(), event: 'error', deviceId, error: String(e) }));
      }
      return;
    }
    if (queued >= maxQueue) {
      if (ignored.admit('busy', deviceId))
        emit({ deviceId, outcome: 'ignored', code: 'busy', reason: `busy: ${queued} requests waiting` });
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
    queued++;
    tail = tail
      .then(() => decide(admitted))
      .catch((e) => log({ time: now().toISOString(), event: 'error', deviceId, error: String(e) }))
      .finally(() => {
        queued--;
      });
  });
  client.on('error', (e) => log({ time: now().toISOString(), event: 'mqtt-error', error: e.message }));

  try {
    await client.subscribeAsync(filter, { qos: 1 });
  } catch (e) {
    await client.endAsync(true);
    throw e;
  }
  log({ time: now().toISOString(), event: 'listening', broker: options.brokerUrl, filter, dataDir: options.dataDir });

  return {
    filter,
    client,
    idle: async () => {
      // Requests may be queued while waiting: loop until the tail stops moving.
      for (;;) {
        const seen = tail;
        await seen;
        if (seen === tail) return;
      }
    },
    close: async () => {
      if (closing) return;
      closing = true;
      try {
        await client.unsubscribeAsync(filter);
      } catch {
        // disconnected already: nothing to unsubscribe
      }
      for (;;) {
        const seen = tail;
        await seen;
        if (seen === tail) break;
      }
      await client.endAsync();
      ignored.flush();
      log({ time: now().toISOString(), event: 'stopped' });
    },
  };
}
