/**
 * Configuration of `cose-flow cloud run` from flags, environment and a JSON file — in that order
 * of precedence — into `CloudServiceOptions`. One table names each setting's flag, environment
 * variable and file key; docs/CLOUD.md lists it.
 *
 *   --config FILE / COSE_FLOW_CONFIG     {"broker": "mqtt://…", "dataDir": "…", "store": "…", …}
 *   COSE_FLOW_STORAGE_KEY                the storage key itself (64 hex digits): environment only
 *   COSE_FLOW_MQTT_PASSWORD              the broker password: environment (or the broker URL) only
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseListen } from '../http/server.js';
import { DEFAULT_DATA_DIR } from '../pki/data-dir.js';
import { MAX_WINDOW_SIZE } from '../session/replay-window.js';
import { DEFAULT_STORE_FILE, LOG_LEVELS } from './defaults.js';
import type { CloudServiceOptions } from './service.js';

export type SettingKind = 'string' | 'int' | 'list';

export interface Setting {
  /** The flag, without the leading dashes. */
  flag: string;
  env: string;
  /** Key in the JSON configuration file. */
  key: string;
  kind: SettingKind;
  /** Integer bounds. */
  min?: number;
  max?: number;
  help: string;
}

export const SETTINGS: readonly Setting[] = [
  {
    flag: 'broker',
    env: 'COSE_FLOW_BROKER',
    key: 'broker',
    kind: 'string',
    help: 'broker URL: mqtt://[user@]host[:port] or mqtts://…',
  },
  {
    flag: 'data-dir',
    env: 'COSE_FLOW_DATA_DIR',
    key: 'dataDir',
    kind: 'string',
    help: `the CA data directory (default ${DEFAULT_DATA_DIR})`,
  },
  {
    flag: 'store',
    env: 'COSE_FLOW_STORE',
    key: 'store',
    kind: 'string',
    help: 'sqlite:FILE (default sqlite:DATA_DIR/cose-flow.db) or postgres://…',
  },
  {
    flag: 'out',
    env: 'COSE_FLOW_OUT',
    key: 'out',
    kind: 'string',
    help: 'append every stored payload to FILE as a JSON line',
  },
  {
    flag: 'http',
    env: 'COSE_FLOW_HTTP',
    key: 'http',
    kind: 'string',
    help: '[HOST:]PORT for /metrics, /health and the live dashboard at / (default host 127.0.0.1)',
  },
  {
    flag: 'dashboard',
    env: 'COSE_FLOW_DASHBOARD',
    key: 'dashboard',
    kind: 'string',
    help: 'on (default) or off: serve the live dashboard, which shows decrypted readings, on --http',
  },
  {
    flag: 'prefix',
    env: 'COSE_FLOW_PREFIX',
    key: 'prefix',
    kind: 'string',
    help: 'topic prefix (default cose-flow/v1)',
  },
  {
    flag: 'share',
    env: 'COSE_FLOW_SHARE',
    key: 'share',
    kind: 'string',
    help: 'MQTT 5 shared subscription group: N instances split the messages',
  },
  {
    flag: 'client-id',
    env: 'COSE_FLOW_CLIENT_ID',
    key: 'clientId',
    kind: 'string',
    help: 'MQTT client id, stable and unique per instance',
  },
  {
    flag: 'storage-key-file',
    env: 'COSE_FLOW_STORAGE_KEY_FILE',
    key: 'storageKeyFile',
    kind: 'string',
    help: 'the at-rest key file (default DATA_DIR/storage.key)',
  },
  {
    flag: 'trust',
    env: 'COSE_FLOW_TRUST',
    key: 'trust',
    kind: 'list',
    help: 'CA certificate file(s) for device certificates (default DATA_DIR/ca.pem); repeat, or comma-separate',
  },
  {
    flag: 'mqtt-version',
    env: 'COSE_FLOW_MQTT_VERSION',
    key: 'mqttVersion',
    kind: 'string',
    help: '5, 3.1.1 or auto (default auto: 5, else 3.1.1)',
  },
  {
    flag: 'mqtt-username',
    env: 'COSE_FLOW_MQTT_USERNAME',
    key: 'mqttUsername',
    kind: 'string',
    help: 'broker user name (password: COSE_FLOW_MQTT_PASSWORD)',
  },
  {
    flag: 'mqtt-ca',
    env: 'COSE_FLOW_MQTT_CA',
    key: 'mqttCa',
    kind: 'string',
    help: 'CA certificate file (PEM) for an mqtts:// broker',
  },
  {
    flag: 'session-expiry',
    env: 'COSE_FLOW_SESSION_EXPIRY',
    key: 'sessionExpiry',
    kind: 'int',
    min: 0,
    max: 4294967295,
    help: 'seconds the broker keeps the session while the service is away (default 86400)',
  },
  {
    flag: 'receive-maximum',
    env: 'COSE_FLOW_RECEIVE_MAXIMUM',
    key: 'receiveMaximum',
    kind: 'int',
    min: 2,
    max: 65535,
    help: 'unacknowledged messages the broker may send (default 4096)',
  },
  {
    flag: 'window',
    env: 'COSE_FLOW_WINDOW',
    key: 'window',
    kind: 'int',
    min: 1,
    max: MAX_WINDOW_SIZE,
    help: 'replay window size W (default 64; 1024 with --share)',
  },
  {
    flag: 'max-message-bytes',
    env: 'COSE_FLOW_MAX_MESSAGE_BYTES',
    key: 'maxMessageBytes',
    kind: 'int',
    min: 64,
    max: 16 * 1024 * 1024,
    help: 'larger messages are refused as too-large (default 65536)',
  },
  {
    flag: 'batch-max',
    env: 'COSE_FLOW_BATCH_MAX',
    key: 'batchMax',
    kind: 'int',
    min: 1,
    max: 100_000,
    help: 'most payloads per store transaction (default 1000)',
  },
  {
    flag: 'pending-per-device',
    env: 'COSE_FLOW_PENDING_PER_DEVICE',
    key: 'pendingPerDevice',
    kind: 'int',
    min: 0,
    max: 100_000,
    help: 'data messages held per device waiting for their key message (default 64)',
  },
  {
    flag: 'pending-total',
    env: 'COSE_FLOW_PENDING_TOTAL',
    key: 'pendingTotal',
    kind: 'int',
    min: 0,
    max: 1_000_000,
    help: 'data messages held in all (default 1024)',
  },
  {
    flag: 'pending-ttl-ms',
    env: 'COSE_FLOW_PENDING_TTL_MS',
    key: 'pendingTtlMs',
    kind: 'int',
    min: 0,
    max: 3_600_000,
    help: 'how long held data waits (default 10000)',
  },
  {
    flag: 'rekey-interval-ms',
    env: 'COSE_FLOW_REKEY_INTERVAL_MS',
    key: 'rekeyIntervalMs',
    kind: 'int',
    min: 0,
    max: 86_400_000,
    help: 'at most one re-key request per device per interval (default 60000)',
  },
  {
    flag: 'session-grace-ms',
    env: 'COSE_FLOW_SESSION_GRACE_MS',
    key: 'sessionGraceMs',
    kind: 'int',
    min: 0,
    max: 86_400_000,
    help: 'how long a session stays open once a newer kid of its device is stored (default 120000)',
  },
  {
    flag: 'session-grace-messages',
    env: 'COSE_FLOW_SESSION_GRACE_MESSAGES',
    key: 'sessionGraceMessages',
    kind: 'int',
    min: 0,
    max: 4_294_967_295,
    help: 'payloads a session still accepts once a newer kid of its device is stored (default 1000)',
  },
  {
    flag: 'log-level',
    env: 'COSE_FLOW_LOG_LEVEL',
    key: 'logLevel',
    kind: 'string',
    help: `${LOG_LEVELS.join(', ')} (default info)`,
  },
  {
    flag: 'log-format',
    env: 'COSE_FLOW_LOG_FORMAT',
    key: 'logFormat',
    kind: 'string',
    help: 'json (one object per line) or pretty (for people); default pretty on a terminal, json otherwise',
  },
];

