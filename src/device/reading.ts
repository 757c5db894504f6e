/**
 * The data payload: one reading as a CBOR map with short text keys,
 *
 *   {"t": epoch ms (when the clock is known), "temp": °C (when measured), "up": uptime s, "heap": free bytes}
 *
 * (cose-flow/1 treats the payload as opaque application bytes; this is the application's format).
 * Keys are ASCII, so cbor-x encodes them the same on Node and XS. Runtime-neutral.
 */
import { CborError, decode, encode } from '../cbor/index.js';
import type { Reading } from '../platform/sensor.js';

export interface TimedReading extends Reading {
  /** Epoch milliseconds, when the device knows the time. */
  time?: number;
}

export function encodeReading(reading: TimedReading): Uint8Array {
  const map = new Map<string, number>();
  if (reading.time !== undefined) map.set('t', reading.time);
  if (reading.temperature !== undefined) map.set('temp', round(reading.temperature, 2));
  map.set('up', Math.floor(reading.uptime));
  if (reading.freeHeap !== undefined) map.set('heap', Math.floor(reading.freeHeap));
  return encode(map);
}

/** The inverse of `encodeReading` (for tests and tools); throws on anything else. */
export function decodeReading(bytes: Uint8Array): TimedReading {
  let map: unknown;
  try {
    map = decode(bytes, { maxDepth: 1 });
  } catch (e) {
    if (e instanceof CborError) throw new Error(`not a reading: ${e.message}`);
    throw e;
  }
  if (!(map instanceof Map)) throw new Error('not a reading: not a map');
  const number = (key: string): number | undefined => {
    const v = map.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw new Error(`not a reading: ${key} is not a number`);
    return v;
  };
  const uptime = number('up');
  if (uptime === undefined) throw new Error('not a reading: no uptime');
  const reading: TimedReading = { uptime };
  const time = number('t');
  if (time !== undefined) reading.time = time;
  const temperature = number('temp');
  if (temperature !== undefined) reading.temperature = temperature;
  const heap = number('heap');
  if (heap !== undefined) reading.freeHeap = heap;
  return reading;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
