/**
 * The cloud service's MQTT connection: a small MQTT 5 / 3.1.1 client (over mqtt-packet, the codec
 * MQTT.js uses) whose acknowledgements the caller sends, one message at a time, whenever that
 * message is durably handled — while the connection keeps reading the next ones.
 *
 * Why not MQTT.js: its packet pump handles one incoming packet at a time and moves to the next
 * only once the PUBACK of the current one is written (build/lib/client.js `work` / `nextTickWork`;
 * `customHandleAcks` and `handleMessage` hold that same callback). Acknowledging after the commit
 * would therefore allow one message per commit, and no batching. Here `InboundMessage.ack()` is
 * decoupled from reading: many messages are in flight, a batch commits, then its acks go out.
 *
 * What it does:
 * - one connection to mqtt:// or mqtts:// (user and password from the URL or the options);
 * - a persistent session: MQTT 5 Clean Start off with a Session Expiry Interval, or MQTT 3.1.1
 *   clean session off, so messages wait in the broker while the service restarts. With
 *   `protocolVersion: 'auto'` (default) it tries 5 and falls back to 3.1.1 for brokers that refuse
 *   5 (aedes);
 * - subscribes on every connect (harmless when the broker kept the session), with MQTT 5 Retain
 *   Handling 2 (the broker sends no retained message on subscribe); a message that still comes
 *   with the retain flag (MQTT 3.1.1 brokers send retained messages on subscribe) is acknowledged
 *   and dropped, never handed on: a retained message is a stale copy, not traffic;
 * - MQTT 5 Maximum Packet Size in CONNECT (`maxPacketBytes`): the broker drops larger messages
 *   for this client instead of sending them (MQTT 3.1.1 has no such limit);
 * - inbound QoS 0/1/2: the message goes to `onMessage`; `ack()` sends PUBACK (QoS 1) or PUBREC
 *   (QoS 2; PUBREL is answered with PUBCOMP at once), written as their four bytes (reason
 *   Success) and gathered per tick into one socket write. An ack for a message of a connection that
 *   has since dropped is not sent: the broker redelivers that message on the new connection;
 * - flow control: MQTT 5 Receive Maximum tells the broker how many unacknowledged QoS 1/2
 *   messages it may send; independently, reading pauses while `maxUnacked` are outstanding;
 * - outbound QoS 1 publish (the control topic), resolved by PUBACK;
 * - keepalive pings, reconnection with backoff, DISCONNECT on close (the session is kept).
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import mqttPacket, { type IConnackPacket, type IPublishPacket, type Packet, type QoS } from 'mqtt-packet';
import { copyInto } from '../../src/bytes.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../src/profile/limits.js';

export type ProtocolVersion = 4 | 5;

export interface InboundMessage {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  /** The broker marked it as a redelivery. */
  dup: boolean;
  /** When the packet was read (ms since the epoch). */
  receivedAt: number;
  /**
   * Acknowledges the message (PUBACK for QoS 1, PUBREC for QoS 2; nothing for QoS 0). Call it
   * once the message is durably handled. Idempotent; a no-op once its connection has dropped.
   */
  ack(): void;
}

export interface Subscription {
  topic: string;
  qos: QoS;
}

export type ConsumerLog = (level: 'debug' | 'info' | 'warn' | 'error', event: string, fields?: object) => void;

