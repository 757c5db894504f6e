/**
 * `cose-flow cloud keygen | run | reset-kid`: the cloud's key pair and certificate (and their
 * rotation), the cloud service, and the operator's kid-floor reset. Thin: the work is
 * `cloudKeygen` (cloud/pki/cloud-keys.ts), `startCloudService` (cloud/service/service.ts) and the
 * store's `resetKidFloor`; configuration resolution is cloud/service/config.ts.
 */

import { cloudKeygen, DEFAULT_CLOUD_NAME } from '../cloud/pki/cloud-keys.js';
import { DEFAULT_DATA_DIR, openDataDir } from '../cloud/pki/data-dir.js';
import type { RotationEvent } from '../cloud/rotation/rotate.js';
import { ConfigError, resolveRunConfig, resolveStoreUrl, runFlagTable, SETTINGS } from '../cloud/service/config.js';
import { nodeCrypto } from '../node/crypto.js';
import { redactUrl } from '../node/redact-url.js';
import { checkDeviceId } from '../src/profile/topics.js';
import { operatorErrors } from './ca.js';
import { checkBroker, checkFiles, holdClientId, PreflightError } from './cloud-preflight.js';
import { type CliIo, type Command, parseFlags, UsageError } from './command.js';

function settingLines(): string {
  return SETTINGS.map((s) => {
    const flag = `  --${s.flag} ${s.kind === 'int' ? 'N' : 'VALUE'}`;
    return `${flag.padEnd(34)}${s.help}\n${''.padEnd(34)}(${s.env}; "${s.key}" in --config)`;
  }).join('\n');
}

export const CLOUD_USAGE = `Usage: cose-flow cloud keygen [--rotate] [--days N] [--name CN] [--data-dir DIR] [--json]
       cose-flow cloud rotate --broker URL [--data-dir DIR] [--store URL] [--deadline SECONDS]
                              [--resend SECONDS] [--prefix P] [--days N] [--name CN] [--json]
       cose-flow cloud run --broker URL [--data-dir DIR] [--store sqlite:FILE|postgres://…]
                           [--out FILE] [--http [HOST:]PORT] [--share GROUP] [options]
       cose-flow cloud reset-kid DEVICE_ID [--store URL] [--data-dir DIR] [--config FILE] [--json]

keygen
Makes the cloud's P-256 key and its certificate (keyUsage keyAgreement, default 365 days, CN
"${DEFAULT_CLOUD_NAME}"), issued by the CA of DIR (default ${DEFAULT_DATA_DIR}; run \`cose-flow ca init\`
first): DIR/cloud.pem and DIR/cloud.key (PKCS#8 PEM, mode 0600). Prints the cloud key id (hex),
the id devices put in the recipient header of their key messages.

An existing key is kept unless --rotate: then it moves to DIR/cloud-keys/retired/<kid>.{pem,key},
where the cloud service still finds it (sessions sealed to it keep opening) for 30 days (its
retire-at), and the new key becomes the one enrollment hands to devices. To move enrolled devices
to the new key and retire the old one, use \`cloud rotate\` instead.

rotate
A fleet-wide cloud key rotation, to run beside \`cloud run\` (same DIR, same store, same broker):
makes the new key (the old one stays accepted until the deadline, default 86400 s), sends every
device the store knows a session of the new certificate and a re-key (control messages signed by
the old key, the one devices trust), again every --resend seconds (default 30) to those pending,
and reports each device that moved (a key message that names the new key id) with the count of
moved and pending devices. When all have moved, or at the deadline, it retires the old key: its
private key is deleted, sessions sealed to it no longer open. --json: one JSON object per event.
Exit status 0 when every device moved, 1 when some were still pending at the deadline (named).

run
Runs the cloud service until SIGINT or SIGTERM: takes every device's messages from the broker
({prefix}/+/session and {prefix}/+/data), verifies and decrypts them with the CA and cloud keys of
DIR, and stores each data payload exactly once (acknowledging it to the broker only after the
commit); --out appends each stored payload to FILE as a JSON line. Logs on standard output: one
JSON object per line, or one readable line per entry on a terminal (--log-format). Settings come from flags, then the environment, then --config FILE (JSON):
  --config FILE                   a JSON file of the settings below (COSE_FLOW_CONFIG)
${settingLines()}
  The storage key can also be given as 64 hex digits in COSE_FLOW_STORAGE_KEY, the broker password
  in COSE_FLOW_MQTT_PASSWORD (or in the URL). Several instances: the same --share GROUP, one
  PostgreSQL --store, the same storage key, and each its own --client-id. See docs/CLOUD.md.

reset-kid
For a re-flashed device whose kid counter starts at 1 again: resets the device's kid floor (a new
epoch), so its next key message is accepted instead of refused as kid-rollback. The device's
earlier sessions are closed and their keys purged; a key message accepted before the reset stays
refused (kid-rollback), so replayed traffic cannot undo it. Stored payloads stay. Uses the same
store as \`cloud run\` (--store, COSE_FLOW_STORE, --config, or sqlite:DIR/cose-flow.db).

Exit status: 0 done; 1 failed (the reason on stderr); 2 usage error.
`;

