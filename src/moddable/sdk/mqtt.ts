/**
 * `MqttLink` (src/platform/mqtt.ts) over the Moddable SDK's mqtt/js client, the one SDK client
 * that completes QoS 2 (MQTT 3.1.1, clean session). The adapter covers its gaps:
 * - no reconnect of its own (`reconnectPeriod: 0`): each `connect()` makes a new Client for one
 *   connection, and the application reconnects with backoff and jitter (mqtt/js only knows a
 *   fixed period);
 * - mqtt/js keeps unacknowledged QoS 1/2 messages and publishes made while offline in RAM and
 *   re-sends them on its own reconnect; a Client here never reconnects, so nothing is re-sent
 *   behind the application's back: when the connection is lost, every pending publish rejects
 *   and the application sends the same bytes again on the next connection (the key message too);
 * - a QoS 0 publish buffered when the connection drops never calls back in mqtt/js: rejected here;
 * - publish/subscribe while not connected reject at once instead of being buffered;
 * - `end()` throws while connecting and sends no DISCONNECT (so a Will fires): `close()` copes;
 * - subscriptions are made again on every new connection before the link reports it is up;
 * - a failed attempt is reported as `error` with no argument: the reason given here says which
 *   broker, and how far the attempt got and why it stopped, as the sockets of network.ts saw it.
 */
import { Client } from 'mqtt/js';
import type { LinkDown, MessageHandler, MqttLink, QoS } from '../../platform/mqtt.js';
import { beginAttempt, connectionProgress, networkProblem } from './network.js';

export interface ModdableMqttOptions {
  clientId: string;
  username?: string;
  password?: string;
  /** Seconds (default 60). */
  keepalive?: number;
}

export class ModdableMqttLink implements MqttLink {
  readonly #url: string;
  readonly #options: ModdableMqttOptions;
  readonly #handlers = new Set<MessageHandler>();
  readonly #up = new Set<() => void>();
  readonly #down = new Set<(down: LinkDown) => void>();
  readonly #subscriptions = new Map<string, QoS>();
  readonly #pending = new Set<(error: Error) => void>();
  #client: Client | undefined;
  #connected = false;
  #attempt: Promise<void> | undefined;

  constructor(url: string, options: ModdableMqttOptions) {
    this.#url = url;
    this.#options = options;
  }

  get connected(): boolean {
    return this.#connected;
  }

  connect(): Promise<void> {
    if (this.#connected) return Promise.resolve();
    if (this.#attempt !== undefined) return this.#attempt;
    const problem = networkProblem(this.#url);
    if (problem !== undefined) {
      for (const handler of [...this.#down]) handler({ reason: problem });
      return Promise.reject(new Error(problem));
    }
    const attempt = new Promise<void>((resolve, reject) => {
      let settled = false;
      let client: Client;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        this.#attempt = undefined;
        if (this.#client === client) this.#client = undefined;
        safeEnd(client);
        reject(new Error(reason));
        for (const handler of [...this.#down]) handler({ reason });
      };
      beginAttempt(this.#url);
      try {
        client = new Client(this.#url, {
          clientId: this.#options.clientId,
          reconnectPeriod: 0,
          resubscribe: false,
          keepalive: this.#options.keepalive ?? 60,
          ...(this.#options.username === undefined ? {} : { username: this.#options.username }),
          ...(this.#options.password === undefined ? {} : { password: this.#options.password }),
        });
      } catch (e) {
        this.#attempt = undefined;
        reject(
          new Error(`connection to ${redactUrl(this.#url)} failed: ${e instanceof Error ? e.message : String(e)}`),
        );
        return;
      }
      this.#client = client;
      client.on('message', (name: string, payload: ArrayBuffer) => {
        if (this.#client !== client) return;
        for (const handler of [...this.#handlers]) {
          try {
            handler(name, new Uint8Array(payload.slice(0)));
          } catch {
            // a handler's failure is its own
          }
        }
      });
      const failed = (what: string) => `connection to ${redactUrl(this.#url)} ${what}, ${connectionProgress()}`;
      // mqtt/js passes no argument; should a later version pass one, it is kept.
      client.on('error', (error?: unknown) =>
        fail(error === undefined || error === null ? failed('failed') : `${failed('failed')} (${String(error)})`),
      );
      client.on('close', () => {
        if (!settled) fail(failed('closed before the broker accepted it'));
        else this.#lost(client);
      });
      client.on('connect', () => {
        if (settled) return;
        this.#resubscribe(client).then(
          () => {
            if (settled || this.#client !== client) return;
            settled = true;
            this.#attempt = undefined;
            this.#connected = true;
            resolve();
            for (const handler of [...this.#up]) handler();
          },
          (e: unknown) => fail(`resubscribing failed: ${String(e)}`),
        );
      });
    });
    this.#attempt = attempt;
    return attempt;
  }

  async #resubscribe(client: Client): Promise<void> {
    for (const [name, qos] of this.#subscriptions) await subscribeOn(client, name, qos);
  }

  #lost(client: Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    const wasConnected = this.#connected;
    this.#connected = false;
    safeEnd(client);
    const reason = 'the connection to the broker was lost';
    this.#rejectPending(new Error(reason));
    if (wasConnected) for (const handler of [...this.#down]) handler({ reason });
  }

  #rejectPending(error: Error): void {
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const reject of pending) reject(error);
  }

  publish(name: string, payload: Uint8Array, { qos }: { qos: QoS }): Promise<void> {
    const client = this.#client;
    if (!this.#connected || client === undefined) return Promise.reject(new Error('not connected to the broker'));
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const fail = (error: Error) => {
        if (done) return;
        done = true;
        this.#pending.delete(fail);
        reject(error);
      };
      this.#pending.add(fail);
      const data = payload.slice().buffer;
      client.publish(name, data, { qos }, (error?: Error) => {
        if (done) return;
        done = true;
        this.#pending.delete(fail);
        if (error) reject(error);
        else resolve();
      });
    });
  }

  async subscribe(name: string, { qos }: { qos: QoS }): Promise<void> {
    const client = this.#client;
    if (!this.#connected || client === undefined) throw new Error('not connected to the broker');
    await subscribeOn(client, name, qos);
    this.#subscriptions.set(name, qos);
  }

  onMessage(handler: MessageHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  onUp(handler: () => void): () => void {
    this.#up.add(handler);
    return () => this.#up.delete(handler);
  }

  onDown(handler: (down: LinkDown) => void): () => void {
    this.#down.add(handler);
    return () => this.#down.delete(handler);
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#connected = false;
    this.#attempt = undefined;
    this.#rejectPending(new Error('the link was closed'));
    if (client !== undefined) safeEnd(client);
  }
}

function subscribeOn(client: Client, name: string, qos: QoS): Promise<void> {
  return new Promise((resolve, reject) => {
    client.subscribe(name, { qos }, (error, granted) => {
      if (error) reject(error);
      else if (granted?.some((g) => (g.qos as number) === 128))
        reject(new Error(`the broker refused the subscription to ${name}`));
      else resolve();
    });
  });
}

/** `url` without user name or password, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1');
}

/** mqtt/js's end() throws while connecting; a link that gives up on a client must not. */
function safeEnd(client: Client): void {
  try {
    client.end(true);
  } catch {
    // connecting: the socket is dropped with the client
  }
}
