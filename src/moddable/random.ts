/**
 * Installs `globalThis.crypto.getRandomValues` (Web Crypto's shape) backed by the platform's RNG
 * in C (native/moddable/xs_cf_random.c: esp_fill_random on the ESP32, the kernel on a desktop),
 * unless the platform already has one. The Moddable SDK provides none, and noble reads it; never
 * use the SDK's own RNG for keys (docs/NOTES-XS.md, Random numbers).
 *
 * Import this module for its effect, before any module that uses noble: ES modules are evaluated
 * in import order, and @noble/curves looks for `crypto` once, when it is first evaluated.
 */
type GetRandomValues = <T extends ArrayBufferView>(array: T) => T;

const getRandomValues = native<GetRandomValues>('xs_cf_get_random_values');

const global = globalThis as { crypto?: { getRandomValues?: GetRandomValues } };
if (typeof global.crypto?.getRandomValues !== 'function') {
  Object.defineProperty(globalThis, 'crypto', {
    value: Object.freeze({ getRandomValues }),
    configurable: true,
    writable: true,
  });
}
