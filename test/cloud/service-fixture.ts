/**
 * What the cloud service tests share: a data directory made exactly as `cose-flow ca init` and
 * `cose-flow cloud keygen` leave it (cloud/pki/setup.ts initCa, cloudKeygen), devices with
 * certificates from that CA, and their real key and data messages (src/profile makeKeyMessage,
 * sealData), a test publisher, a log capture, and small waiting helpers.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import { type CertificateAuthority, generateKeyPair, issueCertificate } from '../../cloud/pki/authority.js';
import { cloudKeygen, loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { initCa } from '../../cloud/pki/setup.js';
import { createLogger, type Logger } from '../../cloud/service/log.js';
import { nodeCrypto } from '../../node/crypto.js';
import { encode } from '../../src/cbor/index.js';
import type { P256PrivateKey } from '../../src/crypto/provider.js';
import { sealData } from '../../src/profile/data-message.js';
import { makeKeyMessage } from '../../src/profile/key-message.js';
import { newSessionKey, type SessionKey } from '../../src/profile/session.js';
import { topic } from '../../src/profile/topics.js';

export const crypto = nodeCrypto();

export interface CloudFixture {
  dataDir: string;
  ca: CertificateAuthority;
  cloudPublicKey: Uint8Array;
}

/** `ca init` + `cloud keygen` into `dataDir`. */
export async function makeCloudDataDir(dataDir: string, name = 'cloud service test CA'): Promise<CloudFixture> {
  mkdirSync(dataDir, { recursive: true });
  const { ca } = await initCa(crypto, dataDir, { name });
  await cloudKeygen(crypto, dataDir);
  const current = [...loadCloudKeys(crypto, dataDir).values()].find((k) => k.current)!;
  return { dataDir, ca, cloudPublicKey: current.publicKey };
}

export interface DeviceOptions {
  /** Issue from this CA instead of the fixture's. */
  ca?: CertificateAuthority;
  notBefore?: Date;
  notAfter?: Date;
  /** The certificate's CN (default the device id). */
  commonName?: string;
}

/** A simulated device: its key, certificate and message makers. */
export class TestDevice {
  readonly sessions = new Map<number, { session: SessionKey; keyMessage: Uint8Array }>();
  constructor(
    readonly id: string,
    readonly key: P256PrivateKey,
    readonly certificate: Uint8Array,
    readonly serialHex: string,
    readonly cloudPublicKey: Uint8Array,
    /** The certificate's CN, which the key messages name (PartyU identity); the device id unless set otherwise. */
    readonly commonName: string = id,
  ) {}

  /** The key message of session `kid` (made once; the same bytes on every call, as a device resends). */
  keyMessage(kid: number): Uint8Array {
    return this.#session(kid).keyMessage;
  }

  session(kid: number): SessionKey {
    return this.#session(kid).session;
  }

  /** A fresh key message for `kid` (new session key): what a device that lost its counter sends. */
  otherKeyMessage(kid: number): Uint8Array {
    return makeKeyMessage(crypto, {
      deviceId: this.commonName,
      deviceKey: this.key,
      deviceCertificate: this.certificate,
      cloudPublicKey: this.cloudPublicKey,
      session: newSessionKey(crypto, kid),
    });
  }

  /** Data message `seq` of session `kid` carrying `value` as CBOR (default {seq, t}). */
  data(kid: number, seq: number, value: unknown = new Map<string, unknown>([['seq', seq]])): Uint8Array {
    return sealData(crypto, this.#session(kid).session, seq, encode(value));
  }

  #session(kid: number) {
    let s = this.sessions.get(kid);
    if (s === undefined) {
      const session = newSessionKey(crypto, kid);
      const keyMessage = makeKeyMessage(crypto, {
        deviceId: this.commonName,
        deviceKey: this.key,
        deviceCertificate: this.certificate,
        cloudPublicKey: this.cloudPublicKey,
        session,
      });
      s = { session, keyMessage };
      this.sessions.set(kid, s);
    }
    return s;
  }
}

export async function makeDevice(fixture: CloudFixture, id: string, options: DeviceOptions = {}): Promise<TestDevice> {
  const pair = generateKeyPair();
  const key = crypto.p256Import(pair.privateScalar);
  pair.privateScalar.fill(0);
  const issued = await issueCertificate(options.ca ?? fixture.ca, {
    commonName: options.commonName ?? id,
    publicKey: pair.publicKey,
    keyUsage: 'device',
    ...(options.notBefore === undefined ? {} : { notBefore: options.notBefore }),
    ...(options.notAfter === undefined ? {} : { notAfter: options.notAfter }),
  });
  return new TestDevice(id, key, issued.der, issued.serialHex, fixture.cloudPublicKey, options.commonName ?? id);
}

/** A publisher for tests (MQTT.js, MQTT 3.1.1 so it works on aedes too). */
export async function connectPublisher(url: string, clientId: string): Promise<Publisher> {
  const client = await mqtt.connectAsync(url, { clientId, reconnectPeriod: 200, protocolVersion: 4 });
  return new Publisher(client);
}

export class Publisher {
  constructor(readonly client: MqttClient) {}

  key(device: TestDevice | string, bytes: Uint8Array): Promise<unknown> {
    const id = typeof device === 'string' ? device : device.id;
    return this.client.publishAsync(topic('session', id), Buffer.from(bytes), { qos: 2 });
  }

  data(device: TestDevice | string, bytes: Uint8Array, qos: 0 | 1 = 1): Promise<unknown> {
    const id = typeof device === 'string' ? device : device.id;
    return this.client.publishAsync(topic('data', id), Buffer.from(bytes), { qos });
  }

  raw(name: string, bytes: Uint8Array, qos: 0 | 1 | 2 = 1): Promise<unknown> {
    return this.client.publishAsync(name, Buffer.from(bytes), { qos });
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

/** A logger whose JSON lines are kept in memory (and parsed on demand). */
export function captureLog(level: 'debug' | 'info' | 'warn' = 'info'): {
  logger: Logger;
  lines: () => Record<string, unknown>[];
  text: () => string;
} {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  const logger = createLogger({ level, destination: stream });
  return {
    logger,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true (or throws with `what` after `ms`). */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

export function tempPath(dir: string, name: string): string {
  return join(dir, name);
}
