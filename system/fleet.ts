/**
 * The host simulator's fleet: N independent simulated devices, each the real device application
 * (src/device/app.ts) on its own host platform — own HUK and keys, own store (certificates, kid
 * reservation), own MQTT connection — in one Node process.
 *
 * Devices live in DIR/sim/<deviceId>/ (huk, store/). A device without a certificate enrolls over
 * MQTT like the firmware; unless told otherwise the fleet serves those enrollments itself with the
 * CA in DIR (an in-process `cose-flow ca serve`), with a batch credential "sim" made on first use.
 * A DIR without a CA gets one (and a cloud key), as `cose-flow ca init` + `cloud keygen` would.
 *
 * Offline provisioning (`provisioned`): each device is given its certificates in its configuration,
 * as a factory does at flashing time; it checks them at boot and never enrolls, so no CA is made
 * and no enrollment service runs. A device that refuses its certificates says why in a note.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { batchDeviceKey, createBatch, readBatchSecret } from '../cloud/enroll/policy.js';
import { type EnrollmentService, startEnrollmentService } from '../cloud/enroll/service.js';
import { cloudKeygen } from '../cloud/pki/cloud-keys.js';
import { openDataDir, PRIVATE_DIR_MODE } from '../cloud/pki/data-dir.js';
import { readCertificates } from '../cloud/pki/files.js';
import { initCa } from '../cloud/pki/setup.js';
import { caPem } from '../host-sim/mqtt.js';
import { type CryptoChoice, hostCrypto, hostPlatform } from '../host-sim/platform.js';
import { nodeCrypto } from '../node/crypto.js';
import { DeviceApp, type DeviceEvent, type DeviceStats } from '../src/device/app.js';
import { type DeviceConfig, deviceConfig } from '../src/device/config.js';
import type { Credentials } from '../src/device/credentials.js';
import type { Logger } from '../src/platform/log.js';
import { silentLogger } from '../src/platform/log.js';
import { checkDeviceId } from '../src/profile/topics.js';

export const SIM_BATCH = 'sim';

export interface FleetOptions {
  broker: string;
  dataDir: string;
  devices: number;
  /** Messages per second per device. */
  rate: number;
  qos: 0 | 1;
  /** Device ids are `${idPrefix}${n}` with n zero-padded to 4 digits (default "sim-"). */
  idPrefix?: string;
  crypto?: CryptoChoice;
  username?: string;
  password?: string;
  /** mqtts:// only: the CA certificate (PEM or DER) that issued the broker's TLS certificate. */
  brokerCa?: string | Uint8Array;
  /** Serve enrollments in process with the CA in dataDir (default true; never with `provisioned`). */
  enrollService?: boolean;
  /**
   * Offline provisioning: each device's certificates (host-sim/provisioning.ts readProvisioning),
   * put in its configuration (`DeviceConfig.provisioned`). The devices never enroll.
   */
  provisioned?: (deviceId: string) => Credentials;
  /** Spread the devices' starts over this many milliseconds (default min(devices × 20, 10 000)). */
  rampMs?: number;
  /** Device configuration on top of the defaults (rekey policy, prefix, …). */
  config?: Partial<DeviceConfig>;
  /** Each device's log lines. */
  log?: Logger;
  /** Notes for the operator (made a CA, started the enrollment service, …). */
  note?: (line: string) => void;
  /** Every device's events (sessions, sealed and acknowledged messages, …). */
  onEvent?: (deviceId: string, event: DeviceEvent) => void;
}

export interface FleetStopOptions {
  /**
   * First stop taking readings and wait up to this many milliseconds for every queued message to
   * be acknowledged (default 0: stop at once, leaving queued messages unsent).
   */
  drainMs?: number;
}

export interface FleetDevice {
  deviceId: string;
  app: DeviceApp;
}

export type FleetTotals = DeviceStats & {
  devices: number;
  /** Devices connected / in the sending state now. */
  connected: number;
  sending: number;
  /** Data messages waiting in the devices' offline queues. */
  queued: number;
};

export interface Fleet {
  devices: FleetDevice[];
  totals(): FleetTotals;
  /** Resolves when every device has been started (not necessarily connected). */
  started: Promise<void>;
  stop(options?: FleetStopOptions): Promise<FleetTotals>;
}

export function deviceIds(count: number, prefix = 'sim-'): string[] {
  const width = Math.max(4, String(count).length);
  return Array.from({ length: count }, (_, i) => checkDeviceId(`${prefix}${String(i + 1).padStart(width, '0')}`));
}

/** Makes a CA and a cloud key in `dir` when it has none (what `ca init` and `cloud keygen` do). */
export async function ensureCa(dir: string, note: (line: string) => void = () => {}): Promise<void> {
  const layout = openDataDir(dir);
  const host = nodeCrypto();
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (!existsSync(layout.caCertificate)) {
    const { fingerprintHex } = await initCa(host, dir, { name: 'cose-flow simulator CA' });
    note(`made a CA in ${dir} (SHA-256 ${fingerprintHex})`);
  }
  if (!existsSync(layout.cloudCertificate)) {
    const { kidHex } = await cloudKeygen(host, dir);
    note(`made the cloud key and certificate in ${dir} (cloud key id ${kidHex})`);
  }
}

