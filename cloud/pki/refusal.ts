/**
 * Why the CA or the enrollment service says no. Every refusal has a stable code, written first in
 * its message ("key-conflict: …") and, over MQTT, first in the enrollment result's reason text, so
 * operators, logs, tests and devices act on the code, never on the wording.
 */

export type RefusalCode =
  /** The device id is not on the allow-list and the request carries no credential. */
  | 'not-allowed'
  /** The enrollment credential is malformed, names an unknown batch, or its MAC does not verify. */
  | 'bad-credential'
  /** The CSR is malformed, its self-signature (proof of possession) does not verify, or its subject or key is not of this profile. */
  | 'bad-csr'
  /** The device id is enrolled with another key; an operator must allow a re-key. */
  | 'key-conflict'
  /** The CSR's device id (CN) differs from the device id of the topic. */
  | 'device-mismatch'
  /** The device's certificate for this key has been revoked. */
  | 'revoked';

export const REFUSAL_CODES: readonly RefusalCode[] = [
  'not-allowed',
  'bad-credential',
  'bad-csr',
  'key-conflict',
  'device-mismatch',
  'revoked',
];

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
