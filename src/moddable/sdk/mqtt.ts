/**
 * `MqttLink` (src/platform/mqtt.ts) over the Moddable SDK's mqtt/js client, the one SDK client
 * that completes QoS 2 (MQTT 3.1.1, clean session). The link's bookkeeping is the runtime-neutral
 * `MqttLinkCore` (src/platform/mqtt-link.ts); this adapter makes the Client and covers its gaps:
 * - no reconnect of its own (`reconnectPeriod: 0`): each `connect()` makes a new Client for one
 *   connection, and the application reconnects with backoff and jitter (mqtt/js only knows a
 *   fixed period);
 * - mqtt/js keeps unacknowledged QoS 1/2 messages and publishes made while offline in RAM and
 *   re-sends them on its own reconnect; a Client here never reconnects, so nothing is re-sent
 *   behind the application's back: when the connection is lost, every pending publish rejects
 *   and the application sends the same bytes again on the next connection (the key message too);
 * - a QoS 0 publish buffered when the connection drops never calls back in mqtt/js: rejected here;
 * - publish/subscribe while not connected reject at once instead of being buffered;
 * - `end()` throws while connecting and sends no DISCONNECT (so a Will fires): the core ignores
 *   the throw and ends a client it gave up on again if it connects after all;
 * - subscriptions are made again on every new connection before the link reports it is up;
 * - a failed attempt is reported as `error` with no argument: the reason given here says which
 *   broker, and how far the attempt got and why it stopped, as the sockets of network.ts saw it.
 */
import { Client } from 'mqtt/js';
import { type LinkClient, type LinkEvents, MqttLinkCore, redactUrlCredentials } from '../../platform/mqtt-link.js';
import { beginAttempt, connectionProgress, networkProblem } from './network.js';

export interface ModdableMqttOptions {
  clientId: string;
  username?: string;
  password?: string;
  /** Seconds (default 60). */
  keepalive?: number;
}

/** `MqttLinkCore` (src/platform/mqtt-link.ts) over one mqtt/js Client per connection. */
export class ModdableMqttLink extends MqttLinkCore {
  constructor(url: string, options: ModdableMqttOptions) {
    super({ open: (events) => openClient(url, options, events) });
  }
}

function openClient(url: string, options: ModdableMqttOptions, events: LinkEvents): LinkClient {
  const problem = networkProblem(url);
  if (problem !== undefined) throw new Error(problem);
  beginAttempt(url);
  let client: Client;
  try {
    client = new Client(url, {
      clientId: options.clientId,
      reconnectPeriod: 0,
      resubscribe: false,
      keepalive: options.keepalive ?? 60,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
    });
  } catch (e) {
    throw new Error(`connection to ${redactUrlCredentials(url)} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  client.on('message', (topic: string, payload: ArrayBuffer) => events.message(topic, new Uint8Array(payload)));
  const failed = (what: string) => `connection to ${redactUrlCredentials(url)} ${what}, ${connectionProgress()}`;
  // mqtt/js passes no argument; should a later version pass one, it is kept.
  client.on('error', (error?: unknown) =>
    events.failed(error === undefined || error === null ? failed('failed') : `${failed('failed')} (${String(error)})`),
  );
  client.on('close', () => events.closed(failed('closed before the broker accepted it')));
  client.on('connect', () => events.connected());
  return {
    publish(topic, payload, qos, done) {
      client.publish(topic, payload.slice().buffer, { qos }, (error?: Error) => done(error));
    },
    subscribe(topic, qos, done) {
      client.subscribe(topic, { qos }, (error, granted) =>
        error
          ? done(error)
          : done(
              undefined,
              (granted ?? []).map((g) => g.qos as number),
            ),
      );
    },
    end() {
      // mqtt/js's end() throws while connecting: the link ends the client again on a late CONNACK
      client.end(true);
    },
  };
}
