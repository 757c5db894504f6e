/**
 * The device's own measurements: uptime (`Time.ticks`), free heap (the SDK's instrumentation,
 * "System Free Memory") and, where the chip has a temperature sensor and the build provides it,
 * the internal temperature (`chipTemperature`, given by the platform wiring).
 */
import Instrumentation from 'instrumentation';
import Time from 'time';
import type { Reading, Sensor } from '../../platform/sensor.js';

export function deviceSensor(chipTemperature?: () => number | undefined): Sensor {
  const freeMemory = Instrumentation.map('System Free Memory');
  return {
    read(): Reading {
      const reading: Reading = { uptime: Time.ticks / 1000 };
      const heap = freeMemory === undefined ? undefined : Instrumentation.get(freeMemory);
      if (typeof heap === 'number' && heap > 0) reading.freeHeap = heap;
      const temperature = chipTemperature?.();
      if (typeof temperature === 'number' && Number.isFinite(temperature)) reading.temperature = temperature;
      return reading;
    },
  };
}
