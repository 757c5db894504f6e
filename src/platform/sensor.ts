/**
 * What the device measures. On the ESP32: the chip's internal temperature where it has a sensor,
 * uptime and free heap; in the host simulator: a simulated sensor.
 */
export interface Reading {
  /** Degrees Celsius, when the device has a temperature sensor. */
  temperature?: number;
  /** Seconds since boot. */
  uptime: number;
  /** Free heap in bytes, when the platform reports it. */
  freeHeap?: number;
}

export interface Sensor {
  read(): Reading;
}
