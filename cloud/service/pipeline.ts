/**
 * The message path of the service, built from its parts: the session table (memory over the
 * store), the pending buffer, the commit queue, the re-key requester and the receiver that ties
 * them together (receiver.ts). The broker consumer feeds the receiver; the metrics count what it
 * does; the observers are told what it stored. The revocation check looks at revoked.json once
 * per event-loop turn (`revocationCheckerPerTurn`, in trust.ts).
 */
import type { CryptoProvider } from '../../src/crypto/provider.js';
import type { OpenedKeyMessage } from '../../src/profile/key-message.js';
import type { MqttConsumer } from '../mqtt/consumer.js';
import type { CloudKeyRing } from '../pki/cloud-keys.js';
import type { Store } from '../store/store.js';
import { Admission, type AdmissionLimits } from './admission.js';
import type { CloudKeyTracker } from './cloud-key-tracker.js';
import { CommitQueue, DEFAULT_MAX_BATCH } from './commit-queue.js';
import type { PendingData } from './data-path.js';
import type { Logger } from './log.js';
import type { ServiceMetrics } from './metrics.js';
import type { ServiceObservers } from './observers.js';
import { DEFAULT_PENDING, PendingBuffer, type PendingLimits } from './pending-buffer.js';
import { Receiver } from './receiver.js';
import { DEFAULT_REKEY_INTERVAL_MS, RekeyRequester } from './rekey.js';
import { SessionTable } from './session-table.js';
import type { Trust } from './trust.js';

export interface PipelineOptions {
  crypto: CryptoProvider;
  store: Store;
  trust: Trust;
  keys: CloudKeyRing;
  /** Which cloud key each device's latest session was sealed to: its re-key requests are signed with it. */
  tracker: CloudKeyTracker;
  openKeyMessage: (bytes: Uint8Array, topicDeviceId: string) => OpenedKeyMessage;
  observers: ServiceObservers;
  metrics: ServiceMetrics;
  /** Publishes re-key requests. */
  consumer: MqttConsumer;
  log: Logger;
  prefix: string;
  maxMessageBytes: number;
  /** The broker's in-flight window: the pending buffer holds at most half of it. */
  receiveMaximum: number;
  pending?: PendingLimits;
  maxBatch?: number;
  admission?: Partial<AdmissionLimits>;
  rekeyIntervalMs?: number;
  /** After each accepted payload (the --out file follows the store). */
  onAccepted?: () => void;
}

export interface Pipeline {
  sessions: SessionTable;
  pending: PendingBuffer<PendingData>;
  commits: CommitQueue;
  receiver: Receiver;
}

export function buildPipeline(o: PipelineOptions): Pipeline {
  const { metrics, log, store } = o;
  const sessions = new SessionTable(store, o.trust.sealer);
  const pending = new PendingBuffer<PendingData>(pendingLimits(o.pending, o.receiveMaximum, log));
  const commits = new CommitQueue(store, {
    maxBatch: o.maxBatch ?? DEFAULT_MAX_BATCH,
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
    crypto: o.crypto,
    store,
    // Signed with the key the device's session was sealed to (the key it trusts), else the current one.
    cloudKey: (deviceId) => {
      const kid = o.tracker.keyOf(deviceId);
      return (kid === undefined ? undefined : o.keys.get(kid)?.key) ?? o.keys.current().key;
    },
    prefix: o.prefix,
    publish: (topic, payload) => o.consumer.publish(topic, payload, 1),
    minIntervalMs: o.rekeyIntervalMs ?? DEFAULT_REKEY_INTERVAL_MS,
    onOutcome: (deviceId, kid, outcome, error) => {
      metrics.rekeyRequests.inc({ outcome });
      const fields = { event: 'rekey-request', deviceId, kid, outcome, error: error?.message };
      if (outcome === 'sent') log.info(fields, 'asked the device for a new session');
      else if (outcome === 'failed') log.warn(fields, 're-key request not sent');
      else log.debug(fields, 're-key request rate-limited');
    },
  });
  const receiver = new Receiver({
    crypto: o.crypto,
    store,
    sessions,
    pending,
    commits,
    rekey,
    sealer: o.trust.sealer,
    openKeyMessage: o.openKeyMessage,
    deliver: (payload) => o.observers.deliver(payload),
    metrics,
    log,
    prefix: o.prefix,
    maxMessageBytes: o.maxMessageBytes,
    isRevoked: o.trust.isRevoked,
    admission: new Admission(o.admission),
    ...(o.onAccepted === undefined ? {} : { onAccepted: o.onAccepted }),
    observe: (event) => o.observers.emit(event),
  });
  return { sessions, pending, commits, receiver };
}

/**
 * The pending buffer's limits: unacknowledged pending data must leave room in the broker's
 * in-flight window for the key messages they wait for (at most half the receive maximum).
 */
function pendingLimits(limits: PendingLimits | undefined, receiveMaximum: number, log: Logger): PendingLimits {
  const merged = { ...DEFAULT_PENDING, ...limits };
  if (merged.total <= receiveMaximum / 2) return merged;
  const total = Math.floor(receiveMaximum / 2);
  log.warn({ event: 'pending-limit' }, `pending buffer limited to ${total} (half the receive maximum)`);
  return { ...merged, total };
}
