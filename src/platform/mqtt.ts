/**
 * The device's view of MQTT. `MqttLink` is implemented once, runtime-neutral, by `MqttLinkCore`
 * (src/platform/mqtt-link.ts) over a small client interface, which the SDK's mqtt/js client
 * provides on the ESP32 and in the Moddable simulator (src/moddable/sdk/mqtt.ts) and MQTT.js on
 * Node (host-sim/mqtt.ts). Runtime-neutral: no Node or Moddable APIs here.
 *
 * `MqttConnection` is what a single flow needs (enrollment); `MqttLink` adds the connection's
 * life cycle, which the device application drives itself: one `connect()` is one attempt, and
 * reconnecting with backoff and jitter is the application's job (src/backoff.ts), the
 * same on every platform.
 */

export type QoS = 0 | 1 | 2;

/** Called for every message on a subscribed topic. `payload` is owned by the handler. */
export type MessageHandler = (topic: string, payload: Uint8Array) => void;

export interface MqttConnection {
  /**
   * Publishes `payload` on `topic`; resolves when the broker has acknowledged it at `qos` (PUBACK
   * at QoS 1, PUBCOMP at QoS 2; at QoS 0 once it is handed to the network). Rejects when offline.
   * On an `MqttLink` it also rejects when the connection is lost before the acknowledgement: the
   * message may or may not have arrived, and the caller decides whether to send it again.
   */
  publish(topic: string, payload: Uint8Array, options: { qos: QoS }): Promise<void>;
  /** Subscribes to a topic (or filter); resolves once the broker has granted it. */
  subscribe(topic: string, options: { qos: QoS }): Promise<void>;
  /** Registers a handler for incoming messages; returns a function that removes it again. */
  onMessage(handler: MessageHandler): () => void;
}

/** Why a link is not connected. */
export interface LinkDown {
  /** The error of the failed attempt or the lost connection, for logs. */
  reason: string;
}

/**
 * A connection to one broker (MQTT 3.1.1, clean session) that the application connects again
 * after every loss. Contract, tested against every implementation (test/platform/mqtt-link-contract.ts):
 * - `connect()` makes one attempt: resolves on CONNACK, rejects when it fails; no retries of its own;
 * - while not connected, `publish` and `subscribe` reject at once (nothing is queued inside);
 * - when the connection is lost, every unacknowledged `publish` rejects, then `onDown` handlers run;
 *   `close()` rejects them too (and an attempt under way), without `onDown`;
 * - subscriptions are remembered and made again on every new connection, before `onUp` handlers run.
 */
export interface MqttLink extends MqttConnection {
  readonly connected: boolean;
  /** One connection attempt; a no-op resolving at once when connected. */
  connect(): Promise<void>;
  /** Handlers for "connected (and resubscribed)" and "connection lost or attempt failed"; each returns its remover. */
  onUp(handler: () => void): () => void;
  onDown(handler: (down: LinkDown) => void): () => void;
  /** Disconnects for good (pending publishes reject); `connect()` may be called again afterwards. */
  close(): Promise<void>;
}
