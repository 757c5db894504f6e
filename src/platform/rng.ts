/**
 * The platform's cryptographically secure random source: esp_fill_random on the ESP32 (hardware
 * RNG), the kernel on a desktop or host. Session keys and Base IVs are drawn from it. Never the
 * Moddable SDK's own RNG or `Math.random` (see docs/NOTES-XS.md, Random numbers).
 */
export interface Rng {
  randomBytes(length: number): Uint8Array;
}

/** A uniformly distributed number in [0, 1) from the RNG (for backoff jitter). */
export function randomFraction(rng: Rng): number {
  const b = rng.randomBytes(4);
  return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) / 0x100000000;
}
