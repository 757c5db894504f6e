/**
 * The platform (`src/platform/index.ts`) for one simulated device on Node: noble crypto by
 * default (the device's own choice; node:crypto for large fleets), MQTT.js, a file-backed store
 * with atomic writes, a file-backed or seeded HUK, a simulated sensor.
 */
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { nodeCrypto } from '../node/crypto.js';
import { nobleCrypto } from '../src/crypto/noble.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import type { Platform } from '../src/platform/index.js';
import type { Logger } from '../src/platform/log.js';
import { silentLogger } from '../src/platform/log.js';
import type { KeyValueStore } from '../src/platform/store.js';
import { hostClock } from './clock.js';
import { fileHuk, seededHuk } from './huk.js';
import { HostMqttLink } from './mqtt.js';
import { simulatedSensor } from './sensor.js';
import { FileStore } from './store.js';
import { hostTimers } from './timers.js';

export type CryptoChoice = 'noble' | 'node';

export function hostCrypto(choice: CryptoChoice = 'noble'): CryptoProvider {
  return choice === 'node' ? nodeCrypto() : nobleCrypto();
}

export interface HostPlatformOptions {
  broker: string;
  /** MQTT.js options: clientId (default the device id), username, password, TLS … */
  mqtt?: IClientOptions;
  /** mqtts:// only: the CA certificate (PEM or DER) that issued the broker's TLS certificate. */
  brokerCa?: string | Uint8Array;
  crypto?: CryptoProvider;
  /** The device's directory (store/ and huk); or give `store` and `huk` yourself. */
  dir?: string;
  store?: KeyValueStore;
  /** A seed for a reproducible HUK (instead of DIR/huk). */
  hukSeed?: Uint8Array;
  deviceId: string;
  log?: Logger;
  /** fsync the files of DIR (default true); false for the simulated devices of a large fleet. */
  durable?: boolean;
}

export function hostPlatform(options: HostPlatformOptions): Platform {
  const crypto = options.crypto ?? nobleCrypto();
  if (options.store === undefined && options.dir === undefined) throw new Error('hostPlatform needs dir or store');
  const sync = { sync: options.durable ?? true };
  const store = options.store ?? new FileStore(join(options.dir!, 'store'), sync);
  const huk =
    options.hukSeed !== undefined
      ? seededHuk(crypto, options.hukSeed, options.deviceId)
      : options.dir !== undefined
        ? fileHuk(crypto, join(options.dir, 'huk'), sync)
        : seededHuk(crypto, crypto.randomBytes(32), options.deviceId);
  const clock = hostClock();
  return {
    clock,
    timers: hostTimers,
    store,
    rng: crypto,
    huk,
    sensor: simulatedSensor(clock),
    mqtt: new HostMqttLink(options.broker, {
      mqtt: { clientId: options.deviceId, ...options.mqtt },
      ...(options.brokerCa === undefined ? {} : { brokerCa: options.brokerCa }),
    }),
    log: options.log ?? silentLogger,
    crypto,
  };
}
