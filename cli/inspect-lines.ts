/**
 * `cose-flow inspect --lines`: a capture of the broker's traffic as `mosquitto_sub -v -F '%t %x'`
 * writes it — one `TOPIC HEX` per line — judged in order as a receiver would: a key message that
 * opens teaches its session (for that device: the device id comes from the topic), data messages
 * after it open with it, and a data message seen before (same device, kid and seq) is reported as a
 * duplicate. One result per line: text, or with `--json` one object per line whose `payload` is the
 * reading as JSON when it is CBOR.
 */
import { decodePayload } from '../cloud/telemetry/payload.js';
import { fromHex } from '../src/bytes.js';
import type { Inspector, InspectResult } from './inspect-message.js';

/** `TOPIC HEX`: a topic without spaces, one space (or tab), an even number of hex digits. */
const LINE = /^(\S+)[ \t]+([0-9a-fA-F]*)\s*$/;

/** Whether `text` reads as a `TOPIC HEX` capture (its first non-empty line does). */
export function looksLikeLines(text: string): boolean {
  const first = text.split('\n').find((l) => l.trim() !== '');
  return first !== undefined && LINE.test(first) && first.includes('/');
}

export interface LineResult extends InspectResult {
  line: number;
  topic: string;
  /** The device id of the topic (`…/{id}/session` or `…/{id}/data`). */
  topicDeviceId?: string;
  /** A data message whose (device, kid, seq) an earlier line already had. */
  duplicateOf?: number;
  /** The payload as JSON when it is CBOR, mapped as the service's `--out` lines map it. */
  payload?: unknown;
}

/** Sets `result.payload` from its decrypted payload bytes when they are CBOR (else `payloadHex` says what they are). */
export function addReading(result: LineResult): void {
  if (result.payloadHex === undefined) return;
  const payload = decodePayload(fromHex(result.payloadHex));
  if (payload !== undefined) result.payload = payload.value;
}

/** `…/{deviceId}/{session|data}`: the device id, whatever the prefix. */
function deviceOf(topic: string): string | undefined {
  const parts = topic.split('/');
  const kind = parts.at(-1);
  return parts.length >= 2 && (kind === 'session' || kind === 'data') ? parts.at(-2) : undefined;
}

/** Judges every line of `text` in order; lines that are not `TOPIC HEX` are results of their own. */
export function inspectLines(inspector: Inspector, text: string): LineResult[] {
  const results: LineResult[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    const m = LINE.exec(raw);
    if (m === null || m[2]!.length % 2 !== 0) {
      results.push({
        line,
        topic: raw.trim().split(/\s+/)[0] ?? '',
        file: `line ${line}`,
        type: 'unknown',
        valid: false,
        reason: 'bad-line',
        error: 'not "TOPIC HEX" (mosquitto_sub -v -F \'%t %x\')',
        verified: false,
        opened: false,
        checked: [],
        bytes: 0,
      });
      return;
    }
    const topic = m[1]!;
    const deviceId = deviceOf(topic);
    const bytes = Uint8Array.from(Buffer.from(m[2]!, 'hex'));
    const result: LineResult = {
      ...inspector.inspect(`line ${line}`, bytes, deviceId),
      line,
      topic,
      ...(deviceId === undefined ? {} : { topicDeviceId: deviceId }),
    };
    if (result.type === 'data' && result.kid !== undefined && result.seq !== undefined) {
      const key = `${deviceId ?? ''}/${result.kid}/${result.seq}`;
      const earlier = seen.get(key);
      if (earlier !== undefined) result.duplicateOf = earlier;
      else if (result.valid) seen.set(key, line);
    }
    addReading(result);
    results.push(result);
  });
  return results;
}

/** One line of text per result. */
export function formatLine(r: LineResult): string {
  const what = r.type === 'session' ? 'key message' : r.type === 'data' ? 'data' : 'unknown';
  const where = [
    r.kid === undefined ? undefined : `kid ${r.kidCounter ?? r.kid}`,
    r.seq === undefined ? undefined : `seq ${r.seq}`,
  ]
    .filter((x) => x !== undefined)
    .join(' ');
  const status =
    r.duplicateOf !== undefined
      ? `duplicate of line ${r.duplicateOf}`
      : !r.valid
        ? `REFUSED ${r.reason ?? ''}: ${r.error ?? ''}`
        : r.opened
          ? r.type === 'session'
            ? 'opened'
            : `opened ${r.payload === undefined ? `h'${r.payloadHex}'` : JSON.stringify(r.payload)}`
          : `valid (not opened: ${r.error ?? 'no key for it'})`;
  return `${r.line}: ${r.topic} ${what}${where === '' ? '' : ` ${where}`}: ${status}\n`;
}

export function jsonLine(r: LineResult): string {
  const { diagnostic: _d, payloadDiagnostic: _p, file: _f, ...rest } = r;
  return `${JSON.stringify(rest)}\n`;
}
