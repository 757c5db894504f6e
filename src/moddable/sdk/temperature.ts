/**
 * The chip's internal temperature sensor, for `deviceSensor` (./sensor.ts). This module is the
 * desktop simulator's: it has none, so readings carry no `temp`. The ESP32 bundle
 * (scripts/bundle-moddable.js) maps it to ./temperature-esp32.js, the native sensor.
 */
export const chipTemperature: (() => number | undefined) | undefined = undefined;
