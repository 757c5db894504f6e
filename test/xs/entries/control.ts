/**
 * XS side of test/xs/control.test.ts: the device application boots inside XS with offline
 * certificates on a platform of stubs (memory store, a link that never connects, timers that never
 * fire; the MQTT message handler captured), with the crypto provider named by the first argument,
 * under a frozen Error.prototype as on the device. It starts its first session (kid 1), then is
 * handed each control message of the input in turn; for each it prints
 * `control NAME accepted|ignored REASON…`, and for the flood one line
 * `flood HANDLED VERIFICATIONS REASON=COUNT…` (signature checks counted at the provider).
 */
import { fromHex } from '../../../src/bytes.js';
import type { CryptoProvider } from '../../../src/crypto/provider.js';
import { DeviceApp } from '../../../src/device/app.js';
import { readSettings, type Settings } from '../../../src/device/config.js';
import { identityFromHuk } from '../../../src/device/identity.js';
import { fromBase64 } from '../../../src/pki/pem.js';
import type { Platform } from '../../../src/platform/index.js';
import { topic } from '../../../src/profile/topics.js';
import { emit, host, runMain } from './host.js';
import { providerNamed } from './providers.js';

interface Input {
  hukBase64: string;
  deviceId: string;
  settings: Settings;
  messages: { name: string; hex: string }[];
  flood: string[];
  floodCount: number;
}
declare const XS_INPUT: string;
const input = JSON.parse(XS_INPUT) as Input;

runMain(async () => {
  Object.freeze(Error.prototype);
  const base = providerNamed(host.scriptArgs[0]);
  let verifications = 0;
  // The provider with its signature check counted (the device's cost of a control message).
  const crypto: CryptoProvider = Object.create(base, {
    ecdsaP256Verify: {
      value: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => {
        verifications++;
        return base.ecdsaP256Verify(publicKey, message, signature);
      },
    },
  });
  const identity = identityFromHuk(base, fromBase64(input.hukBase64), 'test');
  const values = new Map<string, Uint8Array>();
  let deliver: ((name: string, payload: Uint8Array) => void) | undefined;
  const started = Date.now();
  const never = () => () => {};
  const platform: Platform = {
    clock: { now: () => Date.now(), uptimeMs: () => Date.now() - started },
    timers: { setTimeout: () => ({}), clearTimeout: () => {} },
    store: {
      get: (key) => values.get(key)?.slice(),
      set: (key, value) => {
        values.set(key, value.slice());
      },
      delete: (key) => {
        values.delete(key);
      },
    },
    rng: base,
    huk: { identity: () => identity },
    sensor: { read: () => ({ uptime: 1 }) },
    mqtt: {
      connected: false,
      connect: () => new Promise<void>(() => {}),
      publish: () => Promise.reject(new Error('not connected')),
      subscribe: () => Promise.reject(new Error('not connected')),
      onMessage: (handler) => {
        deliver = handler;
        return () => {};
      },
      onUp: never,
      onDown: never,
      close: () => Promise.resolve(),
    },
    log: { log() {} },
    crypto,
  };
  let last = '';
  const app = new DeviceApp(platform, readSettings(input.settings).config, {
    onEvent: (e) => {
      if (e.type === 'control') last = `${e.accepted ? 'accepted' : 'ignored'} ${e.reason}`;
    },
  });
  await app.start();
  emit('session', String(app.kid), app.state);
  const name = topic('control', input.deviceId);
  for (const m of input.messages) {
    last = 'nothing';
    deliver!(name, fromHex(m.hex));
    emit('control', m.name, last);
  }
  verifications = 0;
  const reasons = new Map<string, number>();
  const flood = input.flood.map(fromHex);
  for (let i = 0; i < input.floodCount; i++) {
    deliver!(name, flood[i % flood.length]!);
    const reason = last.split(' ')[1]!;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  emit('flood', String(input.floodCount), String(verifications), ...[...reasons].map(([r, n]) => `${r}=${n}`));
  emit('after', String(app.kid), app.state);
  await app.stop();
});
