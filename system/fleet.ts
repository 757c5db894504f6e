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
import { createBatch, readBatchSecret } from '../cloud/enroll/policy.js';
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
import { enrollmentKey } from '../src/profile/enrollment.js';
import { checkDeviceId } from '../src/profile/topics.js';

export const SIM_BATCH = 'sim';

export interface FleetOptions {
  broker: string;
  dataDir: string;
  devices: number;
  /** Messages per second per device. */
  rate: number;
  qos: 0 | 1;
  /**
   * Device ids are `${idPrefix}${n}` with n zero-padded to 4 digits whatever the fleet's size
   * (default "sim-"): sim-0001 … sim-9999, sim-10000 …, so runs of different sizes name the same devices.
   */
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
  /**
   * Spread the devices' starts over this many milliseconds, each at a random moment of its own
   * slot (default devices × `DEFAULT_RAMP_PER_DEVICE_MS`: a window proportional to the fleet, so
   * that connections and enrollments arrive at a rate the broker and the CA keep up with).
   */
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
  /** Made on first use (normally the device's start): its HUK, keys and store. */
  readonly app: DeviceApp;
}

export type FleetTotals = DeviceStats & {
  devices: number;
  /** The devices' error lines (what `errors` counts) by event: `{ 'enroll-refused': 2, … }`. */
  errorReasons: Record<string, number>;
  /** Devices that enrolled (got their certificate over MQTT) in this run. */
  enrolled: number;
  /** Enrollments that ran out of attempts without an answer (slow, not errors); they asked again. */
  enrollSlow: number;
  /** Requests waiting in the in-process enrollment service's queue (0 without one). */
  enrollQueue: number;
  /** Devices connected / in the sending state now. */
  connected: number;
  sending: number;
  /** Data messages waiting in the devices' offline queues. */
  queued: number;
};

export interface Fleet {
  devices: FleetDevice[];
  totals(): FleetTotals;
  /** Devices that enrolled so far in this run (`totals().enrolled`, without visiting every device). */
  enrolled(): number;
  /** Resolves when every device has been started (not necessarily connected). */
  started: Promise<void>;
  stop(options?: FleetStopOptions): Promise<FleetTotals>;
}

/** Digits of a simulated device's number, zero-padded: fixed, so an id never depends on the fleet's size. */
export const DEVICE_ID_WIDTH = 4;
/** The default start window per device (`rampMs`): 10 000 devices start over 50 s, 200 a second. */
export const DEFAULT_RAMP_PER_DEVICE_MS = 5;

/** The ids of devices 1 … count: `${prefix}0001` … (DEVICE_ID_WIDTH digits at least). */
export function deviceIds(count: number, prefix = 'sim-'): string[] {
  return Array.from({ length: count }, (_, i) =>
    checkDeviceId(`${prefix}${String(i + 1).padStart(DEVICE_ID_WIDTH, '0')}`),
  );
}

/**
 * Counts a device's log lines for the fleet's totals: error lines by event (the reasons behind
 * `errors`), `enrolled`, and `enroll-slow` warnings; every line still goes to `log`.
 */
