/**
 * A plug-in of the cloud service: fed the service's events and delivered payloads, optionally
 * answering HTTP requests on the service's endpoint. The live dashboard (cloud/dashboard/plugin.ts)
 * is one; the service plugs it in without knowing what it does with what it is fed.
 */
import type { HttpRoute } from '../http/server.js';
import type { ServiceEvent } from './events.js';
import type { DeliveredPayload } from './payload.js';

export interface ServicePlugin {
  /** Each session stored, message refused and duplicate (must not throw). */
  onEvent?: (event: ServiceEvent) => void;
  /** Each payload stored, after its commit and before its acknowledgement. */
  onPayload?: (payload: DeliveredPayload) => void | Promise<void>;
  /** Requests to the service's HTTP endpoint, tried before its own (/metrics, /health). */
  route?: HttpRoute;
  /** When the service stops (before its HTTP endpoint closes). */
  close?: () => void;
}
