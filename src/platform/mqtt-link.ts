/**
 * The one implementation of the `MqttLink` contract (src/platform/mqtt.ts), over a small client
 * interface that both MQTT.js (host-sim/mqtt.ts) and the Moddable SDK's mqtt/js
 * (src/moddable/sdk/mqtt.ts) can provide. Runtime-neutral: no Node or Moddable APIs here.
 *
 * An adapter is a `LinkTransport`: `open()` starts one connection attempt with a new client that
 * never reconnects by itself and reports to the `LinkEvents` it is given. `MqttLinkCore` keeps the
 * bookkeeping: one attempt at a time, settled once; unacknowledged publishes and subscribes,
 * rejected when the connection is lost or the link closed; subscriptions, made again on every new
 * connection before `onUp` handlers run; the up/down handlers. Events of a client the link has
 * given up on are ignored (and a late CONNACK ends that client).
 */
import type { LinkDown, MessageHandler, MqttLink, QoS } from './mqtt.js';

/** One connection's client, as a `LinkTransport` makes it. */
export interface LinkClient {
  /** Sends `payload`; `done` once acknowledged at `qos` (QoS 0: handed to the network), or with the error. */
  publish(topic: string, payload: Uint8Array, qos: QoS, done: (error?: Error) => void): void;
  /** Subscribes; `done` with the error, or with the granted QoS per topic (128: refused). */
  subscribe(topic: string, qos: QoS, done: (error?: Error, granted?: readonly number[]) => void): void;
  /** Drops the connection at once (no DISCONNECT needed); must not throw. Awaited only by `close()`. */
  end(): void | Promise<void>;
}

/** What a client reports to the link. Calls after the link gave up on the client are ignored. */
export interface LinkEvents {
  /** CONNACK: the broker accepted the connection. */
  connected(): void;
  /** The attempt failed, for this reason (a log line). Ignored once the link is up. */
  failed(reason: string): void;
  /** The connection closed; `early` is the reason given if that ends the attempt (no CONNACK yet). */
  closed(early: string): void;
  /** A message on a subscribed topic; `payload` may be shared: each handler gets its own copy. */
  message(topic: string, payload: Uint8Array): void;
}

export interface LinkTransport<C extends LinkClient> {
  /** Starts one connection attempt. Throws (the message is the reason) when it cannot start. */
  open(events: LinkEvents): C;
}

export const NOT_CONNECTED = 'not connected to the broker';
export const CONNECTION_LOST = 'the connection to the broker was lost';
export const LINK_CLOSED = 'the link was closed';

/** Delivers a message to every handler, each with its own copy; a handler's failure is its own. */
export function deliver(handlers: Iterable<MessageHandler>, topic: string, payload: Uint8Array): void {
  for (const handler of [...handlers]) {
    try {
      handler(topic, new Uint8Array(payload)); // a plain Uint8Array copy, also of a Node Buffer
    } catch {
      // the others still get the message
    }
  }
}

/** `url` without user name or password, for logs (runtime-neutral: no URL class needed). */
export function redactUrlCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1');
}

/** One client's life: from `open()` until the link gives up on it. */
interface Connection<C> {
  client: C | undefined;
  /** The attempt has settled (resolved or rejected). */
  settled: boolean;
  /** The link no longer listens to this client. */
  dropped: boolean;
}

export class MqttLinkCore<C extends LinkClient = LinkClient> implements MqttLink {
  readonly #transport: LinkTransport<C>;
  readonly #handlers = new Set<MessageHandler>();
  readonly #up = new Set<() => void>();
  readonly #down = new Set<(down: LinkDown) => void>();
  readonly #subscriptions = new Map<string, QoS>();
  /** Rejecters of the unacknowledged publishes and subscribes of the current connection. */
  readonly #pending = new Set<(error: Error) => void>();
  #current: Connection<C> | undefined;
  #connected = false;
  #attempt: Promise<void> | undefined;
  #abandon: ((error: Error) => void) | undefined;

