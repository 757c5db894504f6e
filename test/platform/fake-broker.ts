/**
 * A scripted in-memory MQTT broker for the `MqttLink` contract (test/platform/mqtt-link-contract.ts),
 * and `fakeTransport`, the `LinkTransport` of src/platform/mqtt-link.ts over it. Runtime-neutral
 * (it also stands behind the fake mqtt/js of test/moddable/entries/fake-mqtt-js.ts in XS): every
 * step happens in a later promise job, none on a timer, so a whole suite runs in milliseconds.
 *
 * Like a broker and a client library: the attempt is accepted (CONNACK) or refused (an error, then
 * the close); a connection dropped by `drop()` loses the acknowledgements still in flight and
 * reports its close; an ended client reports its close too (the link must ignore it); a publish
 * on a connection that is not open is never acknowledged (as mqtt/js, which buffers it).
 */

import type { QoS } from '../../src/platform/mqtt.js';
import type { LinkClient, LinkTransport } from '../../src/platform/mqtt-link.js';

const later = (f: () => void): void => {
  void Promise.resolve().then(f);
};

/** What the broker reports to one client. */
export interface FakePeer {
  connack(): void;
  /** The attempt failed (an error, as a client library reports it); `closed` follows. */
  refused(): void;
  closed(): void;
  message(topic: string, payload: Uint8Array): void;
}

export class FakeBroker {
  /** Refuse the next attempts (an unreachable broker). */
  refuse = false;
  /** Topics whose subscription the broker refuses (granted QoS 128). */
  readonly refusedTopics = new Set<string>();
  readonly connections = new Set<FakeConnection>();
  /** Connections made and neither ended nor closed: a link must end every client it gives up on. */
  get open(): number {
    return this.connections.size;
  }

  connect(peer: FakePeer): FakeConnection {
    const connection = new FakeConnection(this, peer, this.refuse);
    this.connections.add(connection);
    return connection;
  }

  /** Drops every connection, as a network failure: acknowledgements in flight are lost. */
  drop(): void {
    for (const connection of [...this.connections]) connection.lose();
  }

  route(topic: string, payload: Uint8Array): void {
    for (const connection of this.connections) connection.deliver(topic, payload);
  }
}

export class FakeConnection {
  state: 'connecting' | 'connected' | 'closed' = 'connecting';
  readonly #broker: FakeBroker;
  readonly #peer: FakePeer;
  readonly #subscriptions = new Set<string>();

  constructor(broker: FakeBroker, peer: FakePeer, refuse: boolean) {
    this.#broker = broker;
    this.#peer = peer;
    later(() => {
      if (this.state !== 'connecting') return;
      if (refuse) {
        this.#close();
        peer.refused();
        peer.closed();
        return;
      }
      this.state = 'connected';
      peer.connack();
    });
  }

  publish(topic: string, payload: Uint8Array, _qos: QoS, ack: () => void): void {
    if (this.state !== 'connected') return; // buffered, never acknowledged
    const copy = payload.slice();
    later(() => {
      if (this.state !== 'connected') return;
      this.#broker.route(topic, copy);
      ack();
    });
  }

  subscribe(topic: string, qos: QoS, ack: (granted: number) => void): void {
    if (this.state !== 'connected') return;
    later(() => {
      if (this.state !== 'connected') return;
      if (this.#broker.refusedTopics.has(topic)) return ack(128);
      this.#subscriptions.add(topic);
      ack(qos);
    });
  }

  deliver(topic: string, payload: Uint8Array): void {
    if (this.state !== 'connected' || !this.#subscriptions.has(topic)) return;
    later(() => {
      if (this.state === 'connected') this.#peer.message(topic, payload);
    });
  }

  /** The client ends the connection; its close is reported later, as client libraries do. */
  end(): void {
    if (this.state === 'closed') return;
    this.#close();
    later(() => this.#peer.closed());
  }

  lose(): void {
    if (this.state === 'closed') return;
    this.#close();
    later(() => this.#peer.closed());
  }

  #close(): void {
    this.state = 'closed';
    this.#broker.connections.delete(this);
  }
}

/** `LinkTransport` straight over the fake broker: the core alone, without a client library. */
export function fakeTransport(broker: FakeBroker): LinkTransport<LinkClient> {
  return {
    open(events) {
      const connection = broker.connect({
        connack: () => events.connected(),
        refused: () => events.failed('the fake broker refused the connection'),
        closed: () => events.closed('the connection closed before the fake broker accepted it'),
        message: (topic, payload) => events.message(topic, payload),
      });
      return {
        publish: (topic, payload, qos, done) => connection.publish(topic, payload, qos, () => done()),
        subscribe: (topic, qos, done) => connection.subscribe(topic, qos, (granted) => done(undefined, [granted])),
        end: () => connection.end(),
      };
    },
  };
}
