/**
 * Small stand-ins for the Moddable SDK modules that src/moddable/sdk/{clock,sensor,network,mqtt}.ts
 * import, for running those real modules in the XS test host (test/moddable/sdk.test.ts maps each
 * SDK module name to one export here). They follow the SDK 8.2.3 sources where the code under test
 * depends on them:
 * - `time`: `Time.ticks` is whatever `globalThis.fakeSdk.ticks` holds (the Linux simulator's wall
 *   clock in ms by default, ~1.8e12);
 * - `mqtt/js`: a `Client` that, like the SDK's, takes its socket stack from `device.network.mqtt`
 *   or `.mqtts`, builds it with `device.network.mqtt.io`, and emits `error` with no argument when
 *   the attempt fails;
 * - the ECMA-419 MQTT client builds `options.socket.io`; the TLS socket builds `options.TCP.io`
 *   under it and, like the SDK's, throws its handshake errors (name "TLS") from inside the TCP
 *   socket's callbacks;
 * - the TCP socket plays `fakeSdk.tcp`: "refuse" (onError), "accept" (onWritable, then the broker's
 *   bytes: onReadable). Whatever a callback throws back into it is recorded in `fakeSdk.escaped`
 *   (the real socket's native code would abort the application).
 * Runs inside XS only: no Node APIs.
 */

interface FakeSdkState {
  ticks: number;
  tcp: 'refuse' | 'accept';
  /**
   * What the fake TLS socket does: "verify" or "reject" the server's first bytes, or "setup-fails"
   * (its constructor throws, as the SDK's does for a CA certificate out of its validity dates).
   */
  tls: 'verify' | 'reject' | 'setup-fails';
  escaped: string[];
  /** The `secure` options the TLS socket was given. */
  secure?: Record<string, unknown>;
  /** The option keys the TCP socket was given. */
  tcpOptions?: string[];
}

const g = globalThis as unknown as { fakeSdk: FakeSdkState; device?: { network: Record<string, NetworkConfig> } };
g.fakeSdk ??= { ticks: 1_796_205_000_000, tcp: 'accept', tls: 'verify', escaped: [] };
export const fakeSdk = g.fakeSdk;

type Callback = (...args: unknown[]) => void;
type Options = Record<string, unknown> & { onReadable?: Callback; onWritable?: Callback; onError?: Callback };
interface NetworkConfig {
  io: new (options: Options) => { close(): void };
  socket: Options & { io: new (options: Options) => { close(): void } };
}

const later = (f: () => void) => {
  void Promise.resolve().then(f);
};

function callInto(callback: Callback | undefined, ...args: unknown[]): void {
  try {
    callback?.(...args);
  } catch (e) {
    fakeSdk.escaped.push(String(e));
  }
}

export const Time = {
  get ticks(): number {
    return fakeSdk.ticks;
  },
};

export const Timer = {
  set(callback: () => void): object {
    const timer = { cleared: false };
    later(() => {
      if (!timer.cleared) callback();
    });
    return timer;
  },
  clear(timer?: { cleared: boolean }): void {
    if (timer) timer.cleared = true;
  },
};

export const Instrumentation = {
  map: (_name: string): number | undefined => undefined,
  get: (_index: number): number | undefined => undefined,
};

export class FakeTCP {
  #closed = false;
  constructor(options: Options) {
    fakeSdk.tcpOptions = Object.keys(options).sort();
    if (fakeSdk.tcp === 'refuse') {
      later(() => {
        if (!this.#closed) callInto(options.onError);
      });
      return;
    }
    later(() => {
      if (this.#closed) return;
      callInto(options.onWritable, 1024);
      later(() => {
        if (!this.#closed) callInto(options.onReadable, 4);
      });
    });
  }
  close(): void {
    this.#closed = true;
  }
}

export class FakeUDP {}
export class FakeResolver {}

class TLSError extends Error {}
// The SDK assigns the name; in a host with frozen built-ins that assignment throws, so define it.
Object.defineProperty(TLSError.prototype, 'name', { value: 'TLS' });

export class FakeTLSSocket {
  #tcp: FakeTCP;
  constructor(options: Options & { TCP: { io: typeof FakeTCP }; secure?: Record<string, unknown> }) {
    fakeSdk.secure = options.secure;
    const certificate = options.secure?.certificate;
    if (!(certificate instanceof ArrayBuffer) || certificate.byteLength === 0) throw new TLSError('no CA certificate');
    if (fakeSdk.tls === 'setup-fails') throw new Error('date validation failed');
    let ready = false;
    this.#tcp = new options.TCP.io({
      ...options,
      onWritable: () => {
        // the handshake starts (ClientHello)
      },
      onReadable: () => {
        if (ready) return void options.onReadable?.(4);
        if (fakeSdk.tls === 'reject') throw new TLSError('certificate: auth err');
        ready = true;
        options.onWritable?.(1024);
        options.onReadable?.(4);
      },
      onError: () => options.onError?.(),
    });
  }
  close(): void {
    this.#tcp.close();
  }
}

/** The ECMA-419 MQTT client, as far as mqtt/js uses it to connect. */
export class FakeMqttClient {
  static CONNACK = 2;
  #socket: { close(): void } | undefined;
  constructor(options: Options & { socket: NetworkConfig['socket']; onControl?: Callback }) {
    let connected = false;
    const onError = () => {
      options.onError?.(); // the SDK's client reports no reason
      this.close();
    };
    // As the SDK's: the socket is made once the host name is resolved, and what its constructor
    // throws becomes an error without a reason.
    later(() => {
      try {
        this.#socket = new options.socket.io({
          ...options.socket,
          address: options.host,
          host: options.host,
          port: options.port,
          onWritable: () => {
            // CONNECT sent
          },
          onReadable: () => {
            if (connected) return;
            connected = true;
            options.onControl?.({ operation: FakeMqttClient.CONNACK, id: 0 });
          },
          onError,
        });
      } catch {
        onError();
      }
    });
  }
  close(): void {
    this.#socket?.close();
    this.#socket = undefined;
  }
}

/** mqtt/js's Client, as far as the link adapter uses it to connect and give up. */
export class Client {
  #listeners: Record<string, Callback[]> = { connect: [], error: [], close: [], message: [] };
  #client: { close(): void } | undefined;
  #state: 'connecting' | 'connected' | 'closed' = 'connecting';
  constructor(href: string, _options: Record<string, unknown>) {
    const url = /^(mqtts?):\/\/(?:[^@/]*@)?([^:/]+)(?::(\d+))?/.exec(href);
    if (url === null) throw new URIError('only mqtt or mqtts');
    const network = g.device!.network;
    const config = url[1] === 'mqtts' ? network.mqtts : network.mqtt;
    const Io = network.mqtt!.io as unknown as typeof FakeMqttClient;
    this.#client = new Io({
      ...config,
      host: url[2],
      port: Number(url[3] ?? (url[1] === 'mqtts' ? 8883 : 1883)),
      onControl: () => {
        this.#state = 'connected';
        for (const l of this.#listeners.connect!) l();
      },
      onError: () => {
        const state = this.#state;
        this.#client?.close();
        this.#client = undefined;
        this.#state = 'closed';
        if (state === 'connecting') for (const l of this.#listeners.error!) l(); // no argument, as the SDK's
        for (const l of this.#listeners.close!) l();
      },
    } as never);
  }
  on(event: string, listener: Callback): void {
    this.#listeners[event]?.push(listener);
  }
  end(): void {
    if (this.#state === 'connecting') throw new Error('MQTT client connecting');
    this.#client?.close();
    this.#client = undefined;
    this.#state = 'closed';
  }
}
