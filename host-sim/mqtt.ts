/**
 * The device MQTT interface (`src/platform/mqtt.ts`) on Node, over MQTT.js: what the host
 * simulator's devices use where the firmware uses the Moddable SDK's client.
 *
 *   const mqtt = await connectDeviceMqtt('mqtt://127.0.0.1:1883', { clientId: 'dev-1' });
 *   await enrollDevice({ mqtt, … });
 *   await mqtt.close();
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { MessageHandler, MqttConnection } from '../src/platform/mqtt.js';

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
