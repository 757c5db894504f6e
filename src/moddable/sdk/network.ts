/**
 * What the SDK's mqtt/js client reads from `device.network.mqtt`: the ECMA-419 MQTT client over a
 * TCP socket, with a DNS resolver (as the SDK's examples/io/tcp/mqtt/config.js). mqtts:// (TLS)
 * needs `device.network.mqtts` with a TLS socket and is not wired yet.
 */
import TCP from 'embedded:io/socket/tcp';
import UDP from 'embedded:io/socket/udp';
import Resolver from 'embedded:network/dns/resolver/udp';
import MQTTClient from 'embedded:network/mqtt/client';

const g = globalThis as { device?: { network?: Record<string, unknown> } & Record<string, unknown> };
// XS's Object.freeze(o, true) freezes deeply by calling this.isFrozen / this.freeze: it must be
// called on Object (an unbound `freeze(o, true)` throws "cannot coerce undefined to object").
const XSObject = Object as unknown as { freeze<T>(o: T, deep?: boolean): Readonly<T> };
g.device = XSObject.freeze(
  {
    ...g.device,
    network: {
      ...g.device?.network,
      mqtt: {
        io: MQTTClient,
        dns: { io: Resolver, servers: ['1.1.1.1', '8.8.8.8'], socket: { io: UDP } },
        socket: { io: TCP },
      },
    },
  },
  true, // XS: freeze deeply
);