export type FlagValues = Record<string, string | string[] | boolean | undefined>;

/** A configuration problem (exit 2 from the CLI). */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface RunConfig {
  options: CloudServiceOptions;
  logLevel: (typeof LOG_LEVELS)[number];
  /** Undefined: the CLI chooses (pretty on a terminal). */
  logFormat: 'json' | 'pretty' | undefined;
  /** Where each setting came from (for the start-up log line). */
  sources: Record<string, 'flag' | 'environment' | 'file'>;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `cannot read the configuration file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(`${path} must hold one JSON object`);
  const known = new Set(SETTINGS.map((s) => s.key));
  for (const key of Object.keys(value)) {
    if (!known.has(key))
      throw new ConfigError(`${path}: unknown setting ${JSON.stringify(key)} (known: ${[...known].join(', ')})`);
  }
  return value as Record<string, unknown>;
}

/** Resolves flags (from parseArgs), environment and configuration file into service options. */
export function resolveRunConfig(flags: FlagValues, env: NodeJS.ProcessEnv = process.env): RunConfig {
  const configPath = (flags.config as string | undefined) ?? env.COSE_FLOW_CONFIG;
  const file = configPath === undefined || configPath === '' ? {} : readConfigFile(configPath);
  const sources: RunConfig['sources'] = {};
  const raw = new Map<string, string | string[]>();
  for (const s of SETTINGS) {
    const flag = flags[s.flag];
    if (flag !== undefined && flag !== false) {
      raw.set(s.key, flag as string | string[]);
      sources[s.key] = 'flag';
      continue;
    }
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== '') {
      raw.set(
        s.key,
        s.kind === 'list'
          ? fromEnv
              .split(',')
              .map((x) => x.trim())
              .filter((x) => x !== '')
          : fromEnv,
      );
      sources[s.key] = 'environment';
      continue;
    }
    if (Object.hasOwn(file, s.key)) {
      const v = file[s.key];
      if (s.kind === 'list') {
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
          throw new ConfigError(`${configPath}: ${s.key} must be an array of strings`);
        raw.set(s.key, v as string[]);
      } else if (typeof v === 'string' || (s.kind === 'int' && typeof v === 'number')) {
        raw.set(s.key, String(v));
      } else {
        throw new ConfigError(`${configPath}: ${s.key} must be a ${s.kind === 'int' ? 'number' : 'string'}`);
      }
      sources[s.key] = 'file';
    }
  }
  const str = (key: string): string | undefined => {
    const v = raw.get(key);
    if (v === undefined) return undefined;
    const text = Array.isArray(v) ? v[v.length - 1]! : v;
    if (text === '') throw new ConfigError(`${flagOf(key)} must not be empty`);
    return text;
  };
  const int = (key: string): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    const s = SETTINGS.find((x) => x.key === key)!;
    if (!/^[0-9]+$/.test(v)) throw new ConfigError(`${flagOf(key)} must be a whole number, got ${JSON.stringify(v)}`);
    const n = Number(v);
    if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max))
      throw new ConfigError(`${flagOf(key)} must be from ${s.min} to ${s.max}, got ${n}`);
    return n;
  };

  const broker = str('broker');
  if (broker === undefined)
    throw new ConfigError('--broker URL is required (or COSE_FLOW_BROKER, or "broker" in the configuration file)');
  if (!/^mqtts?:\/\//.test(broker))
    throw new ConfigError(`--broker must be an mqtt:// or mqtts:// URL, got ${JSON.stringify(broker)}`);
  const dataDir = str('dataDir') ?? DEFAULT_DATA_DIR;
  const options: CloudServiceOptions = { brokerUrl: broker, dataDir };
  const set = <K extends keyof CloudServiceOptions>(k: K, v: CloudServiceOptions[K] | undefined) => {
    if (v !== undefined) options[k] = v;
  };
  const store = str('store');
  if (store !== undefined && !/^(sqlite:|postgres(ql)?:\/\/)/.test(store))
    throw new ConfigError(
      `--store must be sqlite:FILE or postgres://…, got ${JSON.stringify(store.replace(/:[^:@/]*@/, ':***@'))}`,
    );
  set('store', store);
  set('out', str('out'));
  const http = str('http');
  if (http !== undefined) {
    const listen = parseListen(http);
    if (listen === undefined) throw new ConfigError(`--http must be [HOST:]PORT, got ${JSON.stringify(http)}`);
    options.http = listen;
  }
  const page = str('dashboard');
  if (page !== undefined && page !== 'on' && page !== 'off')
    throw new ConfigError(`--dashboard must be on or off, got ${JSON.stringify(page)}`);
  if (page === 'off' && options.http !== undefined) options.http.dashboard = false;
  set('prefix', str('prefix'));
  set('shareGroup', str('share'));
  set('clientId', str('clientId'));
  set('storageKeyFile', str('storageKeyFile'));
  if (env.COSE_FLOW_STORAGE_KEY !== undefined && env.COSE_FLOW_STORAGE_KEY !== '') {
    options.storageKeyHex = env.COSE_FLOW_STORAGE_KEY;
    sources.storageKey = 'environment';
  }
  const trust = raw.get('trust');
  if (trust !== undefined) options.trustAnchors = Array.isArray(trust) ? trust : [trust];
  const mqtt: NonNullable<CloudServiceOptions['mqtt']> = {};
  const version = str('mqttVersion');
  if (version !== undefined) {
    const v = { '5': 5, '3.1.1': 4, '4': 4, auto: 'auto' }[version] as 5 | 4 | 'auto' | undefined;
    if (v === undefined)
      throw new ConfigError(`--mqtt-version must be 5, 3.1.1 or auto, got ${JSON.stringify(version)}`);
    mqtt.protocolVersion = v;
  }
  const username = str('mqttUsername');
  if (username !== undefined) mqtt.username = username;
  if (env.COSE_FLOW_MQTT_PASSWORD) mqtt.password = env.COSE_FLOW_MQTT_PASSWORD;
  const mqttCa = str('mqttCa');
  if (mqttCa !== undefined) {
    try {
      mqtt.tls = { ca: readFileSync(mqttCa, 'utf8') };
    } catch (e) {
      throw new ConfigError(
        `cannot read --mqtt-ca ${mqttCa}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  }
  const expiry = int('sessionExpiry');
  if (expiry !== undefined) mqtt.sessionExpirySeconds = expiry;
  const receiveMaximum = int('receiveMaximum');
  if (receiveMaximum !== undefined) mqtt.receiveMaximum = receiveMaximum;
  if (Object.keys(mqtt).length > 0) options.mqtt = mqtt;
  if (options.shareGroup !== undefined && mqtt.protocolVersion === 4)
    throw new ConfigError('--share needs MQTT 5 (shared subscriptions): drop --mqtt-version 3.1.1');
  set('windowSize', int('window'));
  set('maxMessageBytes', int('maxMessageBytes'));
  set('maxBatch', int('batchMax'));
  const pending: NonNullable<CloudServiceOptions['pending']> = {};
  const perDevice = int('pendingPerDevice');
  if (perDevice !== undefined) pending.perDevice = perDevice;
  const total = int('pendingTotal');
  if (total !== undefined) pending.total = total;
  const ttl = int('pendingTtlMs');
  if (ttl !== undefined) pending.ttlMs = ttl;
  if (Object.keys(pending).length > 0) options.pending = pending;
  set('rekeyIntervalMs', int('rekeyIntervalMs'));
  const grace: NonNullable<CloudServiceOptions['sessionGrace']> = {};
  const graceMs = int('sessionGraceMs');
  if (graceMs !== undefined) grace.ms = graceMs;
  const graceMessages = int('sessionGraceMessages');
  if (graceMessages !== undefined) grace.messages = graceMessages;
  if (Object.keys(grace).length > 0) options.sessionGrace = grace;
  const level = str('logLevel') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  const format = str('logFormat');
  if (format !== undefined && format !== 'json' && format !== 'pretty')
    throw new ConfigError(`--log-format must be json or pretty, got ${JSON.stringify(format)}`);
  return { options, logLevel: level as RunConfig['logLevel'], logFormat: format, sources };
}

function flagOf(key: string): string {
  const s = SETTINGS.find((x) => x.key === key);
  return s === undefined ? key : `--${s.flag}`;
}

/** The parseArgs option table for `cloud run`. */
export function runFlagTable(): Record<string, { type: 'string'; multiple?: boolean }> {
  const table: Record<string, { type: 'string'; multiple?: boolean }> = { config: { type: 'string' } };
  for (const s of SETTINGS) table[s.flag] = s.kind === 'list' ? { type: 'string', multiple: true } : { type: 'string' };
  return table;
}

/**
 * The store URL for commands that only need the store (`cloud reset-kid`): --store, COSE_FLOW_STORE,
 * "store" in the configuration file, else sqlite:DATA_DIR/cose-flow.db — the service's own choice.
 */
export function resolveStoreUrl(flags: FlagValues, env: NodeJS.ProcessEnv = process.env): string {
  const pick = (flag: string, envName: string): string | undefined => {
    const f = flags[flag];
    if (typeof f === 'string' && f !== '') return f;
    if (env[envName]) return env[envName];
    return undefined;
  };
  const configPath = (flags.config as string | undefined) ?? env.COSE_FLOW_CONFIG;
  const file = configPath === undefined || configPath === '' ? {} : readConfigFile(configPath);
  const store = pick('store', 'COSE_FLOW_STORE') ?? (typeof file.store === 'string' ? file.store : undefined);
  if (store !== undefined) return store;
  const dataDir =
    pick('data-dir', 'COSE_FLOW_DATA_DIR') ?? (typeof file.dataDir === 'string' ? file.dataDir : DEFAULT_DATA_DIR);
  return `sqlite:${join(dataDir, DEFAULT_STORE_FILE)}`;
}
