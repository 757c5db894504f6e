/**
 * The service's HTTP endpoint (node:http, no framework):
 *
 *   GET /metrics          Prometheus text exposition (0.0.4)
 *   GET /health, /healthz 200 {"status":"ok",…} when connected to the broker and the store works,
 *                         503 {"status":"degraded"|"stopping",…} otherwise
 *   …                     whatever the `routes` handle (the live dashboard, cloud/dashboard/routes.ts)
 *
 * Anything else is 404; methods other than GET and HEAD are 405.
 *
 * On a loopback address every route (the dashboard, /metrics and /health alike) answers only
 * requests whose Host header names the loopback (localhost, 127.0.0.1, [::1]); others get 421. A
 * web page that re-binds its own DNS name to 127.0.0.1 (DNS rebinding) then cannot read the
 * service from a browser on the same machine.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthReport {
  status: 'ok' | 'degraded' | 'stopping';
  [field: string]: unknown;
}

export interface HttpEndpointOptions {
  port: number;
  /** Default 127.0.0.1; 0.0.0.0 (or ::) for a scraper on another host. */
  host?: string;
  metrics: () => Promise<string>;
  metricsContentType: string;
  health: () => HealthReport;
  /** Tried first; returns true when it answered the request. */
  routes?: HttpRoute;
  /**
   * Answer only requests addressed to a loopback name. Default: true when `host` is a loopback
   * address (the default 127.0.0.1 is), false otherwise.
   */
  loopbackOnly?: boolean;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether a Host header names the loopback (any port). */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return LOOPBACK_NAMES.has(name.toLowerCase());
}

/** Whether a listen address is a loopback one. */
export function isLoopbackAddress(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\./.test(address);
}

export type HttpRoute = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

/** `[HOST:]PORT` (an IPv6 host in brackets) as given to --http, or undefined when it is not that. */
export function parseListen(text: string): { port: number; host?: string } | undefined {
  const m = /^(?:(.+):)?([0-9]{1,5})$/.exec(text);
  if (m === null || Number(m[2]) > 65535) return undefined;
  return { port: Number(m[2]), ...(m[1] === undefined ? {} : { host: m[1].replace(/^\[(.*)\]$/, '$1') }) };
}

export interface HttpEndpoint {
  readonly host: string;
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  close(): Promise<void>;
}

export async function startHttpEndpoint(options: HttpEndpointOptions): Promise<HttpEndpoint> {
  const host = options.host ?? '127.0.0.1';
  const loopbackOnly = options.loopbackOnly ?? isLoopbackAddress(host);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (loopbackOnly && !isLoopbackHost(req.headers.host)) {
      res
        .writeHead(421, { 'Content-Type': 'text/plain' })
        .end('misdirected request: this endpoint answers to localhost, 127.0.0.1 or [::1] only\n');
      return;
    }
    if (options.routes?.(req, res, path)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      options.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': options.metricsContentType, 'Cache-Control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (e: Error) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`metrics failed: ${e.message}\n`);
        },
      );
      return;
    }
    if (path === '/health' || path === '/healthz') {
      let report: HealthReport;
      try {
        report = options.health();
      } catch (e) {
        report = { status: 'degraded', error: (e as Error).message };
      }
      res.writeHead(report.status === 'ok' ? 200 : 503, {
        'Content-Type': 'application/json',
        'Cache-Control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : `${JSON.stringify(report)}\n`);
      return;
    }
    res
      .writeHead(404, { 'Content-Type': 'text/plain' })
      .end(`not found: try ${options.routes === undefined ? '' : '/ (the dashboard), '}/metrics or /health\n`);
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    host: address.address,
    port: address.port,
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
