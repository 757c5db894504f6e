/**
 * The device application's entry on the Moddable SDK (ESP32 and the desktop simulator): reads the
 * manifest's `config` (mc/config), builds the platform and starts the application. Which crypto
 * provider and which HUK source are used is the build's choice: `@target/X.js` is resolved by the
 * bundler (scripts/bundle-moddable.js) to src/moddable/TARGET/X.ts — native crypto and the
 * hardware HUK on the ESP32 (../esp32/), noble with the platform RNG and a stored secret on a
 * desktop (../sim/).
 *
 * Config keys (manifest "config", all optional except broker): broker, mqttUsername, mqttPassword
 * (the SDK's Wi-Fi setup reads `ssid` and `password` itself), deviceId, prefix, rate or interval,
 * qos, rekeyMessages, rekeyAge, rekeyMinInterval, kidBlock, outbox, ca or caFingerprint (hex),
 * batch + enrollKey (hex), brokerCa (PEM, for mqtts://), deviceCertificate + caCertificate +
 * cloudCertificate (PEM, offline provisioning), printCsr, logLevel; see src/device/config.ts.
 */
import './abort-hook.js';
import { platformCrypto } from '@target/crypto.js';
import { platformHuk } from '@target/huk.js';
import config from 'mc/config';
import { DeviceApp } from '../../device/app.js';
import { readSettings, type Settings } from '../../device/config.js';
import type { Platform } from '../../platform/index.js';
import type { LogLevel } from '../../platform/log.js';
import { moddableClock } from './clock.js';
import { traceLogger } from './log.js';
import { ModdableMqttLink } from './mqtt.js';
import { configureNetwork, networkProblem } from './network.js';
import { deviceSensor } from './sensor.js';
import { PreferenceStore } from './store.js';
import { moddableTimers } from './timers.js';

function start(): void {
  const settings = config as unknown as Settings;
  const log = traceLogger((settings.logLevel as LogLevel | undefined) ?? 'info');
  let app: DeviceApp;
  try {
    const { config: deviceConfig, connection } = readSettings(settings);
    configureNetwork(connection.brokerCa === undefined ? {} : { brokerCa: connection.brokerCa });
    const networkError = networkProblem(connection.broker);
    if (networkError !== undefined) throw new RangeError(networkError);
    const crypto = platformCrypto();
    const store = new PreferenceStore();
    const huk = platformHuk(crypto, store);
    const platform: Platform = {
      clock: moddableClock,
      timers: moddableTimers,
      store,
      rng: crypto,
      huk,
      sensor: deviceSensor(),
      mqtt: new ModdableMqttLink(connection.broker, {
        clientId: connection.clientId ?? deviceConfig.deviceId ?? 'cose-flow-device',
        ...(connection.username === undefined ? {} : { username: connection.username }),
        ...(connection.password === undefined ? {} : { password: connection.password }),
        ...(connection.keepalive === undefined ? {} : { keepalive: connection.keepalive }),
      }),
      log,
      crypto,
    };
    app = new DeviceApp(platform, deviceConfig, {
      onEvent: (e) => {
        if (e.type === 'acknowledged' && e.seq % 10 === 0)
          log.log('info', 'progress', { kid: e.kid, seq: e.seq, acknowledged: app.stats.acknowledged });
      },
    });
  } catch (e) {
    log.log('error', 'configuration', { error: e instanceof Error ? e.message : String(e) });
    return;
  }
  app.start().then(
    () => log.log('info', 'started', { state: app.state, kid: app.kid }),
    (e: unknown) => log.log('error', 'start-failed', { error: e instanceof Error ? e.message : String(e) }),
  );
}

start();
