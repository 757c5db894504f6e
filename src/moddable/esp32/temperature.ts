/**
 * The chip's internal temperature sensor on the ESP32 (native/sensor/xs_cf_temperature.c, over
 * ESP-IDF's temperature_sensor driver): degrees Celsius on the chips that have one (ESP32-S2, S3,
 * C3, C6, H2…), `undefined` on the original ESP32 (no sensor) or when a reading fails. This is
 * `@target/temperature.js` on the ESP32; its C is built only for esp32 (native/manifest.json).
 */
const read = native<() => number | undefined>('xs_cf_temperature_read');

export function chipTemperature(): number | undefined {
  return read();
}
