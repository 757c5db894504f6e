/**
 * The live dashboard as a plug-in of the cloud service: a `LiveState` fed by the service's events
 * and payloads, and — when the page is wanted — its routes (routes.ts) for the service's HTTP
 * endpoint to mount.
 */
import type { ServicePlugin } from '../telemetry/plugin.js';
import { type CloudKeyCount, LiveState, type LiveStateOptions } from './live-state.js';
import { type Dashboard, type DashboardOptions, dashboard } from './routes.js';

export interface DashboardPluginOptions {
  /** The rotation progress rows of each snapshot (the service's cloud keys and devices per key). */
  cloudKeys?: () => CloudKeyCount[];
  /** Serve the page and its API; without it only the live state is kept (the demo's terminal view). */
  page?: Omit<DashboardOptions, 'state'>;
  live?: LiveStateOptions;
}

export interface DashboardPlugin extends ServicePlugin {
  readonly live: LiveState;
  /** The page's routes, when `page` was given. */
  readonly page: Dashboard | undefined;
  /** Ends the page's event streams. */
  close(): void;
}

export function dashboardPlugin(options: DashboardPluginOptions = {}): DashboardPlugin {
  const live = new LiveState(options.live);
  if (options.cloudKeys !== undefined) live.setCloudKeys(options.cloudKeys);
  const page = options.page === undefined ? undefined : dashboard({ ...options.page, state: live });
  return {
    live,
    page,
    onEvent: (event) => live.record(event),
    onPayload: (payload) => live.recordPayload(payload),
    ...(page === undefined ? {} : { route: page.route }),
    close: () => page?.close(),
  };
}