export interface MqttConsumerOptions {
  /** mqtt://[user[:password]@]host[:port] or mqtts://… */
  url: string;
  /** Must be stable across restarts (the broker keeps the session under it) and unique per instance. */
  clientId: string;
  subscriptions: Subscription[];
  /** Where messages go; may instead be given to `start` (a receiver built after the consumer). */
  onMessage?: (message: InboundMessage) => void;
  /** 5, 4 (3.1.1) or 'auto' (default: 5, falling back to 4 when the broker refuses 5). */
  protocolVersion?: ProtocolVersion | 'auto';
  /** MQTT 5 Session Expiry Interval, seconds (default one day). */
  sessionExpirySeconds?: number;
  /** Seconds (default 30). */
  keepaliveSeconds?: number;
  /** MQTT 5 Receive Maximum (default 1000). */
  receiveMaximum?: number;
  /** Reading pauses while this many QoS 1/2 messages are unacknowledged (default: receiveMaximum). */
  maxUnacked?: number;
  /**
   * MQTT 5 Maximum Packet Size: the broker does not send larger packets (default the largest
   * message the protocol allows, 65 536 bytes, plus 1024 for the topic and the packet's fields).
   */
  maxPacketBytes?: number;
  username?: string;
  password?: string;
  /** TLS options for mqtts:// (ca, cert, key, rejectUnauthorized, …). */
  tls?: ConnectionOptions;
  /** How long to wait for a connection and its CONNACK, ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Reconnect backoff bounds, ms (default 250 … 5000). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  log?: ConsumerLog;
}

interface Connection {
  socket: Socket;
  version: ProtocolVersion;
  /** Messages delivered on this connection and not yet acknowledged. */
  unacked: number;
  open: boolean;
  /** The broker refused the protocol version (auto mode falls back to 3.1.1). */
  versionRefused?: string;
  /** Writes of this tick are gathered (socket corked) and sent together on the next. */
  corked?: boolean;
  /** Acknowledgements of this tick, four bytes each, written as one buffer when the tick ends. */
  acks?: Buffer;
  ackBytes?: number;
}

/**
 * A message read from the broker: one object per message, its `ack` a method rather than a
 * closure (issue 13 §3: the consumer's per-message allocations).
 */
class Inbound implements InboundMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly dup: boolean;
  readonly receivedAt: number;
  readonly #consumer: MqttConsumer;
  readonly #conn: Connection;
  readonly #id: number;
  #acked: boolean;

  constructor(consumer: MqttConsumer, conn: Connection, packet: IPublishPacket, payload: Uint8Array) {
    this.topic = packet.topic;
    this.payload = payload;
    this.qos = packet.qos;
    this.dup = packet.dup;
    this.receivedAt = Date.now();
    this.#consumer = consumer;
    this.#conn = conn;
    this.#id = packet.messageId ?? 0;
    this.#acked = packet.qos === 0;
  }

  ack(): void {
    if (this.#acked) return;
    this.#acked = true;
    this.#consumer.acknowledge(this.#conn, this.qos, this.#id);
  }
}

type AckType = 'puback' | 'pubrec' | 'pubcomp';
/** Fixed header byte of each acknowledgement (PUBREL's own is 0x62; PUBCOMP's flags are 0). */
const ACK_HEADER: Record<AckType, number> = { puback: 0x40, pubrec: 0x50, pubcomp: 0x70 };
/** Payloads up to this size are copied into a shared slab of SLAB_BYTES (see #copy). */
const SLAB_COPY_MAX = 1024;
const SLAB_BYTES = 8192;
/** Room for this many bytes of acknowledgements per tick before another buffer is started (1024 acks). */
const ACK_BUFFER_BYTES = 4096;

interface PendingPublish {
  resolve: () => void;
  reject: (e: Error) => void;
}

const CONNACK_V4: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** An MQTT consumer with caller-controlled acknowledgements; see the module comment. */
export class MqttConsumer extends EventEmitter {
  readonly #o: Required<
    Pick<
      MqttConsumerOptions,
      | 'sessionExpirySeconds'
      | 'keepaliveSeconds'
      | 'receiveMaximum'
      | 'maxUnacked'
      | 'maxPacketBytes'
      | 'connectTimeoutMs'
      | 'reconnectMinMs'
      | 'reconnectMaxMs'
    >
  > &
    MqttConsumerOptions;
  readonly #url: URL;
  #version: ProtocolVersion;
  readonly #autoVersion: boolean;
  #conn: Connection | undefined;
  #closing = false;
  #paused = false;
  #everConnected = false;
  #reconnectDelay: number;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #awaitingPong = false;
  #nextId = 1;
  readonly #publishes = new Map<number, PendingPublish>();
  readonly #subscribes = new Map<number, { resolve: (granted: number[]) => void; reject: (e: Error) => void }>();
  #firstConnect: { resolve: () => void; reject: (e: Error) => void } | undefined;
  #onMessage: (message: InboundMessage) => void = () => {};
  /** Where small payloads are copied to (see #copy). */
  #slab = new Uint8Array(0);
  #slabAt = SLAB_BYTES;
  /** Reconnections after the first connection (for metrics). */
  reconnects = 0;
  /** Retained messages acknowledged and dropped (not handed on). */
  retainedDropped = 0;

