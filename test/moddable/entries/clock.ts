/**
 * src/moddable/sdk/clock.ts and sensor.ts in XS over a fake `time` whose ticks are the Linux
 * simulator's wall clock (~1.8e12 ms): uptime counts from the start, not from 1970. Prints one
 * `name value` line per check for test/moddable/sdk.test.ts.
 */
import { moddableClock, uptimeCounter } from '../../../src/moddable/sdk/clock.js';
import { deviceSensor } from '../../../src/moddable/sdk/sensor.js';
import { emit, runMain } from '../../xs/entries/host.js';
import { fakeSdk } from '../sdk-fakes.js';

function sequence(ticks: number[]): number[] {
  let i = 0;
  const uptime = uptimeCounter(() => ticks[i]!);
  const out: number[] = [];
  for (i = 1; i < ticks.length; i++) out.push(uptime());
  return out;
}

runMain(() => {
  emit('start-uptime-ms', moddableClock.uptimeMs());
  emit('start-reading-uptime-s', deviceSensor().read().uptime);
  fakeSdk.ticks += 5250;
  emit('later-uptime-ms', moddableClock.uptimeMs());
  emit('later-reading-uptime-s', deviceSensor().read().uptime);
  fakeSdk.ticks -= 60_000; // the wall clock is set back a minute
  emit('set-back-uptime-ms', moddableClock.uptimeMs());
  fakeSdk.ticks += 1000;
  emit('after-set-back-uptime-ms', moddableClock.uptimeMs());
  emit('wall-clock', String(moddableClock.now() !== undefined));
  // ESP32: a 32-bit millisecond counter read as a signed integer
  emit('esp32-int32-wrap', sequence([2 ** 31 - 10, 2 ** 31 - 1, -(2 ** 31) + 5, -(2 ** 31) + 1005]).join(','));
  // a 32-bit unsigned counter
  emit('uint32-wrap', sequence([2 ** 32 - 10, 2 ** 32 - 1, 5, 1005]).join(','));
  emit('from-boot', sequence([100, 1100, 61_100]).join(','));
});
