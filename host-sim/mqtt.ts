/**
 * The device MQTT interface (`src/platform/mqtt.ts`) on Node, over MQTT.js: what the host
 * simulator's devices use where the firmware uses the Moddable SDK's client.
 *
 * - `HostMqttLink`: the `MqttLink` the device application drives (one MQTT.js client per
 *   connection, no reconnects of its own: the application reconnects with backoff and jitter);
 * - `connectDeviceMqtt`: a plain auto-reconnecting `MqttConnection` for single flows:
 *
 *   const mqtt = await connectDeviceMqtt('mqtt://127.0.0.1:1883', { clientId: 'dev-1' });
 *   await enrollDevice({ mqtt, … });
 *   await mqtt.close();
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { LinkDown, MessageHandler, MqttConnection, MqttLink, QoS } from '../src/platform/mqtt.js';

export interface HostMqttConnection extends MqttConnection {
  readonly client: MqttClient;
  /** Disconnects (in-flight QoS 1/2 messages are finished first unless `force`). */
  close(force?: boolean): Promise<void>;
}

/** Wraps a connected (or connecting) MQTT.js client. */
export function deviceMqtt(client: MqttClient): HostMqttConnection {
  const handlers = new Set<MessageHandler>();
  client.on('message', (topic, payload) => {
    for (const handler of [...handlers]) {
      // Each handler owns its copy, a plain Uint8Array (not a Buffer), as on the device.
      try {
        handler(topic, new Uint8Array(payload));
      } catch {
        // a handler's failure is its own; the others still get the message
      }
    }
  });
  return {
    client,
    async publish(topic, payload, { qos }) {
      if (!client.connected) throw new Error('not connected to the broker');
      await client.publishAsync(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos });
    },
    async subscribe(topic, { qos }) {
      if (!client.connected) throw new Error('not connected to the broker');
      const granted = await client.subscribeAsync(topic, { qos });
      if (granted.some((g) => g.qos === 128)) throw new Error(`the broker refused the subscription to ${topic}`);
    },
    onMessage(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async close(force = false) {
      await client.endAsync(force);
    },
  };
}

/** Connects to `url` (waiting for the first connection) and wraps the client. */
export async function connectDeviceMqtt(url: string, options: IClientOptions = {}): Promise<HostMqttConnection> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 500, ...options });
  return deviceMqtt(client);
}

export interface HostMqttLinkOptions {
  /** MQTT.js options (clientId, username, password, TLS, keepalive, connectTimeout, …). */
  mqtt?: IClientOptions;
  /**
   * mqtts:// only: the certificate (PEM text or DER) of the CA that issued the broker's TLS
   * certificate, as the device's `brokerCa`. The broker's certificate must chain to it and name
   * the broker's host; without it Node's default trust store is used.
   */
  brokerCa?: string | Uint8Array;
}

/** Node's codes for a server certificate that does not verify. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** PEM text for MQTT.js's `ca` (Node's TLS does not take DER). */
/** A CA certificate as MQTT.js (Node TLS) takes it: PEM text, or DER bytes wrapped into PEM. */
export function caPem(ca: string | Uint8Array): string {
  if (typeof ca === 'string') return ca;
  const body = Buffer.from(ca.buffer, ca.byteOffset, ca.byteLength).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${body.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
}

/** `url` without user name or password, for logs. */
function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1');
}

/** What a failed attempt's log line says: the broker, and for TLS which check failed. */
function attemptFailure(url: string, error: Error, hasCa: boolean): Error {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && UNTRUSTED_CERTIFICATE.has(code)) {
    const trust = hasCa ? 'brokerCa' : "Node's default trust store (no brokerCa configured)";
    return new Error(
      `connection to ${redactUrl(url)} failed in the TLS handshake: the broker's certificate does not verify ` +
        `against ${trust} (${code}: ${error.message})`,
    );
  }
  return new Error(`connection to ${redactUrl(url)} failed: ${error.message}`);
}