async function keygen(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    'data-dir': { type: 'string' },
    rotate: { type: 'boolean' },
    days: { type: 'string' },
    name: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const root = values['data-dir'] ?? DEFAULT_DATA_DIR;
  if (root === '') throw new UsageError('--data-dir must not be empty');
  let validityDays: number | undefined;
  if (values.days !== undefined) {
    if (!/^[0-9]+$/.test(values.days) || Number(values.days) < 1 || Number(values.days) > 36500) {
      throw new UsageError(`--days must be an integer from 1 to 36500, got ${JSON.stringify(values.days)}`);
    }
    validityDays = Number(values.days);
  }
  const result = await cloudKeygen(nodeCrypto(), root, {
    rotate: values.rotate ?? false,
    ...(validityDays === undefined ? {} : { validityDays }),
    ...(values.name === undefined ? {} : { name: values.name }),
  });
  const layout = openDataDir(root);
  if (values.json) {
    io.stdout(
      `${JSON.stringify({
        cloudKeyId: result.kidHex,
        serial: result.serialHex,
        notAfter: result.notAfter.toISOString(),
        files: { certificate: layout.cloudCertificate, key: layout.cloudKey },
        ...(result.retiredKidHex === undefined
          ? {}
          : { retiredCloudKeyId: result.retiredKidHex, retireAt: result.retireAt?.toISOString() }),
      })}\n`,
    );
    return 0;
  }
  io.stdout(`${result.kidHex}\n`);
  io.stderr(
    `cloud key id ${result.kidHex}: wrote ${layout.cloudCertificate} and ${layout.cloudKey} (mode 0600); ` +
      `certificate serial ${result.serialHex}, valid until ${result.notAfter.toISOString()}\n` +
      (result.retiredKidHex === undefined
        ? ''
        : `retired cloud key ${result.retiredKidHex}: ${layout.retiredCloudKeys}/${result.retiredKidHex}.{pem,key} (accepted until ${result.retireAt?.toISOString()})\n`),
  );
  return 0;
}