  constructor(transport: LinkTransport<C>) {
    this.#transport = transport;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The client of the current connection or attempt (undefined between connections). */
  protected get currentClient(): C | undefined {
    return this.#current?.client;
  }

  connect(): Promise<void> {
    if (this.#connected) return Promise.resolve();
    if (this.#attempt !== undefined) return this.#attempt;
    const connection: Connection<C> = { client: undefined, settled: false, dropped: false };
    let resolveAttempt!: () => void;
    let rejectAttempt!: (error: Error) => void;
    const attempt = new Promise<void>((resolve, reject) => {
      resolveAttempt = resolve;
      rejectAttempt = reject;
    });
    const settle = (): boolean => {
      if (connection.settled) return false;
      connection.settled = true;
      this.#attempt = undefined;
      this.#abandon = undefined;
      return true;
    };
    const fail = (reason: string) => {
      if (!settle()) return;
      this.#drop(connection);
      this.#rejectPending(new Error(reason)); // the resubscribes of this attempt
      rejectAttempt(new Error(reason));
      for (const handler of [...this.#down]) handler({ reason });
    };
    const live = () => !connection.dropped && this.#current === connection;
    const events: LinkEvents = {
      connected: () => {
        if (!live()) {
          endQuietly(connection.client); // a CONNACK after the link gave up on it
          return;
        }
        if (connection.settled) return;
        this.#resubscribe(connection).then(
          () => {
            if (!live() || !settle()) return;
            this.#connected = true;
            resolveAttempt();
            for (const handler of [...this.#up]) handler();
          },
          (e: unknown) => fail(`resubscribing failed: ${message(e)}`),
        );
      },
      failed: (reason) => {
        if (live()) fail(reason);
      },
      closed: (early) => {
        if (!live()) return;
        if (!connection.settled) fail(early);
        else this.#lost(connection);
      },
      message: (topic, payload) => {
        if (live()) deliver(this.#handlers, topic, payload);
      },
    };
    this.#current = connection;
    this.#attempt = attempt;
    this.#abandon = (error) => {
      if (settle()) rejectAttempt(error);
    };
    try {
      connection.client = this.#transport.open(events);
    } catch (e) {
      fail(message(e));
      return attempt;
    }
    if (connection.dropped) endQuietly(connection.client); // it failed while being made
    return attempt;
  }

  /** Stops listening to the connection's client and ends it. */
  #drop(connection: Connection<C>): void {
    connection.dropped = true;
    if (this.#current === connection) this.#current = undefined;
    endQuietly(connection.client);
  }

  async #resubscribe(connection: Connection<C>): Promise<void> {
    for (const [topic, qos] of this.#subscriptions) {
      if (connection.dropped) return;
      await this.#subscribeOn(connection.client!, topic, qos);
    }
  }

  #lost(connection: Connection<C>): void {
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#drop(connection);
    this.#rejectPending(new Error(CONNECTION_LOST));
    if (wasConnected) for (const handler of [...this.#down]) handler({ reason: CONNECTION_LOST });
  }

  #rejectPending(error: Error): void {
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const reject of pending) reject(error);
  }

  /** Runs one request of the current connection; it settles once, and rejects if the connection is lost first. */
  #request(start: (done: (error?: Error) => void) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const settle = (error?: Error) => {
        if (done) return;
        done = true;
        this.#pending.delete(settle);
        if (error) reject(error);
        else resolve();
      };
      this.#pending.add(settle);
      try {
        start(settle);
      } catch (e) {
        settle(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  #subscribeOn(client: C, topic: string, qos: QoS): Promise<void> {
    return this.#request((done) =>
      client.subscribe(topic, qos, (error, granted) => {
        if (error) done(error);
        else if (granted?.some((g) => g === 128)) done(new Error(`the broker refused the subscription to ${topic}`));
        else done();
      }),
    );
  }

  publish(topic: string, payload: Uint8Array, { qos }: { qos: QoS }): Promise<void> {
    const client = this.#current?.client;
    if (!this.#connected || client === undefined) return Promise.reject(new Error(NOT_CONNECTED));
    return this.#request((done) => client.publish(topic, payload, qos, done));
  }

  async subscribe(topic: string, { qos }: { qos: QoS }): Promise<void> {
    const client = this.#current?.client;
    if (!this.#connected || client === undefined) throw new Error(NOT_CONNECTED);
    await this.#subscribeOn(client, topic, qos);
    this.#subscriptions.set(topic, qos);
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
    const connection = this.#current;
    const client = connection?.client;
    this.#connected = false;
    this.#abandon?.(new Error(LINK_CLOSED)); // an attempt under way rejects (no onDown: the application closes)
    this.#attempt = undefined;
    if (connection !== undefined) {
      connection.dropped = true;
      this.#current = undefined;
    }
    this.#rejectPending(new Error(LINK_CLOSED));
    if (client !== undefined) {
      try {
        await client.end();
      } catch {
        // closing for good: nothing to report
      }
    }
  }
}

function endQuietly(client: LinkClient | undefined): void {
  if (client === undefined) return;
  try {
    const ending = client.end();
    if (ending !== undefined) ending.catch(() => {});
  } catch {
    // the client is given up on either way
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
