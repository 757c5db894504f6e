/**
 * Brokers the device integration tests run against, each restartable on the same port:
 * - aedes in this process (always); what arrives is seen through the broker's own `publish` event;
 * - mosquitto (a child process, persistence on), when `mosquitto` is installed: what arrives is
 *   seen by an observer with a persistent session, which mosquitto keeps across a restart.
 *
 * Whether the mosquitto variant runs is `mosquittoAvailability()` of test/fixtures/mosquitto.ts: in
 * CI (CI=true) a missing mosquitto is a failure; locally the variant is skipped with a loud warning.
 */
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { startMosquitto as startSharedMosquitto } from '../fixtures/mosquitto.js';

export type BrokerKind = 'aedes' | 'mosquitto';
export type PublishHandler = (topic: string, payload: Uint8Array) => void;

export interface RestartableBroker {
  kind: BrokerKind;
  url: string;
  port: number;
  /** Every message the broker accepted from a device (duplicates included). */
  onPublish(handler: PublishHandler): void;
  /** Stops the broker: every connection is dropped. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after `stop`). */
  start(): Promise<void>;
  /** Aedes only: the broker instance of the moment (for hooks that cut connections). */
  aedes?: () => Aedes;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startAedes(port?: number): Promise<RestartableBroker> {
  const handlers: PublishHandler[] = [];
  const at = port ?? (await freePort());
  let current: { aedes: Aedes; server: Server } | undefined;
  const start = async () => {
    const aedes = await Aedes.createBroker();
    aedes.on('publish', (packet, client) => {
      if (client === null || client === undefined) return; // the broker's own ($SYS) messages
      const payload = new Uint8Array(packet.payload as Buffer);
      for (const handler of handlers) handler(packet.topic, payload);
    });
    const server = createServer(aedes.handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, '127.0.0.1', () => resolve());
    });
    current = { aedes, server };
  };
  const stop = async () => {
    const was = current;
    current = undefined;
    if (was === undefined) return;
    await new Promise<void>((resolve) => was.aedes.close(() => resolve()));
    await new Promise<void>((resolve) => was.server.close(() => resolve()));
  };
  await start();
  return {
    kind: 'aedes',
    url: `mqtt://127.0.0.1:${at}`,
    port: at,
    onPublish: (handler) => void handlers.push(handler),
    stop,
    start,
    aedes: () => {
      if (current === undefined) throw new Error('the broker is stopped');
      return current.aedes;
    },
    close: stop,
  };
}

/**
 * mosquitto (the shared fixture, test/fixtures/mosquitto.ts: persistence on, port races retried,
 * `user root` when run as root) with an observer: a persistent session (clean: false) subscribed
 * at QoS 2, so that what arrives while it reconnects after a restart is queued for it by the broker.
 */
export async function startMosquitto(topicFilter = 'cose-flow/#'): Promise<RestartableBroker> {
  const broker = await startSharedMosquitto({ maxInflight: 100 });
  const handlers: PublishHandler[] = [];
  const observer: MqttClient = await mqtt.connectAsync(broker.url, {
    clientId: `cf-observer-${broker.port}`,
    clean: false,
    reconnectPeriod: 100,
  });
  await observer.subscribeAsync(topicFilter, { qos: 2 });
  observer.on('message', (name, payload) => {
    for (const handler of handlers) handler(name, new Uint8Array(payload));
  });
  return {
    kind: 'mosquitto',
    url: broker.url,
    port: broker.port,
    onPublish: (handler) => void handlers.push(handler),
    stop: () => broker.stop(),
    start: () => broker.start(),
    close: async () => {
      await observer.endAsync(true);
      await broker.close();
    },
  };
}
