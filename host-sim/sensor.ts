/**
 * A simulated sensor: a temperature that drifts around 22 °C (a slow sine plus noise), the
 * device's uptime, and a free-heap figure that wanders like an ESP32's.
 */
import type { Clock } from '../src/platform/clock.js';
import type { Reading, Sensor } from '../src/platform/sensor.js';

export function simulatedSensor(clock: Clock, random: () => number = Math.random): Sensor {
  const phase = random() * 2 * Math.PI;
  let heap = 180_000 + Math.floor(random() * 20_000);
  return {
    read(): Reading {
      const seconds = clock.uptimeMs() / 1000;
      const temperature = 22 + 3 * Math.sin(phase + seconds / 600) + (random() - 0.5) * 0.2;
      heap = Math.max(120_000, Math.min(220_000, heap + Math.floor((random() - 0.5) * 2000)));
      return { temperature, uptime: seconds, freeHeap: heap };
    },
  };
}
