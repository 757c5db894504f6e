/**
 * A fake of the Moddable SDK's `mqtt/js` module over the scripted broker of
 * test/platform/fake-broker.ts, for the `MqttLink` contract run in XS
 * (test/moddable/mqtt-link.test.ts maps `mqtt/js` to this file). Its `Client` behaves as mqtt/js
 * does where src/moddable/sdk/mqtt.ts depends on it: `error` with no argument when the attempt
 * fails, then `close`; `end()` throws while connecting; payloads are ArrayBuffers; a publish made
 * while the connection is down is buffered and never calls back.
 */
import { FakeBroker, type FakeConnection } from '../../platform/fake-broker.js';

type QoS = 0 | 1 | 2;
type Listener = (...args: never[]) => void;

export const fakeBroker = new FakeBroker();

export class Client {
  readonly #listeners = new Map<string, Listener[]>();
  readonly #connection: FakeConnection;

  constructor(url: string, _options: Record<string, unknown>) {
    if (!/^mqtts?:\/\//.test(url)) throw new URIError('only mqtt or mqtts');
    this.#connection = fakeBroker.connect({
      connack: () => this.#emit('connect'),
      refused: () => this.#emit('error'), // no argument, as the SDK's
      closed: () => this.#emit('close'),
      message: (topic, payload) => this.#emit('message', topic, payload.slice().buffer),
    });
  }

  on(event: string, listener: Listener): this {
    const listeners = this.#listeners.get(event) ?? [];
    listeners.push(listener);
    this.#listeners.set(event, listeners);
    return this;
  }

  #emit(event: string, ...args: unknown[]): void {
    for (const listener of this.#listeners.get(event) ?? []) (listener as (...a: unknown[]) => void)(...args);
  }

  publish(topic: string, message: ArrayBuffer, options: { qos?: QoS }, callback?: (error?: Error) => void): this {
    this.#connection.publish(topic, new Uint8Array(message), options.qos ?? 0, () => callback?.());
    return this;
  }

  subscribe(
    topic: string,
    options: { qos: QoS },
    callback?: (error: Error | undefined, granted: { topic: string; qos: number }[]) => void,
  ): this {
    this.#connection.subscribe(topic, options.qos, (qos) => callback?.(undefined, [{ topic, qos }]));
    return this;
  }

  end(_force?: boolean): this {
    if (this.#connection.state === 'connecting') throw new Error('MQTT client connecting');
    this.#connection.end();
    return this;
  }
}
