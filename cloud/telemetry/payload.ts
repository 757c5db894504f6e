/**
 * A delivered payload, and its JSON form (one line of `--out`, docs/CLOUD.md):
 *
 *   {"deviceId": "dev-1", "kid": "01", "seq": 7, "receivedAt": "2026-…Z",
 *    "payloadHex": "a2…", "payload": {…}}
 *
 * `payload` is the payload decoded as CBOR and turned into JSON, present when the bytes are one
 * well-formed CBOR item (the convention; the profile treats payloads as opaque bytes):
 *   map → object (keys as strings), array → array, text → string, integer → number (or a string
 *   beyond 2^53), float → number (NaN and ±Infinity → null), true/false/null, undefined → null,
 *   byte string → {"$bytes": "<hex>"}, tag → {"$tag": n, "value": …} (tags 0/1, times, → ISO 8601).
 *
 * Shared by the service (which delivers payloads and writes --out) and the dashboard (which shows
 * the last reading of each device).
 */
import { toHex } from '../../src/bytes.js';
import { decode, Tag } from '../../src/cbor/index.js';

export interface DeliveredPayload {
  deviceId: string;
  kid: Uint8Array;
  /** The kid in lowercase hex. */
  kidHex: string;
  seq: number;
  /** When the service received the message from the broker. */
  receivedAt: Date;
  /** The decrypted payload bytes. */
  payload: Uint8Array;
}

export interface PayloadJson {
  deviceId: string;
  kid: string;
  seq: number;
  receivedAt: string;
  payloadHex: string;
  payload?: unknown;
}

/** The payload bytes decoded as CBOR and mapped to JSON values, or undefined when they are not CBOR. */
export function decodePayload(bytes: Uint8Array): { value: unknown } | undefined {
  if (bytes.length === 0) return undefined;
  let value: unknown;
  try {
    value = decode(bytes, { allowTags: 'any', maxDepth: 32 });
  } catch {
    return undefined;
  }
  return { value: cborToJson(value) };
}

export function cborToJson(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint')
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (value instanceof Uint8Array) return { $bytes: toHex(value) };
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) return value.map(cborToJson);
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[typeof k === 'string' ? k : JSON.stringify(cborToJson(k))] = cborToJson(v);
    return out;
  }
  if (value instanceof Tag) return { $tag: value.tag, value: cborToJson(value.value) };
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = cborToJson(v);
    return out;
  }
  return null;
}

export function payloadJson(p: {
  deviceId: string;
  kid: Uint8Array;
  seq: number;
  receivedAt: number | Date;
  payload: Uint8Array;
}): PayloadJson {
  const out: PayloadJson = {
    deviceId: p.deviceId,
    kid: toHex(p.kid),
    seq: p.seq,
    receivedAt: new Date(p.receivedAt).toISOString(),
    payloadHex: toHex(p.payload),
  };
  const decoded = decodePayload(p.payload);
  if (decoded !== undefined) out.payload = decoded.value;
  return out;
}
