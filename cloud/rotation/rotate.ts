/**
 * A fleet-wide cloud key rotation, as one command (`cose-flow cloud rotate`):
 *
 * 1. listens to every device's key messages (`{prefix}/+/session`, its own subscription, beside the
 *    running cloud service) and opens each with the cloud keys — a key message proves, by the
 *    device's signature, which cloud key id (the recipient's kid) the device now seals to;
 * 2. makes the new key (`cloudKeygen --rotate`): the old one moves to `cloud-keys/retired/` with a
 *    deadline (`retire-at`); the running service picks both up within a second and opens sessions
 *    for either until then;
 * 3. sends every device it knows a session of (the store's devices, by their latest kid) a
 *    `"cloud-certificate"` control message carrying the new certificate and a `"rekey"`, both signed
 *    by the OLD key — the key the device trusts (docs/PROTOCOL.md §4.9) —, and again every
 *    `resendMs` to those still pending (their kid may have moved, a message may have been lost);
 * 4. reports progress: a device has moved when a key message of it names the new key id;
 * 5. retires the old key (`retireCloudKey`: private key deleted) when every device has moved, or at
 *    the deadline with the devices still pending named.
 *
 * Devices enrolled at the CA but never seen by the store (no session, so no kid to address a
 * control message to) are reported as pending; they get the new certificate at their next
 * enrollment or provisioning.
 */

import mqtt, { type IClientOptions } from 'mqtt';
import { Sleeper } from '../../node/sleeper.js';
import { toHex } from '../../src/bytes.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { makeControlMessage } from '../../src/profile/control.js';
import { decodeKid } from '../../src/profile/counter.js';
import { openKeyMessage } from '../../src/profile/key-message.js';
import { DEFAULT_PREFIX } from '../../src/profile/limits.js';
import { checkPrefix, parseTopic, topic, topicFilter } from '../../src/profile/topics.js';
import { type CloudKey, cloudKeygen, loadCloudKeys, retireCloudKey } from '../pki/cloud-keys.js';
import { openDataDir } from '../pki/data-dir.js';
import { readCertificates } from '../pki/files.js';
import { listDeviceRecords } from '../pki/records.js';
import { revocationChecker } from '../pki/revocation.js';
import { deviceCertificateVerifier } from '../pki/verify.js';
import type { Store } from '../store/store.js';

export const DEFAULT_RESEND_MS = 30_000;

export type RotationEvent =
  | { type: 'rotated'; newKid: string; oldKid: string; retireAt: string; devices: number }
  | { type: 'pushed'; deviceId: string; kid: string; round: number }
  | { type: 'unreachable'; deviceId: string; reason: string }
  | { type: 'moved'; deviceId: string; kid: string }
  | { type: 'progress'; moved: number; pending: number; total: number; pendingIds: string[] }
  | {
      type: 'retired';
      oldKid: string;
      reason: 'all-moved' | 'deadline';
      moved: number;
      pending: number;
      pendingIds: string[];
    };

export interface RotationOptions {
  dataDir: string;
  brokerUrl: string;
  crypto: CryptoProvider;
  /** The cloud service's store: which devices exist and their latest session kid. */
  store: Store;
  prefix?: string;
  /** Retire the old key at the latest this long after the rotation (also its `retire-at`). */
  deadlineMs: number;
  /** Push again to pending devices this often (default 30 s). */
  resendMs?: number;
  validityDays?: number;
  name?: string;
  mqttOptions?: IClientOptions;
  onEvent?: (event: RotationEvent) => void;
}

export interface RotationResult {
  newKid: string;
  oldKid: string;
  moved: string[];
  pending: string[];
  reason: 'all-moved' | 'deadline';
}

