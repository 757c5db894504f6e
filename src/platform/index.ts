/**
 * Everything the device application needs from the outside world, behind one small interface,
 * implemented once for the Moddable SDK (src/moddable/sdk/main.ts builds it: ESP32 and the desktop
 * simulator) and once for Node (host-sim/platform.ts). One file per concept.
 */
import type { CryptoProvider } from '../crypto/provider.js';
import type { Clock } from './clock.js';
import type { HukSource } from './huk.js';
import type { Logger } from './log.js';
import type { MqttLink } from './mqtt.js';
import type { Rng } from './rng.js';
import type { Sensor } from './sensor.js';
import type { KeyValueStore } from './store.js';
import type { Timers } from './timers.js';

export type { Clock } from './clock.js';
export type { DeviceIdentity, HukSource } from './huk.js';
export type { LogFields, Logger, LogLevel } from './log.js';
export type { LinkDown, MessageHandler, MqttConnection, MqttLink, QoS } from './mqtt.js';
export type { Rng } from './rng.js';
export type { Reading, Sensor } from './sensor.js';
export type { KeyValueStore } from './store.js';
export type { Timers } from './timers.js';

export interface Platform {
  clock: Clock;
  timers: Timers;
  store: KeyValueStore;
  rng: Rng;
  huk: HukSource;
  sensor: Sensor;
  mqtt: MqttLink;
  log: Logger;
  crypto: CryptoProvider;
}
