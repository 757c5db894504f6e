/** The service's events, defined with its observers in cloud/telemetry/events.ts (re-exported here). */
export type { MessageKind, ServiceEvent, ServiceEventHandler } from '../telemetry/events.js';