  constructor(options: MqttConsumerOptions) {
    super();
    const receiveMaximum = options.receiveMaximum ?? 1000;
    if (!Number.isInteger(receiveMaximum) || receiveMaximum < 1 || receiveMaximum > 65535)
      throw new RangeError(`receiveMaximum must be an integer in 1 … 65535, got ${receiveMaximum}`);
    this.#o = {
      sessionExpirySeconds: 86_400,
      keepaliveSeconds: 30,
      connectTimeoutMs: 10_000,
      reconnectMinMs: 250,
      reconnectMaxMs: 5000,
      maxUnacked: receiveMaximum,
      maxPacketBytes: DEFAULT_MAX_MESSAGE_BYTES + 1024,
      ...options,
      receiveMaximum,
    };
    if (!Number.isInteger(this.#o.maxPacketBytes) || this.#o.maxPacketBytes < 1024)
      throw new RangeError(`maxPacketBytes must be an integer ≥ 1024, got ${this.#o.maxPacketBytes}`);
    this.#url = new URL(options.url);
    if (this.#url.protocol !== 'mqtt:' && this.#url.protocol !== 'mqtts:')
      throw new RangeError(
        `broker URL must be mqtt://host[:port] or mqtts://host[:port], got ${this.#url.protocol}//…`,
      );
    if (options.clientId.length === 0 || options.clientId.length > 256)
      throw new RangeError('the MQTT client id must be 1–256 characters');
    const version = options.protocolVersion ?? 'auto';
    this.#autoVersion = version === 'auto';
    this.#version = version === 'auto' ? 5 : version;
    if (this.#version !== 5 && options.subscriptions.some((s) => s.topic.startsWith('$share/')))
      throw new RangeError('shared subscriptions ($share/…) need MQTT 5');
    this.#reconnectDelay = this.#o.reconnectMinMs;
  }

  /** The protocol version in use (after 'auto' decided). */
  get protocolVersion(): ProtocolVersion {
    return this.#version;
  }

  get connected(): boolean {
    return this.#conn?.open === true;
  }

  /** QoS 1/2 messages delivered on the current connection and not yet acknowledged. */
  get unacked(): number {
    return this.#conn?.unacked ?? 0;
  }

  /**
   * Connects and subscribes; resolves once subscribed, rejects if the first attempt fails.
   * `onMessage` replaces the option of that name.
   */
  start(onMessage?: (message: InboundMessage) => void): Promise<void> {
    const handler = onMessage ?? this.#o.onMessage;
    if (handler === undefined) return Promise.reject(new RangeError('no onMessage handler: pass one to start()'));
    this.#onMessage = handler;
    return new Promise<void>((resolve, reject) => {
      this.#firstConnect = { resolve, reject };
      this.#connect();
    });
  }

  /** Stops handing out messages (those that arrive are left unacknowledged for redelivery). */
  pauseDelivery(): void {
    this.#paused = true;
  }

  /** Publishes at QoS 1 (or 0); resolves when the broker acknowledged it. */
  publish(topic: string, payload: Uint8Array, qos: 0 | 1 = 1): Promise<void> {
    const conn = this.#conn;
    if (conn === undefined || !conn.open) return Promise.reject(new Error('not connected to the broker'));
    const packet: IPublishPacket = {
      cmd: 'publish',
      topic,
      payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      qos,
      dup: false,
      retain: false,
    };
    if (qos === 0) {
      this.#send(conn, packet);
      return Promise.resolve();
    }
    const id = this.#allocateId();
    packet.messageId = id;
    return new Promise<void>((resolve, reject) => {
      this.#publishes.set(id, { resolve, reject });
      this.#send(conn, packet);
    });
  }

  /** Sends DISCONNECT (keeping the session) and closes; pending publishes are rejected. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#paused = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const conn = this.#conn;
    if (conn === undefined || conn.socket.destroyed) {
      this.#teardown(conn, new Error('closed'));
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => conn.socket.destroy(), 2000);
      conn.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (conn.open) {
        this.#flushAcks(conn); // the acknowledgements of this tick go before the DISCONNECT
        const disconnect: Packet = conn.version === 5 ? { cmd: 'disconnect', reasonCode: 0 } : { cmd: 'disconnect' };
        conn.socket.end(mqttPacket.generate(disconnect, { protocolVersion: conn.version }));
      } else {
        conn.socket.destroy();
      }
    });
    this.#teardown(conn, new Error('closed'));
  }

  // ---------------------------------------------------------------------------------- internals

  #log(level: 'debug' | 'info' | 'warn' | 'error', event: string, fields?: object): void {
    this.#o.log?.(level, event, fields);
  }

  #allocateId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.#nextId;
      this.#nextId = id === 65535 ? 1 : id + 1;
      if (!this.#publishes.has(id) && !this.#subscribes.has(id)) return id;
    }
    throw new Error('no free MQTT packet identifier');
  }

  #send(conn: Connection, packet: Packet): void {
    if (!conn.open && packet.cmd !== 'connect') return;
    this.#write(conn, mqttPacket.generate(packet, { protocolVersion: conn.version }));
  }

  /**
   * PUBACK / PUBREC / PUBCOMP with reason Success: four bytes, written without the codec (one
   * per message, so it is on the hot path). MQTT 5 §3.4.2.1 lets a Success acknowledgement
   * without properties leave out the reason code, which makes it the MQTT 3.1.1 packet.
   */
  #sendAck(conn: Connection, type: AckType, id: number): void {
    if (!conn.open || conn.socket.destroyed) return;
    // Acknowledgements come in bursts (a batch commits, a flood is refused): those of a tick go
    // into one buffer, written as one chunk (not one stream write each) when the tick ends, in
    // their order among the connection's other writes.
    let acks = conn.acks;
    let at = conn.ackBytes ?? 0;
    if (acks === undefined || at + 4 > acks.length) {
      this.#flushAcks(conn);
      acks = conn.acks = Buffer.allocUnsafe(ACK_BUFFER_BYTES);
      at = 0;
      this.#cork(conn);
    }
    acks[at] = ACK_HEADER[type];
    acks[at + 1] = 2;
    acks[at + 2] = id >> 8;
    acks[at + 3] = id & 0xff;
    conn.ackBytes = at + 4;
  }

  /** Writes the acknowledgements gathered so far (before any other write, to keep their order). */
  #flushAcks(conn: Connection): void {
    const acks = conn.acks;
    if (acks === undefined) return;
    const n = conn.ackBytes ?? 0;
    conn.acks = undefined;
    conn.ackBytes = 0;
    if (n > 0 && !conn.socket.destroyed && !conn.socket.writableEnded) conn.socket.write(acks.subarray(0, n));
  }

  #write(conn: Connection, bytes: Buffer): void {
    if (conn.socket.destroyed) return;
    this.#flushAcks(conn);
    this.#cork(conn);
    conn.socket.write(bytes);
  }

