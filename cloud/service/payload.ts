/** Delivered payloads and their JSON form, defined in cloud/telemetry/payload.ts (re-exported here). */
export * from '../telemetry/payload.js';