function countingLogger(log: Logger, counts: { reasons: Map<string, number>; enrolled: number; slow: number }): Logger {
  return {
    log(level, event, fields) {
      if (level === 'error') counts.reasons.set(event, (counts.reasons.get(event) ?? 0) + 1);
      else if (event === 'enroll-slow') counts.slow++;
      else if (event === 'enrolled') counts.enrolled++;
      log.log(level, event, fields);
    },
  };
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
  /** The batch secret, read once (not once per device). */
  let batchSecret: Uint8Array | undefined;
  if (provisioned === undefined) {
    await ensureCa(options.dataDir, note);
    ca = readCertificates(openDataDir(options.dataDir).caCertificate)[0]!;
    if (readBatchSecret(options.dataDir, SIM_BATCH) === undefined) {
      createBatch(host, options.dataDir, SIM_BATCH);
      note(`made the enrollment batch "${SIM_BATCH}" in ${options.dataDir}`);
    }
    batchSecret = readBatchSecret(options.dataDir, SIM_BATCH)!;
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

  const counts = { reasons: new Map<string, number>(), enrolled: 0, slow: 0 };
  // Each device is made (HUK, keys, store: a few files) when first needed — normally at its
  // start, so a large fleet spreads that work over the start window instead of doing it all first.
  const made: FleetDevice[] = [];
  const make = (deviceId: string): FleetDevice => {
    const platform = hostPlatform({
      broker: options.broker,
      crypto,
      dir: join(options.dataDir, 'sim', deviceId),
      // Simulated devices: their files are written atomically, not fsynced — thousands of devices
      // starting at once would otherwise wait for the disk most of the time (node/atomic-write.ts).
      durable: false,
      deviceId,
      ...(options.brokerCa === undefined ? {} : { brokerCa: options.brokerCa }),
      log: countingLogger(
        provisioned === undefined ? (options.log ?? silentLogger) : notingRefusals(deviceId, options.log, note),
        counts,
      ),
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
              // What `ca batch key sim ID` prints (policy.ts batchDeviceKey), from the secret read once.
              credential: { batchId: SIM_BATCH, key: enrollmentKey(host, batchSecret!, deviceId) },
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
    const device = { deviceId, app };
    made.push(device);
    return device;
  };
  const devices: FleetDevice[] = ids.map((deviceId) => {
    let device: FleetDevice | undefined;
    return {
      deviceId,
      get app() {
        device ??= make(deviceId);
        return device.app;
      },
    };
  });

  const rampMs = options.rampMs ?? devices.length * DEFAULT_RAMP_PER_DEVICE_MS;
  const slot = rampMs / devices.length;
  let stopping = false;
  const starts: Promise<void>[] = [];
  let wake: (() => void) | undefined;
  // Device i starts at a random moment of its slot [i, i + 1) × rampMs / N (jitter within the
  // window), one device per turn of the event loop: making a device (its HUK and store) takes
  // synchronous fsyncs, and a burst of them must not starve the MQTT connections' I/O.
  const began = Date.now();
  const started = (async () => {
    for (let i = 0; i < devices.length && !stopping; i++) {
      const device = devices[i]!;
      const due = began + (i + Math.random()) * slot - Date.now();
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (rampMs > 0 && devices.length > 1 && due > 0) setTimeout(resolve, due);
        else setImmediate(resolve);
      });
      if (stopping) break;
      try {
        starts.push(device.app.start().catch((e: unknown) => note(`${device.deviceId}: ${String(e)}`)));
      } catch (e) {
        note(`${device.deviceId}: ${String(e)}`); // could not be made (its HUK or store)
      }
    }
  })();
  const cancelStarts = () => wake?.();

  const totals = (): FleetTotals => {
    const sum = {
      devices: devices.length,
      errorReasons: Object.fromEntries(counts.reasons),
      enrolled: counts.enrolled,
      enrollSlow: counts.slow,
      enrollQueue: service?.stats().queued ?? 0,
      connected: 0,
      sending: 0,
      queued: 0,
    } as FleetTotals;
    for (const { app } of made) {
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
    enrolled: () => counts.enrolled,
    started,
    async stop(stopOptions: FleetStopOptions = {}) {
      // Prompt at any size: devices not started yet never start; the enrollment service abandons
      // its queue instead of deciding it (the devices are stopping and would not hear the answers).
      stopping = true;
      cancelStarts();
      if (stopOptions.drainMs !== undefined && stopOptions.drainMs > 0) {
        const drainMs = stopOptions.drainMs;
        await Promise.all(made.map((d) => d.app.drain(drainMs)));
      }
      const closing = service?.close();
      await Promise.all(made.map((d) => d.app.stop()));
      await Promise.allSettled(starts);
      await closing;
      return totals();
    },
  };
}