/**
 * `MqttLink` over MQTT.js, with the contract of src/platform/mqtt.ts: each `connect()` makes a new
 * MQTT.js client (clean session, `reconnectPeriod: 0`) that lives for one connection. When it
 * closes, its unacknowledged publishes reject and the client is thrown away, so nothing is ever
 * re-sent behind the application's back; subscriptions are made again on the next connection.
 */
export class HostMqttLink implements MqttLink {
  readonly url: string;
  readonly #options: IClientOptions;
  readonly #handlers = new Set<MessageHandler>();
  readonly #up = new Set<() => void>();
  readonly #down = new Set<(down: LinkDown) => void>();
  readonly #subscriptions = new Map<string, QoS>();
  readonly #pending = new Set<(error: Error) => void>();
  #client: MqttClient | undefined;
  #connected = false;
  #attempt: Promise<void> | undefined;

  constructor(url: string, options: HostMqttLinkOptions = {}) {
    this.url = url;
    this.#options = { ...options.mqtt };
    if (options.brokerCa !== undefined) {
      if (!url.startsWith('mqtts:')) throw new RangeError('brokerCa is for an mqtts:// broker');
      this.#options.ca = caPem(options.brokerCa);
      this.#options.rejectUnauthorized = true;
    }
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The MQTT.js client of the current connection (undefined between connections). */
  get client(): MqttClient | undefined {
    return this.#client;
  }

  connect(): Promise<void> {
    if (this.#connected) return Promise.resolve();
    if (this.#attempt !== undefined) return this.#attempt;
    const attempt = new Promise<void>((resolve, reject) => {
      const client = mqtt.connect(this.url, {
        connectTimeout: 10_000,
        ...this.#options,
        clean: true,
        reconnectPeriod: 0,
        resubscribe: false,
      });
      this.#client = client;
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        this.#attempt = undefined;
        if (this.#client === client) this.#client = undefined;
        client.end(true);
        reject(error);
        for (const handler of [...this.#down]) handler({ reason: error.message });
      };
      client.on('message', (name, payload) => {
        if (this.#client !== client) return;
        for (const handler of [...this.#handlers]) {
          try {
            handler(name, new Uint8Array(payload)); // a plain Uint8Array copy, as on the device
          } catch {
            // a handler's failure is its own; the others still get the message
          }
        }
      });
      client.on('error', (error) => {
        if (!settled) fail(attemptFailure(this.url, error, this.#options.ca !== undefined));
      });
      client.on('close', () => {
        if (!settled) {
          fail(new Error('the connection closed before the broker accepted it'));
          return;
        }
        this.#lost(client, 'the connection to the broker was lost');
      });
      client.on('connect', () => {
        void (async () => {
          try {
            for (const [name, qos] of this.#subscriptions) await this.#subscribeOn(client, name, qos);
          } catch (e) {
            fail(e instanceof Error ? e : new Error(String(e)));
            return;
          }
          if (settled || this.#client !== client) return;
          settled = true;
          this.#attempt = undefined;
          this.#connected = true;
          resolve();
          for (const handler of [...this.#up]) handler();
        })();
      });
    });
    this.#attempt = attempt;
    return attempt;
  }

  #lost(client: MqttClient, reason: string): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    const wasConnected = this.#connected;
    this.#connected = false;
    client.end(true);
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
      client.publish(name, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos }, (error) => {
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
    await this.#subscribeOn(client, name, qos);
    this.#subscriptions.set(name, qos);
  }

  async #subscribeOn(client: MqttClient, name: string, qos: QoS): Promise<void> {
    const granted = await client.subscribeAsync(name, { qos });
    if (granted.some((g) => g.qos === 128)) throw new Error(`the broker refused the subscription to ${name}`);
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
    if (client !== undefined) await client.endAsync(true);
  }
}
