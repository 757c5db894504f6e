/**
 * The table rows both stores read (the schema is the same on SQLite and PostgreSQL) and how each
 * becomes the record the Store interface hands out.
 */
import { copyBytes } from '../../src/bytes.js';
import { sessionClosedAt } from './rules.js';
import type { DeviceRecord, SessionGrace, SessionRecord, StoredPayload } from './store.js';

export interface DeviceRow {
  device_id: string;
  epoch: number;
  kid_floor: Uint8Array | null;
  created_at: number;
  floor_reset_at: number | null;
  cert_serial: string | null;
  sessions: number;
}

export interface SessionRow {
  device_id: string;
  epoch: number;
  kid: Uint8Array;
  wrapped_key: Uint8Array;
  key_message_digest: Uint8Array;
  created_at: number;
  win_size: number;
  win_highest: number | null;
  win_bitmap: Uint8Array;
  accepted: number;
  last_received_at: number | null;
  cert_serial: string | null;
  superseded_at: number | null;
  superseded_accepted: number | null;
  closed_at: number | null;
}

export interface PayloadRow {
  id: number;
  device_id: string;
  epoch: number;
  kid: Uint8Array;
  seq: number;
  received_at: number;
  stored_at: number;
  payload: Uint8Array;
}

export const DEVICE_SELECT = `
  SELECT d.*, (SELECT count(*) FROM sessions s WHERE s.device_id = d.device_id AND s.epoch = d.epoch) AS sessions
  FROM devices d`;

export function deviceRecord(r: DeviceRow): DeviceRecord {
  return {
    deviceId: r.device_id,
    kidFloor: r.kid_floor === null ? null : copyBytes(r.kid_floor),
    epoch: r.epoch,
    sessions: r.sessions,
    createdAt: r.created_at,
    floorResetAt: r.floor_reset_at,
    certificateSerial: r.cert_serial,
  };
}

export function sessionRecord(r: SessionRow, grace: SessionGrace, now: number): SessionRecord {
  return {
    deviceId: r.device_id,
    kid: copyBytes(r.kid),
    epoch: r.epoch,
    wrappedKey: copyBytes(r.wrapped_key),
    keyMessageDigest: copyBytes(r.key_message_digest),
    createdAt: r.created_at,
    window: { size: r.win_size, highest: r.win_highest, bitmap: copyBytes(r.win_bitmap) },
    accepted: r.accepted,
    lastReceivedAt: r.last_received_at,
    certificateSerial: r.cert_serial,
    supersededAt: r.superseded_at,
    closedAt: sessionClosedAt(r, grace, now),
  };
}

export function payloadRecord(r: PayloadRow): StoredPayload {
  return {
    id: r.id,
    deviceId: r.device_id,
    epoch: r.epoch,
    kid: copyBytes(r.kid),
    seq: r.seq,
    receivedAt: r.received_at,
    storedAt: r.stored_at,
    payload: copyBytes(r.payload),
  };
}
