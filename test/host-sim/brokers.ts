/**
 * Brokers the device integration tests run against, each restartable on the same port:
 * - aedes in this process (always); what arrives is seen through the broker's own `publish` event;
 * - mosquitto (a child process, persistence on), when `mosquitto` is installed: what arrives is
 *   seen by an observer with a persistent session, which mosquitto keeps across a restart.
 *
 * `mosquittoAvailability()` decides whether the mosquitto variant runs: in CI (CI=true) a missing
 * mosquitto is a failure; locally the variant is skipped with a loud warning.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';

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

export function mosquittoPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto'], { encoding: 'utf8' });
  const path = found.stdout.trim().split('\n')[0];
  return found.status === 0 && path ? path : undefined;
}

/** Whether to run the mosquitto variant: 'run', or why not ('skip' locally; CI throws). */
export function mosquittoAvailability(): { run: true; path: string } | { run: false; why: string } {
  const path = mosquittoPath();
  if (path !== undefined) return { run: true, path };
  const why = 'mosquitto is not installed (apt-get install mosquitto)';
  if (process.env.CI === 'true' || process.env.CI === '1') {
    throw new Error(`${why}: CI must run the device tests against mosquitto too (.ci/run installs it)`);
  }
  process.stderr.write(
    `\n!!!!!!!!!! WARNING: ${why}; the mosquitto variant of the device tests is SKIPPED !!!!!!!!!!\n\n`,
  );
  return { run: false, why };
}

async function waitForPort(port: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function startMosquitto(path: string, topicFilter = 'cose-flow/#'): Promise<RestartableBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-mosquitto-'));
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 100000',
      'max_inflight_messages 100',
      // As root, mosquitto switches to the `mosquitto` user, which cannot write this directory: its
      // persistence (the observer's session across a restart) would silently not be saved.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  let output = '';
  const start = async () => {
    const proc = spawn(path, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (d) => (output += d));
    proc.stderr?.on('data', (d) => (output += d));
    child = proc;
    try {
      await waitForPort(port);
    } catch (e) {
      throw new Error(`${(e as Error).message}; mosquitto said: ${output}`);
    }
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM'); // mosquitto saves its persistent sessions on the way out
    });
  };
  await start();
  const url = `mqtt://127.0.0.1:${port}`;
  const handlers: PublishHandler[] = [];
  // The observer: a persistent session (clean: false) subscribed at QoS 2, so that what arrives
  // while it is reconnecting after a restart is queued for it by the broker.
  const observer: MqttClient = await mqtt.connectAsync(url, {
    clientId: `cf-observer-${port}`,
    clean: false,
    reconnectPeriod: 100,
  });
  await observer.subscribeAsync(topicFilter, { qos: 2 });
  observer.on('message', (name, payload) => {
    for (const handler of handlers) handler(name, new Uint8Array(payload));
  });
  return {
    kind: 'mosquitto',
    url,
    port,
    onPublish: (handler) => void handlers.push(handler),
    stop,
    start,
    close: async () => {
      await observer.endAsync(true);
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
