/**
 * An MQTT broker in this process (aedes), for the demo and the tests: listens on 127.0.0.1 and a
 * free port unless told otherwise. MQTT 3.1.1; the cloud service falls back to it by itself.
 *
 *   const broker = await startEmbeddedBroker();   // broker.url: mqtt://127.0.0.1:PORT
 *   …
 *   await broker.close();
 */
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBrokerOptions {
  /** Default 127.0.0.1: nothing outside this machine can reach it. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
}

export interface EmbeddedBroker {
  url: string;
  port: number;
  aedes: Aedes;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle);
  const host = options.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => resolve());
    });
  } catch (e) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'EADDRINUSE'
        ? `the MQTT port ${host}:${options.port} is taken: choose another, or use that broker with --broker`
        : `cannot listen for MQTT on ${host}:${options.port ?? 0}: ${(e as Error).message}`,
    );
  }
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the broker has no TCP address');
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://${shownHost}:${address.port}`,
    port: address.port,
    aedes,
    close: () => {
      closing ??= (async () => {
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}
