/**
 * The live dashboard's HTTP routes, mounted on the service's HTTP endpoint (cloud/http/server.ts):
 *
 *   GET  /                  the page (cloud/dashboard/public/index.html; no build step)
 *   GET  /dashboard.js, /dashboard.css
 *   GET  /api/state         the current LiveSnapshot as JSON
 *   GET  /api/events        server-sent events: a `state` event with the LiveSnapshot every second;
 *                           a client that has not taken what was sent (more than `maxBufferedBytes`
 *                           waiting, default 1 MiB: a few snapshots) is disconnected, so a stalled
 *                           page cannot make the service hold snapshots for it without end
 *   POST /api/attack        only when an attack action is configured (the demo): injects forged,
 *                           tampered and replayed messages; answers 202 with what was injected
 *
 * The page shows decrypted readings: the endpoint listens on 127.0.0.1 unless told otherwise
 * (docs/CLOUD.md), and on a loopback address the endpoint answers only requests addressed to the
 * loopback (cloud/http/server.ts: against DNS rebinding). POST /api/attack needs the header
 * `X-Cose-Flow-Action: attack`, which a page of another origin cannot send without a CORS
 * preflight this server never grants.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from '../http/server.js';
import type { LiveState } from './live-state.js';

/** The page's files, beside the compiled code's source tree (dist/cloud/dashboard → cloud/dashboard/public). */
export const PUBLIC_DIR = new URL('../../../cloud/dashboard/public/', import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export interface DashboardOptions {
  state: LiveState;
  /** Milliseconds between two `state` events (default 1000). */
  intervalMs?: number;
  /** An event-stream client with more than this many bytes not yet sent is dropped (default 1 MiB). */
  maxBufferedBytes?: number;
  /** The demo's attack: what a POST /api/attack runs. */
  attack?: () => Promise<Record<string, number>>;
}

export interface Dashboard {
  route: HttpRoute;
  /** Live event streams now. */
  readonly clients: number;
  /** Event-stream clients dropped for not keeping up. */
  readonly slowClientsDropped: number;
  /** Ends every event stream (before the HTTP server closes). */
  close(): void;
}

export function dashboard(options: DashboardOptions): Dashboard {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    try {
      files.set(path, { body: readFileSync(new URL(file, PUBLIC_DIR)), type });
    } catch (e) {
      throw new Error(
        `the dashboard page ${new URL(file, PUBLIC_DIR).pathname} is missing (${(e as NodeJS.ErrnoException).code}): ` +
          'run from a complete checkout or package of cose-flow',
      );
    }
  }
  const clients = new Set<ServerResponse>();
  const intervalMs = options.intervalMs ?? 1000;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  let slowDropped = 0;
  let timer: NodeJS.Timeout | undefined;
  const broadcast = () => {
    const data = `event: state\ndata: ${JSON.stringify(options.state.snapshot())}\n\n`;
    for (const res of clients) {
      if (res.writableLength > maxBuffered) {
        // Not reading (or far too slow): let it go; an EventSource reconnects by itself.
        slowDropped++;
        clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(data);
    }
    if (clients.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...SECURITY_HEADERS });
    res.end(`${JSON.stringify(body)}\n`);
  };

  const events = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      ...SECURITY_HEADERS,
    });
    res.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(options.state.snapshot())}\n\n`);
    clients.add(res);
    timer ??= setInterval(broadcast, intervalMs);
    req.on('close', () => {
      clients.delete(res);
      if (clients.size === 0 && timer !== undefined) {
        clearInterval(timer);
        timer = undefined;
      }
    });
  };

  const route: HttpRoute = (req, res, path) => {
    if (path === '/api/attack') {
      if (options.attack === undefined) return false;
      if (req.method !== 'POST') {
        res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('POST only\n');
        return true;
      }
      if (req.headers['x-cose-flow-action'] !== 'attack') {
        json(res, 403, { error: 'send the header X-Cose-Flow-Action: attack' });
        return true;
      }
      req.resume();
      options.attack().then(
        (injected) => json(res, 202, { injected }),
        (e: Error) => json(res, 503, { error: e.message }),
      );
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (path === '/favicon.ico') {
      res.writeHead(204, { 'Cache-Control': 'max-age=86400' }).end();
      return true;
    }
    const file = files.get(path);
    if (file !== undefined) {
      res.writeHead(200, { 'Content-Type': file.type, 'Cache-Control': 'no-cache', ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : file.body);
      return true;
    }
    if (path === '/api/state') {
      json(res, 200, options.state.snapshot());
      return true;
    }
    if (path === '/api/events') {
      events(req, res);
      return true;
    }
    return false;
  };

  return {
    route,
    get clients() {
      return clients.size;
    },
    get slowClientsDropped() {
      return slowDropped;
    },
    close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}
