/**
 * The demo's attacker: someone on the broker (a compromised bridge, a leaked broker password)
 * who sees every device's messages and publishes on any device's topic, but holds no device key,
 * no session key and no CA key. Each `round()` injects one message of each kind it can make from
 * what it has captured so far; the cloud service must refuse every one of them while genuine
 * traffic flows on:
 *
 *   replay             a captured data message, verbatim (the oldest one captured of its device):
 *                      `duplicate` while its sequence number is inside the replay window, `replay`
 *                      once it has fallen behind it; never stored twice
 *   tampered           a captured data message with its sequence number rewritten to a fresh one
 *                      and one ciphertext bit flipped: `decrypt-failed`
 *   key-replay         a captured key message published on another device's topic: `device-mismatch`
 *   forged-certificate a key message for a real device id, signed by a key the attacker certified
 *                      with its own look-alike CA: `bad-certificate`
 *   garbage            random bytes on a data topic: `bad-cbor` (or another structural reason)
 *
 * The attacker publishes with QoS 1 so that each injected message reaches the cloud service.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { createCa, generateKeyPair, issueCertificate } from '../cloud/pki/authority.js';
import { certificateP256PublicKey } from '../cloud/pki/certificate.js';
import { toHex } from '../src/bytes.js';
import { encode, Tag } from '../src/cbor/index.js';
import { CoseTag, Header } from '../src/cose/headers.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { encodePartialIv } from '../src/profile/counter.js';
import { type ParsedDataMessage, parseDataMessage } from '../src/profile/data-message.js';
import { makeKeyMessage } from '../src/profile/key-message.js';
import { DEFAULT_PREFIX } from '../src/profile/limits.js';
import { newSessionKey } from '../src/profile/session.js';
import { parseTopic, topic, topicFilter } from '../src/profile/topics.js';

export const ATTACK_KINDS = ['replay', 'tampered', 'key-replay', 'forged-certificate', 'garbage'] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

export interface AttackerOptions {
  broker: string;
  /** The cloud's certificate (DER): public, every device has it. */
  cloudCertificate: Uint8Array;
  crypto: CryptoProvider;
  prefix?: string;
  username?: string;
  password?: string;
}

interface Captured {
  deviceId: string;
  bytes: Uint8Array;
  kid: Uint8Array;
  seq: number;
  parsed: ParsedDataMessage;
}

export interface AttackReport {
  rounds: number;
  /** Messages injected, by kind. */
  injected: Record<AttackKind, number>;
  lastAt: number | null;
}