/** A configuration mistake (a bad flag, variable or file value) is a usage error: exit 2. */
function asUsage<T>(resolve: () => T): T {
  try {
    return resolve();
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
}

async function runService(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, runFlagTable());
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const config = asUsage(() => resolveRunConfig(values));
  const [{ startCloudService, defaultClientId }, { createLogger }] = await Promise.all([
    import('../cloud/service/service.js'),
    import('../cloud/service/log.js'),
  ]);
  const options = config.options;
  const clientId = options.clientId ?? defaultClientId(options.dataDir, options.shareGroup);
  let release: () => void;
  // Check first, then write: nothing (a storage key, a database) is made for a run that cannot start.
  try {
    checkFiles({
      dataDir: options.dataDir,
      store: typeof options.store === 'string' ? options.store : undefined,
      trust: options.trustAnchors,
    });
    io.stderr(`connecting to ${redactUrl(options.brokerUrl)}…\n`);
    await checkBroker(options.brokerUrl, {
      mqtt: {
        ...(options.mqtt?.username === undefined ? {} : { username: options.mqtt.username }),
        ...(options.mqtt?.password === undefined ? {} : { password: options.mqtt.password }),
        ...(options.mqtt?.tls === undefined ? {} : (options.mqtt.tls as object)),
      },
    });
    release = holdClientId(options.dataDir, clientId);
  } catch (e) {
    if (!(e instanceof PreflightError)) throw e;
    io.stderr(`cose-flow cloud run: ${e.message}\n`);
    return 1;
  }
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat ?? (process.stdout.isTTY === true ? 'pretty' : 'json'),
  });
  let service: Awaited<ReturnType<typeof startCloudService>>;
  try {
    service = await startCloudService({ ...options, clientId, logger });
  } catch (e) {
    release();
    if (e instanceof RangeError) throw e; // a bad setting: usage error
    io.stderr(`cose-flow cloud run: ${(e as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      logger.info({ event: 'signal', signal }, 'stopping: finishing in-flight messages (signal again to exit at once)');
      process.once(signal, () => process.exit(130));
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await service.stop();
  release();
  return 0;
}

async function resetKid(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    store: { type: 'string' },
    'data-dir': { type: 'string' },
    config: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new UsageError('give exactly one device id: cose-flow cloud reset-kid DEVICE_ID');
  const deviceId = checkDeviceId(positionals[0]!);
  const url = asUsage(() => resolveStoreUrl(values));
  const { openStore } = await import('../cloud/store/index.js');
  const store = await openStore(url);
  try {
    const before = await store.getDevice(deviceId);
    if (!(await store.resetKidFloor(deviceId))) {
      io.stderr(
        `cose-flow cloud reset-kid: device ${deviceId} is not in the store (no key message was ever accepted for it)\n`,
      );
      return 1;
    }
    const after = await store.getDevice(deviceId);
    const floor = before?.kidFloor ? Buffer.from(before.kidFloor).toString('hex') : 'none';
    if (values.json) {
      io.stdout(
        `${JSON.stringify({ deviceId, kidFloorBefore: floor, epochBefore: before?.epoch ?? 0, epoch: after?.epoch })}\n`,
      );
      return 0;
    }
    io.stdout(
      `device ${deviceId}: kid floor reset (was ${floor}, epoch ${before?.epoch ?? 0} → ${after?.epoch ?? '?'}); ` +
        'its next key message is accepted from kid 1; earlier sessions are closed and their keys purged, ' +
        'and key messages accepted before stay refused\n',
    );
    return 0;
  } finally {
    await store.close();
  }
}

function seconds(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 365 * 86_400) {
    throw new UsageError(`--${flag} must be whole seconds from 1 to ${365 * 86_400}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function rotationLine(event: RotationEvent): string {
  switch (event.type) {
    case 'rotated':
      return `new cloud key ${event.newKid}; the old key ${event.oldKid} is accepted until ${event.retireAt}; ${event.devices} device(s)`;
    case 'pushed':
      return `sent the new certificate and a re-key to ${event.deviceId} (kid ${event.kid}, round ${event.round})`;
    case 'unreachable':
      return `cannot reach ${event.deviceId}: ${event.reason}`;
    case 'moved':
      return `moved: ${event.deviceId} (kid ${event.kid} sealed to the new key)`;
    case 'progress':
      return `progress: ${event.moved}/${event.total} moved, ${event.pending} pending${event.pending > 0 && event.pending <= 10 ? ` (${event.pendingIds.join(', ')})` : ''}`;
    case 'retired':
      return event.reason === 'all-moved'
        ? `all ${event.moved} device(s) moved: retired the old key ${event.oldKid} (private key deleted)`
        : `deadline reached: retired the old key ${event.oldKid} with ${event.pending} device(s) pending: ${event.pendingIds.join(', ')}`;
  }
}

async function rotate(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    broker: { type: 'string' },
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    config: { type: 'string' },
    prefix: { type: 'string' },
    deadline: { type: 'string' },
    resend: { type: 'string' },
    days: { type: 'string' },
    name: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.broker === undefined || values.broker === '') throw new UsageError('--broker URL is required');
  const root = values['data-dir'] ?? DEFAULT_DATA_DIR;
  const deadlineMs = seconds(values.deadline, 'deadline', 86_400) * 1000;
  const resendMs = seconds(values.resend, 'resend', 30) * 1000;
  const validityDays = values.days === undefined ? undefined : seconds(values.days, 'days', 365);
  const url = asUsage(() => resolveStoreUrl(values));
  const [{ openStore }, { rotateCloudKey }] = await Promise.all([
    import('../cloud/store/index.js'),
    import('../cloud/rotation/rotate.js'),
  ]);
  const store = await openStore(url);
  try {
    const result = await rotateCloudKey({
      dataDir: root,
      brokerUrl: values.broker,
      crypto: nodeCrypto(),
      store,
      deadlineMs,
      resendMs,
      ...(values.prefix === undefined ? {} : { prefix: values.prefix }),
      ...(validityDays === undefined ? {} : { validityDays }),
      ...(values.name === undefined ? {} : { name: values.name }),
      onEvent: (event) =>
        io.stdout(
          values.json
            ? `${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`
            : `${rotationLine(event)}\n`,
        ),
    });
    return result.pending.length === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

const SUBCOMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  keygen,
  rotate,
  run: runService,
  'reset-kid': resetKid,
};

async function run(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  const fn = sub !== undefined && Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (fn === undefined)
    throw new UsageError(`expected "keygen", "rotate", "run" or "reset-kid", got ${JSON.stringify(sub ?? '')}`);
  return operatorErrors(`cloud ${sub}`, io, () => fn(rest, io));
}

export const cloudCommand: Command = {
  usage: CLOUD_USAGE,
  run,
};
