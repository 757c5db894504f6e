/**
 * What the device does with a control message (docs/PROTOCOL.md §4.9), as pure decisions — no I/O,
 * no clock of its own; src/device/app.ts acts on them:
 * - `screenControl`, before any signature is checked (src/profile/control.ts `receiveControlMessage`
 *   calls it through `admit`): the kid must name the current session, and a cloud re-key must
 *   respect `rekey.minIntervalMs` since the last one;
 * - `decideControl`, once the message verified: re-key, or for a new cloud certificate (already
 *   checked against the CA) — the one in use or the one announced (nothing to do), older or no newer
 *   than either (a rollback: ignored), else take it from the next session on.
 * `RateWindow` counts within fixed intervals: the signature-check budget (config.control) and the
 * control-ignored log lines.
 */
import { equal, toHex } from '../bytes.js';
import type { ControlMessage, ControlRefusal, OpenedControlMessage } from '../profile/control.js';
import { encodeKid } from '../profile/counter.js';
import { issuedLater } from './credentials.js';
import type { TrustedCloud } from './trust.js';

export interface ControlView {
  /** The current session's kid counter. */
  kid: number;
  /** Uptime (ms) now, and of the last re-key the cloud asked for (-Infinity: none yet). */
  now: number;
  lastCloudRekey: number;
  minRekeyIntervalMs: number;
  /** The cloud certificate in use, and the one announced for the next session. */
  cloud: TrustedCloud;
  next: TrustedCloud | undefined;
}

export type ControlAction =
  | { type: 'rekey' }
  | { type: 'accept'; request: string; reason: string }
  | { type: 'ignore'; request: string; reason: string }
  | { type: 'take-certificate'; cloud: TrustedCloud };

/** The checks that cost no signature check: a refusal, or undefined. */
export function screenControl(claimed: ControlMessage, view: ControlView): ControlRefusal | undefined {
  const kid = encodeKid(view.kid);
  if (!equal(claimed.kid, kid)) {
    return { request: claimed.request, reason: 'stale-kid', fields: { kid: toHex(claimed.kid), current: toHex(kid) } };
  }
  if (claimed.request === 'rekey' && view.now - view.lastCloudRekey < view.minRekeyIntervalMs) {
    return { request: 'rekey', reason: 'rate-limited' };
  }
  return undefined;
}

/** The refusal when the signature-check budget (config.control) is spent for this interval. */
export function overBudget(
  claimed: ControlMessage,
  policy: { maxVerifications: number; intervalMs: number },
): ControlRefusal {
  const limit = `${policy.maxVerifications} per ${policy.intervalMs} ms`;
  return { request: claimed.request, reason: 'verification-limit', fields: { limit } };
}

/**
 * What a verified message asks for. A new cloud certificate is taken only when it is newer
 * (notBefore) than the one in use and the one announced before: a retired certificate cannot come back.
 */
export function decideControl(
  message: OpenedControlMessage,
  announced: TrustedCloud | undefined,
  view: ControlView,
): ControlAction {
  if (message.request === 'rekey') return { type: 'rekey' };
  if (announced === undefined) return { type: 'ignore', request: message.request, reason: 'no certificate' };
  if (equal(announced.certificate, view.cloud.certificate)) {
    return { type: 'accept', request: 'cloud-certificate', reason: 'already in use' };
  }
  if (view.next !== undefined && equal(announced.certificate, view.next.certificate)) {
    return { type: 'accept', request: 'cloud-certificate', reason: 'already announced' };
  }
  for (const [than, name] of [
    [view.cloud, 'the cloud certificate in use'],
    [view.next, 'the one announced before'],
  ] as const) {
    if (than !== undefined && !issuedLater(announced.certificate, than.certificate)) {
      const reason = `not newer than ${name} (a rollback): notBefore must be later`;
      return { type: 'ignore', request: 'cloud-certificate', reason };
    }
  }
  return { type: 'take-certificate', cloud: announced };
}

/** At most `max` units per `intervalMs`, the interval starting at the first use after the last one ended. */
export class RateWindow {
  readonly #intervalMs: number;
  readonly #max: number;
  #from = -Infinity;
  #used = 0;

  constructor(intervalMs: number, max: number) {
    this.#intervalMs = intervalMs;
    this.#max = max;
  }

  /** Whether `count` more fit in the interval at `now` (they are taken when they do). */
  take(now: number, count = 1): boolean {
    if (now - this.#from >= this.#intervalMs) {
      this.#from = now;
      this.#used = 0;
    }
    if (this.#used + count > this.#max) return false;
    this.#used += count;
    return true;
  }
}
