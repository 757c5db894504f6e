/**
 * XS side of test/xs/offline-provisioning.test.ts: the device application boots inside XS with
 * certificates given as configuration settings (PEM, read by readSettings as the firmware reads
 * the manifest's config), on a platform of stubs (memory store, a link that never connects,
 * timers that never fire), with the crypto provider named by the first argument (noble or
 * native), under a frozen Error.prototype as on the device. For each case it
 * prints `case NAME STATE KEY-MESSAGE-HEX|CSR-BASE64|none ERROR…` (the error of
 * provisioning-refused, or `none`).
 */
import { toHex } from '../../../src/bytes.js';
import { DeviceApp } from '../../../src/device/app.js';
import { readSettings, type Settings } from '../../../src/device/config.js';
import { identityFromHuk } from '../../../src/device/identity.js';
import { fromBase64 } from '../../../src/pki/pem.js';
import type { Platform } from '../../../src/platform/index.js';
import type { LogFields } from '../../../src/platform/log.js';
import { emit, host, runMain } from './host.js';
import { providerNamed } from './providers.js';

interface Input {
  hukBase64: string;
  cases: { name: string; settings: Settings }[];
}
declare const XS_INPUT: string;
const input = JSON.parse(XS_INPUT) as Input;

function platform(): { platform: Platform; errors: string[]; csr: string[] } {
  const crypto = providerNamed(host.scriptArgs[0]);
  const identity = identityFromHuk(crypto, fromBase64(input.hukBase64), 'test');
  const values = new Map<string, Uint8Array>();
  const errors: string[] = [];
  const csr: string[] = [];
  const started = Date.now();
  const never = () => () => {};
  return {
    errors,
    csr,
    platform: {
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
      rng: crypto,
      huk: { identity: () => identity },
      sensor: { read: () => ({ uptime: 1 }) },
      mqtt: {
        connected: false,
        connect: () => new Promise<void>(() => {}),
        publish: () => Promise.reject(new Error('not connected')),
        subscribe: () => Promise.reject(new Error('not connected')),
        onMessage: never,
        onUp: never,
        onDown: never,
        close: () => Promise.resolve(),
      },
      log: {
        log(_level: string, event: string, fields?: LogFields) {
          if (event === 'provisioning-refused') errors.push(String(fields?.error));
          if (event === 'csr') csr.push(String(fields?.csr));
        },
      },
      crypto,
    },
  };
}

runMain(async () => {
  Object.freeze(Error.prototype);
  for (const { name, settings } of input.cases) {
    const { platform: p, errors, csr } = platform();
    let keyMessage = 'none';
    const app = new DeviceApp(p, readSettings(settings).config, {
      onEvent: (e) => {
        if (e.type === 'session') keyMessage = toHex(e.keyMessage);
      },
    });
    await app.start();
    emit('case', name, app.state, csr[0] ?? keyMessage, errors[0] ?? 'none');
    await app.stop();
  }
});