/** The device's log, with a note for the operator when it refuses its configured certificates. */
function notingRefusals(deviceId: string, log: Logger | undefined, note: (line: string) => void): Logger {
  return {
    log(level, event, fields) {
      log?.log(level, event, fields);
      if (event === 'provisioning-refused')
        note(`${deviceId}: refused its configured certificates: ${String(fields?.error)}`);
    },
  };
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  if (!Number.isInteger(options.devices) || options.devices < 1) throw new RangeError('devices must be ≥ 1');
  if (!(options.rate > 0)) throw new RangeError('rate must be > 0 messages per second');
  const note = options.note ?? (() => {});
  const host = nodeCrypto();
  const crypto = hostCrypto(options.crypto ?? 'noble');
  const provisioned = options.provisioned;
  let ca: Uint8Array | undefined;
  if (provisioned === undefined) {
    await ensureCa(options.dataDir, note);
    ca = readCertificates(openDataDir(options.dataDir).caCertificate)[0]!;
    if (readBatchSecret(options.dataDir, SIM_BATCH) === undefined) {
      createBatch(host, options.dataDir, SIM_BATCH);
      note(`made the enrollment batch "${SIM_BATCH}" in ${options.dataDir}`);
    }
  }
  const ids = deviceIds(options.devices, options.idPrefix ?? 'sim-');
  let service: EnrollmentService | undefined;
  if (provisioned === undefined && (options.enrollService ?? true)) {
    service = await startEnrollmentService({
      dataDir: options.dataDir,
      crypto: host,
      brokerUrl: options.broker,
      maxQueue: Math.max(256, options.devices * 2),
      minIntervalMs: 200,
      mqttOptions: {
        ...(options.username === undefined ? {} : { username: options.username }),
        ...(options.password === undefined ? {} : { password: options.password }),
        ...(options.brokerCa === undefined ? {} : { ca: caPem(options.brokerCa), rejectUnauthorized: true }),
      },
      ...(options.config?.prefix === undefined ? {} : { prefix: options.config.prefix }),
    });
    note(`serving enrollments with the CA in ${options.dataDir}`);
  }

  const devices: FleetDevice[] = ids.map((deviceId) => {
    const platform = hostPlatform({
      broker: options.broker,
      crypto,
      dir: join(options.dataDir, 'sim', deviceId),
      deviceId,
      ...(options.brokerCa === undefined ? {} : { brokerCa: options.brokerCa }),
      log: provisioned === undefined ? (options.log ?? silentLogger) : notingRefusals(deviceId, options.log, note),
      mqtt: {
        clientId: deviceId,
        ...(options.username === undefined ? {} : { username: options.username }),
        ...(options.password === undefined ? {} : { password: options.password }),
      },
    });
    const config = deviceConfig({
      ...options.config,
      deviceId,
      intervalMs: 1000 / options.rate,
      dataQos: options.qos,
      ...(provisioned === undefined
        ? {
            enroll: {
              ca: ca!,
              credential: { batchId: SIM_BATCH, key: batchDeviceKey(host, options.dataDir, SIM_BATCH, deviceId) },
              retry: { maxAttempts: 10, responseTimeoutMs: 5000, initialDelayMs: 500, maxDelayMs: 10_000 },
            },
          }
        : { provisioned: provisioned(deviceId) }),
    });
    const onEvent = options.onEvent;
    const app = new DeviceApp(
      platform,
      config,
      onEvent === undefined ? {} : { onEvent: (event) => onEvent(deviceId, event) },
    );
    return { deviceId, app };
  });

  const rampMs = options.rampMs ?? Math.min(options.devices * 20, 10_000);
  let stopping = false;
  const starts: Promise<void>[] = [];
  const started = (async () => {
    for (let i = 0; i < devices.length && !stopping; i++) {
      const device = devices[i]!;
      starts.push(device.app.start().catch((e: unknown) => note(`${device.deviceId}: ${String(e)}`)));
      if (rampMs > 0 && i + 1 < devices.length) await new Promise((r) => setTimeout(r, rampMs / devices.length));
    }
  })();

  const totals = (): FleetTotals => {
    const sum = {
      devices: devices.length,
      connected: 0,
      sending: 0,
      queued: 0,
    } as FleetTotals;
    for (const { app } of devices) {
      for (const [key, value] of Object.entries(app.stats)) {
        const k = key as keyof DeviceStats;
        sum[k] = (sum[k] ?? 0) + value;
      }
      if (app.state === 'sending') sum.sending++;
      if (app.connected) sum.connected++;
      sum.queued += app.queued;
    }
    return sum;
  };

  return {
    devices,
    totals,
    started,
    async stop(stopOptions: FleetStopOptions = {}) {
      stopping = true;
      await started;
      if (stopOptions.drainMs !== undefined && stopOptions.drainMs > 0) {
        const drainMs = stopOptions.drainMs;
        await Promise.all(devices.map((d) => d.app.drain(drainMs)));
      }
      await Promise.all(devices.map((d) => d.app.stop()));
      await Promise.allSettled(starts);
      if (service !== undefined) await service.close();
      return totals();
    },
  };
}
