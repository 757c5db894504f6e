/**
 * The device MQTT interface (`src/platform/mqtt.ts`) on Node, over MQTT.js: what the host
 * simulator's devices use where the firmware uses the Moddable SDK's client.
 *
 * - `HostMqttLink`: the `MqttLink` the device application drives: the runtime-neutral
 *   `MqttLinkCore` (src/platform/mqtt-link.ts) over one MQTT.js client per connection, no
 *   reconnects of its own (the application reconnects with backoff and jitter);
 * - `connectDeviceMqtt`: a plain auto-reconnecting `MqttConnection` for single flows:
 *
 *   const mqtt = await connectDeviceMqtt('mqtt://127.0.0.1:1883', { clientId: 'dev-1' });
 *   await enrollDevice({ mqtt, … });
 *   await mqtt.close();
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { redactUrl } from '../node/redact-url.js';
import { pemEncode } from '../src/pki/pem.js';
import type { MessageHandler, MqttConnection } from '../src/platform/mqtt.js';
import { deliver, type LinkClient, type LinkEvents, MqttLinkCore } from '../src/platform/mqtt-link.js';

export interface HostMqttConnection extends MqttConnection {
  readonly client: MqttClient;
  /** Disconnects (in-flight QoS 1/2 messages are finished first unless `force`). */
  close(force?: boolean): Promise<void>;
}

/** Wraps a connected (or connecting) MQTT.js client. */
export function deviceMqtt(client: MqttClient): HostMqttConnection {
  const handlers = new Set<MessageHandler>();
  // Each handler owns its copy, a plain Uint8Array (not a Buffer), as on the device.
  client.on('message', (topic, payload) => deliver(handlers, topic, payload));
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

/** A CA certificate as MQTT.js (Node TLS) takes it: PEM text, or DER bytes wrapped into PEM. */
export function caPem(ca: string | Uint8Array): string {
  return typeof ca === 'string' ? ca : pemEncode(ca, 'CERTIFICATE');
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
 * `MqttLink` over MQTT.js (the bookkeeping is src/platform/mqtt-link.ts's): each `connect()` makes
 * a new MQTT.js client (clean session, `reconnectPeriod: 0`) that lives for one connection. When it
 * closes, its unacknowledged publishes reject and the client is thrown away, so nothing is ever
 * re-sent behind the application's back; subscriptions are made again on the next connection.
 */
export class HostMqttLink extends MqttLinkCore<MqttJsClient> {
  readonly url: string;

  constructor(url: string, options: HostMqttLinkOptions = {}) {
    const clientOptions: IClientOptions = { ...options.mqtt };
    if (options.brokerCa !== undefined) {
      if (!url.startsWith('mqtts:')) throw new RangeError('brokerCa is for an mqtts:// broker');
      clientOptions.ca = caPem(options.brokerCa);
      clientOptions.rejectUnauthorized = true;
    }
    super({ open: (events) => openMqttJs(url, clientOptions, events) });
    this.url = url;
  }

  /** The MQTT.js client of the current connection (undefined between connections). */
  get client(): MqttClient | undefined {
    return this.currentClient?.mqtt;
  }
}

interface MqttJsClient extends LinkClient {
  readonly mqtt: MqttClient;
}

function openMqttJs(url: string, options: IClientOptions, events: LinkEvents): MqttJsClient {
  const client = mqtt.connect(url, {
    connectTimeout: 10_000,
    ...options,
    clean: true,
    reconnectPeriod: 0,
    resubscribe: false,
  });
  client.on('message', (topic, payload) => events.message(topic, payload));
  client.on('error', (error) => events.failed(attemptFailure(url, error, options.ca !== undefined).message));
  client.on('close', () => events.closed('the connection closed before the broker accepted it'));
  client.on('connect', () => events.connected());
  return {
    mqtt: client,
    publish(topic, payload, qos, done) {
      client.publish(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos }, (error) =>
        done(error),
      );
    },
    subscribe(topic, qos, done) {
      client.subscribe(topic, { qos }, (error, granted) =>
        error
          ? done(error)
          : done(
              undefined,
              (granted ?? []).map((g) => g.qos),
            ),
      );
    },
    end: () => client.endAsync(true),
  };
}