  /** The writes of this tick are sent together (one system call) when it ends. */
  #cork(conn: Connection): void {
    if (conn.corked) return;
    conn.corked = true;
    conn.socket.cork();
    process.nextTick(() => {
      this.#flushAcks(conn);
      conn.corked = false;
      conn.socket.uncork();
    });
  }

  #connect(): void {
    const url = this.#url;
    const tls = url.protocol === 'mqtts:';
    const port = url.port === '' ? (tls ? 8883 : 1883) : Number(url.port);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const socket = tls ? tlsConnect({ host, port, servername: host, ...this.#o.tls }) : netConnect({ host, port });
    socket.setNoDelay(true);
    const version = this.#version;
    const conn: Connection = { socket, version, unacked: 0, open: false };
    this.#conn = conn;
    const parser = mqttPacket.parser({ protocolVersion: version });
    let connackSeen = false;
    const timeout = setTimeout(() => {
      this.#log('warn', 'mqtt-connect-timeout', { broker: this.#redactedUrl(), ms: this.#o.connectTimeoutMs });
      socket.destroy(new Error(`no CONNACK within ${this.#o.connectTimeoutMs} ms`));
    }, this.#o.connectTimeoutMs);
    let failure: Error | undefined;

    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connack') {
        connackSeen = true;
        clearTimeout(timeout);
        this.#onConnack(conn, packet);
        return;
      }
      this.#onPacket(conn, packet);
    });
    parser.on('error', (e: Error) => {
      failure = new Error(`MQTT protocol error from the broker: ${e.message}`);
      socket.destroy();
    });
    socket.on(tls ? 'secureConnect' : 'connect', () => {
      const username = this.#o.username ?? (url.username === '' ? undefined : decodeURIComponent(url.username));
      const password = this.#o.password ?? (url.password === '' ? undefined : decodeURIComponent(url.password));
      const packet: Packet = {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: version,
        clientId: this.#o.clientId,
        clean: false,
        keepalive: this.#o.keepaliveSeconds,
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password: Buffer.from(password, 'utf8') }),
        ...(version === 5
          ? {
              properties: {
                sessionExpiryInterval: this.#o.sessionExpirySeconds,
                receiveMaximum: this.#o.receiveMaximum,
                maximumPacketSize: this.#o.maxPacketBytes,
              },
            }
          : {}),
      };
      socket.write(mqttPacket.generate(packet, { protocolVersion: version }));
    });
    socket.on('data', (chunk: Buffer) => {
      parser.parse(chunk);
    });
    socket.on('error', (e) => {
      failure ??= e;
    });
    socket.on('close', () => {
      clearTimeout(timeout);
      const wasOpen = conn.open;
      this.#teardown(conn, failure ?? new Error('connection closed'));
      if (this.#closing) return;
      if (conn.versionRefused !== undefined) {
        this.#fallBack(conn.versionRefused);
        return;
      }
      if (
        !connackSeen &&
        !wasOpen &&
        this.#autoVersion &&
        version === 5 &&
        !this.#everConnected &&
        failure === undefined
      ) {
        // Some brokers close the connection on a version they do not speak instead of answering.
        this.#fallBack('the broker closed the connection without a CONNACK');
        return;
      }
      if (!this.#everConnected && this.#firstConnect) {
        const first = this.#firstConnect;
        this.#firstConnect = undefined;
        first.reject(
          new Error(
            `cannot connect to the MQTT broker ${this.#redactedUrl()}: ${(failure ?? new Error('connection closed')).message}`,
          ),
        );
        this.#closing = true;
        return;
      }
      this.#log('warn', 'mqtt-disconnected', { broker: this.#redactedUrl(), error: failure?.message });
      this.emit('offline');
      this.#scheduleReconnect();
    });
  }

  #fallBack(why: string): void {
    this.#log('info', 'mqtt-protocol-fallback', { broker: this.#redactedUrl(), from: 5, to: 4, why });
    if (this.#o.subscriptions.some((s) => s.topic.startsWith('$share/'))) {
      const first = this.#firstConnect;
      this.#firstConnect = undefined;
      this.#closing = true;
      first?.reject(new Error(`the broker does not speak MQTT 5, which shared subscriptions ($share/…) need (${why})`));
      return;
    }
    this.#version = 4;
    this.#connect();
  }

  #redactedUrl(): string {
    const u = new URL(this.#url.href);
    if (u.password !== '') u.password = '***';
    return u.href;
  }

  #scheduleReconnect(): void {
    const delay = this.#reconnectDelay;
    this.#reconnectDelay = Math.min(this.#o.reconnectMaxMs, delay * 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#closing) return;
      this.reconnects++;
      this.#connect();
    }, delay);
  }

  #onConnack(conn: Connection, packet: IConnackPacket): void {
    const code = conn.version === 5 ? (packet.reasonCode ?? 0) : (packet.returnCode ?? 0);
    if (code !== 0) {
      if (this.#autoVersion && conn.version === 5 && !this.#everConnected && (code === 1 || code === 0x84)) {
        conn.versionRefused = `CONNACK code ${code}`;
        conn.socket.destroy();
        return;
      }
      const why = conn.version === 5 ? `reason code 0x${code.toString(16)}` : (CONNACK_V4[code] ?? `code ${code}`);
      conn.socket.destroy(new Error(`the broker refused the connection: ${why}`));
      return;
    }
    conn.open = true;
    this.#reconnectDelay = this.#o.reconnectMinMs;
    const first = !this.#everConnected;
    if (this.#everConnected && !packet.sessionPresent) {
      this.#log('warn', 'mqtt-session-lost', {
        broker: this.#redactedUrl(),
        why: 'the broker kept no session for this client id: messages published while disconnected are not queued',
      });
    }
    this.#startPing(conn);
    this.#subscribe(conn).then(
      () => {
        this.#everConnected = true;
        this.#log('info', 'mqtt-connected', {
          broker: this.#redactedUrl(),
          clientId: this.#o.clientId,
          protocolVersion: conn.version,
          sessionPresent: packet.sessionPresent,
          subscriptions: this.#o.subscriptions.map((s) => s.topic),
        });
        this.emit('online');
        if (first && this.#firstConnect) {
          const f = this.#firstConnect;
          this.#firstConnect = undefined;
          f.resolve();
        }
      },
      (e: Error) => {
        if (first && this.#firstConnect) {
          const f = this.#firstConnect;
          this.#firstConnect = undefined;
          this.#closing = true;
          f.reject(e);
        } else {
          this.#log('error', 'mqtt-subscribe-failed', { error: e.message });
        }
        conn.socket.destroy();
      },
    );
  }

  #subscribe(conn: Connection): Promise<void> {
    const id = this.#allocateId();
    return new Promise<number[]>((resolve, reject) => {
      this.#subscribes.set(id, { resolve, reject });
      this.#send(conn, {
        cmd: 'subscribe',
        messageId: id,
        // Retain Handling 2: no retained messages on subscribe (ignored by 3.1.1's encoder).
        subscriptions: this.#o.subscriptions.map((s) => ({ topic: s.topic, qos: s.qos, rh: 2 })),
      });
    }).then((granted) => {
      const refused = granted
        .map((g, i) => ({ g, topic: this.#o.subscriptions[i]?.topic }))
        .filter(({ g }) => g >= 0x80);
      if (refused.length > 0)
        throw new Error(
          `the broker refused the subscription(s) ${refused.map((r) => `${r.topic} (0x${r.g.toString(16)})`).join(', ')}`,
        );
    });
  }

  #startPing(conn: Connection): void {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#awaitingPong = false;
    const every = Math.max(1000, (this.#o.keepaliveSeconds * 1000) / 2);
    this.#pingTimer = setInterval(() => {
      if (!conn.open) return;
      if (this.#awaitingPong) {
        this.#log('warn', 'mqtt-keepalive-timeout', { broker: this.#redactedUrl() });
        conn.socket.destroy(new Error('keepalive timeout'));
        return;
      }
      this.#awaitingPong = true;
      this.#send(conn, { cmd: 'pingreq' });
    }, every);
  }

  #onPacket(conn: Connection, packet: Packet): void {
    switch (packet.cmd) {
      case 'publish':
        this.#onPublish(conn, packet);
        return;
      case 'pubrel':
        this.#sendAck(conn, 'pubcomp', packet.messageId!);
        return;
      case 'puback': {
        const p = this.#publishes.get(packet.messageId!);
        if (p === undefined) return;
        this.#publishes.delete(packet.messageId!);
        const code = packet.reasonCode ?? 0;
        if (code >= 0x80) p.reject(new Error(`the broker refused the publish (reason 0x${code.toString(16)})`));
        else p.resolve();
        return;
      }
      case 'suback': {
        const s = this.#subscribes.get(packet.messageId!);
        if (s === undefined) return;
        this.#subscribes.delete(packet.messageId!);
        s.resolve((packet.granted as number[]).map((g) => (typeof g === 'number' ? g : 0)));
        return;
      }
      case 'pingresp':
        this.#awaitingPong = false;
        return;
      case 'disconnect': {
        const code = packet.reasonCode ?? 0;
        if (code === 0x8e) {
          this.#log('error', 'mqtt-session-taken-over', {
            clientId: this.#o.clientId,
            why: 'another client connected with the same client id: give every instance its own --client-id',
          });
        } else {
          this.#log('warn', 'mqtt-server-disconnect', { reasonCode: code });
        }
        conn.socket.destroy();
        return;
      }
      default:
        return;
    }
  }

  #onPublish(conn: Connection, packet: IPublishPacket): void {
    if (this.#paused) return; // left unacknowledged: the broker redelivers it later
    if (packet.retain) {
      // A stored copy sent on subscribe (MQTT 3.1.1, or a broker ignoring Retain Handling): drop it.
      this.retainedDropped++;
      if (this.retainedDropped === 1 || this.retainedDropped % 1000 === 0)
        this.#log('info', 'mqtt-retained-dropped', { topic: packet.topic.slice(0, 200), total: this.retainedDropped });
      if (packet.qos > 0) this.#sendAck(conn, packet.qos === 1 ? 'puback' : 'pubrec', packet.messageId!);
      return;
    }
    const raw = packet.payload;
    // A private copy: the parser's buffer list may share memory with later reads.
    const payload = typeof raw === 'string' ? new TextEncoder().encode(raw) : this.#copy(raw);
    if (packet.qos !== 0) {
      conn.unacked++;
      if (conn.unacked >= this.#o.maxUnacked && !conn.socket.isPaused()) conn.socket.pause();
    }
    this.#onMessage(new Inbound(this, conn, packet, payload));
  }

  /**
   * A copy of a payload as a plain Uint8Array. Small ones (data messages are ~100 bytes) are cut
   * from a shared slab, as Node's Buffer pool does, instead of each getting an ArrayBuffer of its
   * own: one allocation per slab rather than per message. A message held for long (the pending
   * buffer: at most 1536 messages, 10 s) keeps at most its slab alive.
   */
  #copy(raw: Buffer): Uint8Array {
    const n = raw.length;
    if (n > SLAB_COPY_MAX) return new Uint8Array(raw);
    if (this.#slabAt + n > SLAB_BYTES) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabAt = 0;
    }
    const at = this.#slabAt;
    copyInto(this.#slab, raw, at);
    this.#slabAt = (at + n + 7) & ~7; // 8-byte aligned, as allocations are
    return this.#slab.subarray(at, at + n);
  }

  /** `InboundMessage.ack` of a QoS 1/2 message read on `conn` (once per message). @internal */
  acknowledge(conn: Connection, qos: QoS, id: number): void {
    if (!conn.open || this.#conn !== conn) return;
    conn.unacked--;
    this.#sendAck(conn, qos === 1 ? 'puback' : 'pubrec', id);
    if (conn.socket.isPaused() && conn.unacked < this.#o.maxUnacked / 2) conn.socket.resume();
  }

  #teardown(conn: Connection | undefined, error: Error): void {
    if (conn !== undefined) {
      conn.open = false;
      conn.unacked = 0;
    }
    if (this.#pingTimer) {
      clearInterval(this.#pingTimer);
      this.#pingTimer = undefined;
    }
    for (const p of this.#publishes.values()) p.reject(error);
    this.#publishes.clear();
    for (const s of this.#subscribes.values()) s.reject(error);
    this.#subscribes.clear();
  }
}
