/**
 * `@target/temperature.js` on the desktop simulator, for `deviceSensor` (../sdk/sensor.ts): it
 * has no chip temperature sensor, so readings carry no `temp`. The ESP32's is
 * ../esp32/temperature.ts, the native sensor.
 */
export const chipTemperature: (() => number | undefined) | undefined = undefined;
