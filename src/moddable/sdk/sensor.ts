/**
 * The device's own measurements: uptime (since the application started, clock.ts), free heap (the SDK's instrumentation,
 * "System Free Memory") and, where the chip has a temperature sensor, the internal temperature
 * (`chipTemperature`: by default the target's `@target/temperature.js` — the native sensor on the
 * ESP32; the desktop simulator and the original ESP32 have none, and their readings no `temp`).
 */

import { chipTemperature as platformTemperature } from '@target/temperature.js';
import Instrumentation from 'instrumentation';
import type { Reading, Sensor } from '../../platform/sensor.js';
import { uptimeMs } from './clock.js';

export function deviceSensor(chipTemperature: (() => number | undefined) | undefined = platformTemperature): Sensor {
  const freeMemory = Instrumentation.map('System Free Memory');
  return {
    read(): Reading {
      const reading: Reading = { uptime: uptimeMs() / 1000 };
      const heap = freeMemory === undefined ? undefined : Instrumentation.get(freeMemory);
      if (typeof heap === 'number' && heap > 0) reading.freeHeap = heap;
      const temperature = chipTemperature?.();
      if (typeof temperature === 'number' && Number.isFinite(temperature)) reading.temperature = temperature;
      return reading;
    },
  };
}
