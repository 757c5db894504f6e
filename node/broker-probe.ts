/**
 * Checks that an MQTT broker answers before a command writes anything (a CA, a storage key, a
 * batch): one connection, one CONNACK, closed again. The failure is one sentence that names the
 * broker (its password hidden) and says what happened — refused, no answer in time, TLS, bad
 * credentials — so a command can print it and exit before it has made files it would not need.
 */
import mqtt, { type IClientOptions } from 'mqtt';
import { redactUrl } from './redact-url.js';

export class BrokerUnreachable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BrokerUnreachable';
  }
}

export interface ProbeOptions {
  /** How long to wait for the CONNACK (default 10 000 ms). */
  timeoutMs?: number;
  /** More MQTT.js options: credentials, TLS (ca), … */
  mqtt?: IClientOptions;
}

/** Resolves once `url` accepted a connection; rejects with `BrokerUnreachable` otherwise. */
export async function probeBroker(url: string, options: ProbeOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const shown = redactUrl(url);
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const client = mqtt.connect(url, {
      ...options.mqtt,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs,
      clientId: `cose-flow-probe-${Math.random().toString(16).slice(2, 10)}`,
    });
    const timer = setTimeout(
      () =>
        fail(
          `the broker ${shown} accepted the TCP connection but did not answer the MQTT CONNECT within ` +
            `${timeoutMs / 1000} s (is it an MQTT broker? is it overloaded?)`,
        ),
      timeoutMs + 500,
    );
    const done = (error?: BrokerUnreachable) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end(true, () => (error === undefined ? resolve() : reject(error)));
    };
    const fail = (why: string) => done(new BrokerUnreachable(why));
    client.once('connect', () => done());
    client.once('error', (e) => fail(connectFailure(e, shown, timeoutMs)));
    client.once('close', () => fail(`cannot connect to ${shown}: the connection closed before the broker answered`));
  });
}

/**
 * Why a connection to the broker `shown` (its password already hidden) failed, as one sentence:
 * MQTT.js's connection errors (refused, unknown host, no CONNACK in `timeoutMs`, …) in words.
 */
export function connectFailure(e: Error & { code?: string | number }, shown: string, timeoutMs: number): string {
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code === 'ECONNREFUSED') return `cannot connect to ${shown}: connection refused (is the broker running there?)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot connect to ${shown}: unknown host`;
  if (/connack timeout/i.test(e.message))
    return `the broker ${shown} did not answer the MQTT CONNECT within ${timeoutMs / 1000} s`;
  return `cannot connect to ${shown}: ${e.message}`;
}
