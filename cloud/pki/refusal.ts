/**
 * Why the CA or the enrollment service says no. Every refusal has a stable code, written first in
 * its message ("key-conflict: …") and, over MQTT, first in the enrollment result's reason text, so
 * operators, logs, tests and devices act on the code, never on the wording.
 */
import type { EnrollRefusalCode } from '../../src/profile/enrollment.js';

/** The codes are part of the enrollment wire profile, where the device reads them too. */
export type RefusalCode = EnrollRefusalCode;

export class Refusal extends Error {
  readonly code: RefusalCode;
  /** The explanation without the code. */
  readonly detail: string;
  constructor(code: RefusalCode, detail: string) {
    super(`${code}: ${detail}`);
    this.name = 'Refusal';
    this.code = code;
    this.detail = detail;
  }
}

export function isRefusal(e: unknown): e is Refusal {
  return e instanceof Refusal;
}
