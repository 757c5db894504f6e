/**
 * What the SDK's mqtt/js client reads from `device.network`: `mqtt` (mqtt://) and, when the
 * broker's CA certificate is configured, `mqtts` (mqtts://): the ECMA-419 MQTT client over a TCP
 * socket, or over the SDK's TLS socket (examples/io/tcp/tlssocket, TLS 1.2) that trusts only
 * that CA (`secure.certificate`). The broker must send its certificate followed by the CA's (the
 * SDK matches subjectAltName only inside a chain of two or more: a lone server certificate fails
 * with "subjectAltName match failed"), and its certificate must carry the broker's host name or
 * IPv4 address in subjectAltName. The SDK checks certificate dates against `Date.now()`: the
 * clock must be set (SNTP) before an mqtts:// connection.
 *
 * mqtt/js reports a failed attempt as `error` with no argument, so the sockets here note how far
 * each attempt got (`connectionProgress`), and the link's log line says it. They also catch what
 * the TLS code throws from inside a socket callback (a certificate that does not verify): thrown
 * there it would abort the whole application; caught, it fails this one connection.
 *
 *   configureNetwork({ brokerCa: der });   // once, before the first connection
 */
import TCP from 'embedded:io/socket/tcp';
import TLSSocket from 'embedded:io/socket/tcp/tls';
import UDP from 'embedded:io/socket/udp';
import Resolver from 'embedded:network/dns/resolver/udp';
import MQTTClient from 'embedded:network/mqtt/client';

export interface NetworkOptions {
  /** The DER certificate of the CA that issued the broker's TLS certificate: enables mqtts://. */
  brokerCa?: Uint8Array;
}

type Callback = ((...args: unknown[]) => void) | undefined;
type SocketOptions = Record<string, unknown> & { onReadable?: Callback; onWritable?: Callback; onError?: Callback };

/** How far the current connection attempt got; reset by `beginAttempt`. */
const progress = {
  stage: 'not started',
  /** What went wrong, when something said so (a TLS error, a socket error). */
  failure: undefined as string | undefined,
  tls: false,
};
let tlsConfigured = false;

/** Starts tracking a new connection attempt to `url`. */
export function beginAttempt(url: string): void {
  progress.tls = url.startsWith('mqtts:');
  progress.stage = 'resolving the broker host name';
  progress.failure = undefined;
}

/** How far the last attempt got and why it stopped, as a phrase for a log line. */
export function connectionProgress(): string {
  let text = `stopped while ${progress.stage}`;
  if (progress.failure !== undefined) text += `: ${progress.failure}`;
  if (progress.tls && progress.failure?.includes('certificate'))
    text +=
      " (the broker's certificate is not issued by brokerCa, is out of date, or does not name the broker's host;" +
      ' or the broker sends its certificate without the CA certificate after it, which the SDK needs)';
  if (progress.tls && progress.failure !== undefined && !clockIsSet())
    text += ' (the clock is not set: the SDK checks certificate dates against it; set it first, e.g. with sntp)';
  return text;
}

/** Why a connection to `url` cannot be made with this configuration, or undefined. */
export function networkProblem(url: string): string | undefined {
  if (url.startsWith('mqtts:') && !tlsConfigured)
    return 'mqtts:// needs the CA certificate of the broker: set brokerCa (PEM) in the configuration';
  return undefined;
}

function clockIsSet(): boolean {
  return Date.now() > 1_577_836_800_000; // 2020-01-01: an unset clock reads 1970
}

function note(stage: string): void {
  progress.stage = stage;
}

function failure(text: string): void {
  progress.failure ??= text;
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.name && e.name !== 'Error' ? `${e.name}: ${e.message}` : e.message;
  return String(e);
}

/**
 * A callback that never lets an exception out into the socket's native code (the device would
 * abort): it notes it, and reports a socket error instead.
 */
function guarded(callback: Callback, onError: Callback): Callback {
  if (callback === undefined) return undefined;
  return (...args: unknown[]) => {
    try {
      callback(...args);
    } catch (e) {
      failure(describe(e));
      try {
        onError?.();
      } catch (e2) {
        failure(`while reporting it: ${describe(e2)}`);
      }
    }
  };
}

/** The TCP socket under mqtt:// (and under TLS): notes the connection, guards the callbacks. */
class TracedTCP extends TCP {
  constructor(options: SocketOptions) {
    note(`connecting to ${String(options.address ?? options.host)}:${String(options.port)}`);
    let connected = false;
    const onError = options.onError;
    const onWritable = options.onWritable;
    super({
      ...options,
      onReadable: guarded(options.onReadable, onError),
      onWritable: guarded((...args: unknown[]) => {
        if (!connected) {
          connected = true;
          note(progress.tls ? 'doing the TLS handshake' : 'waiting for the broker to accept the MQTT connection');
        }
        onWritable?.(...args);
      }, onError),
      onError: (...args: unknown[]) => {
        failure(connected ? 'the connection was closed or reset' : 'the TCP connection was refused or failed');
        onError?.(...args);
      },
    } as unknown as ConstructorParameters<typeof TCP>[0]);
  }
}

/** The SDK's TLS socket: notes the end of the handshake and what its constructor throws. */
class TracedTLS extends TLSSocket {
  constructor(options: SocketOptions) {
    let secured = false;
    const onWritable = options.onWritable;
    note('setting up TLS');
    try {
      super({
        ...options,
        onWritable: (...args: unknown[]) => {
          if (!secured) {
            secured = true;
            note('waiting for the broker to accept the MQTT connection (TLS is up)');
          }
          onWritable?.(...args);
        },
      } as unknown as ConstructorParameters<typeof TLSSocket>[0]);
    } catch (e) {
      failure(`TLS setup: ${describe(e)}`);
      throw e;
    }
  }
}

// XS's Object.freeze(o, true) freezes deeply by calling this.isFrozen / this.freeze: it must be
// called on Object (an unbound `freeze(o, true)` throws "cannot coerce undefined to object").
const XSObject = Object as unknown as { freeze<T>(o: T, deep?: boolean): Readonly<T> };

/** Installs `device.network.mqtt` (and `mqtts` with a broker CA) for mqtt/js. Call once. */
export function configureNetwork(options: NetworkOptions = {}): void {
  const g = globalThis as { device?: { network?: Record<string, unknown> } & Record<string, unknown> };
  const dns = { io: Resolver, servers: ['1.1.1.1', '8.8.8.8'], socket: { io: UDP } };
  const network: Record<string, unknown> = {
    ...g.device?.network,
    mqtt: { io: MQTTClient, dns, socket: { io: TracedTCP } },
  };
  if (options.brokerCa !== undefined) {
    if (options.brokerCa.length === 0) throw new RangeError('the broker CA certificate is empty');
    network.mqtts = {
      io: MQTTClient,
      dns,
      socket: {
        io: TracedTLS,
        TCP: { io: TracedTCP },
        secure: { certificate: options.brokerCa.slice().buffer },
      },
    };
  }
  tlsConfigured = options.brokerCa !== undefined;
  g.device = XSObject.freeze({ ...g.device, network }, true); // XS: freeze deeply
}