export async function rotateCloudKey(options: RotationOptions): Promise<RotationResult> {
  const { crypto } = options;
  const data = openDataDir(options.dataDir);
  const dataDir = data.root;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const emit = options.onEvent ?? (() => {});
  const resendMs = options.resendMs ?? DEFAULT_RESEND_MS;
  const old = [...loadCloudKeys(crypto, dataDir).values()].find((k) => k.current)!;
  const verifyCertificate = deviceCertificateVerifier({
    crypto,
    trustAnchors: readCertificates(data.caCertificate),
    isRevoked: revocationChecker(data),
  });

  // Devices: every one the store holds a session of (a kid to address), and every one the CA
  // issued a certificate to.
  const latestKid = new Map<string, Uint8Array>();
  for (const device of await options.store.listDevices()) {
    if (device.kidFloor !== null) latestKid.set(device.deviceId, device.kidFloor);
  }
  const all = new Set<string>([...latestKid.keys(), ...listDeviceRecords(data).map((r) => r.deviceId)]);
  const moved = new Set<string>();
  let keys: Map<string, CloudKey> = new Map([[old.kidHex, old]]);
  let newKid = '';
  const sleeper = new Sleeper();

  const client = await mqtt.connectAsync(options.brokerUrl, {
    clientId: `cose-flow-rotate-${Math.random().toString(16).slice(2, 10)}`,
    clean: true,
    reconnectPeriod: 1000,
    ...options.mqttOptions,
  });
  try {
    client.on('message', (name, payload) => {
      const parsed = parseTopic(name, prefix);
      if (parsed === undefined || parsed.kind !== 'session') return;
      let named = '';
      try {
        const opened = openKeyMessage(crypto, new Uint8Array(payload), {
          cloudKey: (kid) => {
            named = toHex(kid);
            return keys.get(named)?.key;
          },
          verifyCertificate,
          topicDeviceId: parsed.deviceId,
        });
        const known = latestKid.get(parsed.deviceId);
        if (known === undefined || decodeKid(opened.session.kid) > decodeKid(known)) {
          latestKid.set(parsed.deviceId, opened.session.kid);
        }
        all.add(parsed.deviceId);
        if (named === newKid && !moved.has(parsed.deviceId)) {
          moved.add(parsed.deviceId);
          emit({ type: 'moved', deviceId: parsed.deviceId, kid: toHex(opened.session.kid) });
          progress();
          sleeper.wake();
        }
      } catch {
        // not a key message that verifies: proves nothing
      }
    });
    await client.subscribeAsync(topicFilter('session', prefix), { qos: 1 });

    const started = Date.now();
    const retireAt = new Date(started + options.deadlineMs);
    const rotated = await cloudKeygen(crypto, dataDir, {
      rotate: true,
      retireAt,
      ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
      ...(options.name === undefined ? {} : { name: options.name }),
    });
    newKid = rotated.kidHex;
    keys = loadCloudKeys(crypto, dataDir);
    const certificate = keys.get(newKid)!.certificate;
    emit({ type: 'rotated', newKid, oldKid: old.kidHex, retireAt: retireAt.toISOString(), devices: all.size });

    const pending = () => [...all].filter((id) => !moved.has(id)).sort();
    function progress() {
      const ids = pending();
      emit({ type: 'progress', moved: moved.size, pending: ids.length, total: all.size, pendingIds: ids });
    }
    const push = async (round: number) => {
      const issuedAt = Math.floor(Date.now() / 1000);
      for (const deviceId of pending()) {
        const kid = latestKid.get(deviceId);
        if (kid === undefined) {
          if (round === 1) emit({ type: 'unreachable', deviceId, reason: 'no session known: no kid to address' });
          continue;
        }
        const send = (message: Uint8Array) =>
          client.publishAsync(topic('control', deviceId, prefix), Buffer.from(message), { qos: 1 });
        await send(
          makeControlMessage(crypto, old.key, {
            deviceId,
            request: 'cloud-certificate',
            kid,
            issuedAt,
            cloudCertificate: certificate,
          }),
        );
        await send(makeControlMessage(crypto, old.key, { deviceId, request: 'rekey', kid, issuedAt }));
        emit({ type: 'pushed', deviceId, kid: toHex(kid), round });
      }
    };

    progress();
    let round = 0;
    let nextPush = Date.now();
    while (pending().length > 0 && Date.now() < retireAt.getTime()) {
      if (Date.now() >= nextPush) {
        await push(++round);
        nextPush = Date.now() + resendMs;
      }
      await sleeper.sleep(Math.max(0, Math.min(nextPush, retireAt.getTime()) - Date.now()));
    }
    const left = pending();
    const reason = left.length === 0 ? 'all-moved' : 'deadline';
    retireCloudKey(dataDir, old.kidHex);
    emit({
      type: 'retired',
      oldKid: old.kidHex,
      reason,
      moved: moved.size,
      pending: left.length,
      pendingIds: left,
    });
    return { newKid, oldKid: old.kidHex, moved: [...moved].sort(), pending: left, reason };
  } finally {
    await client.endAsync(true);
  }
}
