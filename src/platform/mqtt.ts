/**
 * The device's view of MQTT: the start of the platform interface the protocol code runs on. On
 * the ESP32 it is implemented over the Moddable SDK's MQTT client; on Node over MQTT.js
 * (`host-sim/mqtt.ts`). Runtime-neutral: no Node or Moddable APIs here.
 *
 * Kept minimal on purpose; the device/cloud session work extends it.
 */

export type QoS = 0 | 1 | 2;

/** Called for every message on a subscribed topic. `payload` is owned by the handler. */
export type MessageHandler = (topic: string, payload: Uint8Array) => void;

export interface MqttConnection {
  /** Publishes `payload` on `topic`; resolves when the broker has it at `qos` (or, at QoS 0, it is sent). Rejects when offline. */
  publish(topic: string, payload: Uint8Array, options: { qos: QoS }): Promise<void>;
  /** Subscribes to a topic (or filter); resolves once the broker has granted it. */
  subscribe(topic: string, options: { qos: QoS }): Promise<void>;
  /** Registers a handler for incoming messages; returns a function that removes it again. */
  onMessage(handler: MessageHandler): () => void;
}