export class Attacker {
  readonly #client: MqttClient;
  readonly #o: AttackerOptions;
  readonly #prefix: string;
  /** Per device: the first data message captured (for replays) and the newest (for tampering). */
  readonly #oldest = new Map<string, Captured>();
  readonly #newest = new Map<string, Captured>();
  readonly #keyMessages = new Map<string, Uint8Array>();
  /** What we published ourselves (hex), so as not to capture it as a device's. */
  readonly #ours = new Set<string>();
  readonly #report: AttackReport = {
    rounds: 0,
    injected: Object.fromEntries(ATTACK_KINDS.map((k) => [k, 0])) as Record<AttackKind, number>,
    lastAt: null,
  };
  #forger: Promise<{ certificate: Uint8Array; key: ReturnType<CryptoProvider['p256Import']> }> | undefined;
  #nextKid = 0x7f_0000_0000n;

  private constructor(client: MqttClient, options: AttackerOptions) {
    this.#client = client;
    this.#o = options;
    this.#prefix = options.prefix ?? DEFAULT_PREFIX;
    client.on('message', (t, payload) => this.#capture(t, new Uint8Array(payload)));
  }

  static async start(options: AttackerOptions): Promise<Attacker> {
    const client = await mqtt.connectAsync(options.broker, {
      clientId: `cose-flow-attacker-${Math.random().toString(16).slice(2, 10)}`,
      clean: true,
      reconnectPeriod: 1000,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
    });
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    await client.subscribeAsync([topicFilter('data', prefix), topicFilter('session', prefix)], { qos: 0 });
    return new Attacker(client, options);
  }

  /** What has been injected so far. */
  report(): AttackReport {
    return { ...this.#report, injected: { ...this.#report.injected } };
  }

  /** Injects one message of each kind it can make now; resolves to what it injected. */
  async round(): Promise<Partial<Record<AttackKind, number>>> {
    const made: Partial<Record<AttackKind, number>> = {};
    const inject = async (kind: AttackKind, t: string, bytes: Uint8Array) => {
      if (this.#ours.size > 1000) this.#ours.clear();
      this.#ours.add(toHex(bytes));
      await this.#client.publishAsync(t, Buffer.from(bytes), { qos: 1 });
      made[kind] = (made[kind] ?? 0) + 1;
      this.#report.injected[kind]++;
    };
    const devices = [...this.#newest.keys()];
    const victim = devices[this.#report.rounds % Math.max(1, devices.length)];
    if (victim !== undefined) {
      const oldest = this.#oldest.get(victim)!;
      await inject('replay', topic('data', victim, this.#prefix), oldest.bytes);
      const newest = this.#newest.get(victim)!;
      await inject('tampered', topic('data', victim, this.#prefix), tamper(newest, newest.seq + 17));
    }
    const keyOwners = [...this.#keyMessages.keys()];
    const target = devices.find((d) => d !== keyOwners[0]) ?? keyOwners.find((d) => d !== keyOwners[0]);
    if (keyOwners.length > 0 && target !== undefined) {
      await inject('key-replay', topic('session', target, this.#prefix), this.#keyMessages.get(keyOwners[0]!)!);
    }
    const impersonated = victim ?? keyOwners[0];
    if (impersonated !== undefined) {
      await inject('forged-certificate', topic('session', impersonated, this.#prefix), await this.#forge(impersonated));
    }
    await inject('garbage', topic('data', impersonated ?? 'nobody', this.#prefix), this.#o.crypto.randomBytes(40));
    this.#report.rounds++;
    this.#report.lastAt = Date.now();
    return made;
  }

  async close(): Promise<void> {
    await this.#client.endAsync();
  }

  #capture(t: string, bytes: Uint8Array): void {
    const where = parseTopic(t, this.#prefix);
    if (where === undefined || this.#ours.has(toHex(bytes))) return;
    if (where.kind === 'session') {
      if (!this.#keyMessages.has(where.deviceId)) this.#keyMessages.set(where.deviceId, bytes);
      return;
    }
    if (where.kind !== 'data') return;
    let parsed: ParsedDataMessage;
    try {
      parsed = parseDataMessage(bytes);
    } catch {
      return; // our own garbage, or someone else's
    }
    const captured = { deviceId: where.deviceId, bytes, kid: parsed.kid, seq: parsed.seq, parsed };
    if (!this.#oldest.has(where.deviceId)) this.#oldest.set(where.deviceId, captured);
    this.#newest.set(where.deviceId, captured);
  }

  /** A key message for `deviceId` under a certificate from the attacker's own CA (same name as the real one). */
  async #forge(deviceId: string): Promise<Uint8Array> {
    const crypto = this.#o.crypto;
    this.#forger ??= (async () => {
      const ca = await createCa({ name: 'cose-flow simulator CA' });
      const pair = generateKeyPair();
      const issued = await issueCertificate(ca, {
        commonName: deviceId,
        publicKey: pair.publicKey,
        keyUsage: 'device',
      });
      const key = crypto.p256Import(pair.privateScalar);
      pair.privateScalar.fill(0);
      return { certificate: issued.der, key };
    })();
    const forger = await this.#forger;
    return makeKeyMessage(crypto, {
      deviceId,
      deviceKey: forger.key,
      deviceCertificate: forger.certificate,
      cloudPublicKey: certificateP256PublicKey(this.#o.cloudCertificate),
      session: newSessionKey(crypto, this.#nextKid++),
    });
  }
}

/** `captured` with sequence number `seq` in its protected header and one ciphertext bit flipped. */
function tamper(captured: Captured, seq: number): Uint8Array {
  const flipped = Uint8Array.from(captured.parsed.message.ciphertext);
  flipped[0]! ^= 0x01;
  const protectedBytes = encode(
    new Map<number, unknown>([
      [Header.alg, 1],
      [Header.kid, captured.kid],
      [Header.partialIv, encodePartialIv(seq)],
    ]),
  );
  return encode(new Tag([protectedBytes, new Map(), flipped], CoseTag.Encrypt0));
}
