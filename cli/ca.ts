/**
 * `cose-flow ca SUBCOMMAND`: the certificate authority and the enrollment service, over the data
 * directory of `cloud/pki/data-dir.ts`. Thin: each subcommand parses its flags, calls the library
 * (cloud/pki, cloud/enroll) and prints.
 */
import { readFileSync, statSync } from 'node:fs';
import { allowDevices, allowRekey, batchDeviceKey, createBatch } from '../cloud/enroll/policy.js';
import { currentCloudCertificates } from '../cloud/pki/cloud-keys.js';
import { type DataDir, DataDirError, DEFAULT_DATA_DIR, loadCaFromDir, openDataDir } from '../cloud/pki/data-dir.js';
import { issueDeviceCertificate } from '../cloud/pki/device-issuer.js';
import { listDeviceRecords } from '../cloud/pki/records.js';
import { isRefusal } from '../cloud/pki/refusal.js';
import { readRevocations, revoke } from '../cloud/pki/revocation.js';
import { initCa } from '../cloud/pki/setup.js';
import { writeFileAtomic } from '../node/atomic-write.js';
import { nodeCrypto } from '../node/crypto.js';
import { toHex } from '../src/bytes.js';
import { DEFAULT_PREFIX } from '../src/profile/limits.js';
import { checkPrefix } from '../src/profile/topics.js';
import { type CliIo, type Command, describeFailure, isErrno, parseFlags, UsageError } from './command.js';

export const CA_USAGE = `Usage: cose-flow ca SUBCOMMAND [options] [--data-dir DIR]

The project's certificate authority (P-256, X.509) and its enrollment service. Every subcommand
works in the data directory DIR (default ${DEFAULT_DATA_DIR}):
  ca.pem, ca.key (0600), crl.pem, revoked.json, cloud.pem, cloud.key (0600),
  cloud-keys/retired/<kid>.{pem,key}, devices/<id>/{cert.pem,csr.pem,record.json},
  enroll/allow-list, enroll/rekey-allowed, enroll/batches/<name>.secret (0600)

Subcommands:
  init [--name CN] [--days N] [--force] [--json]
      make the CA (default name "cose-flow CA", 3650 days) and an empty CRL; prints the CA's
      SHA-256 fingerprint (what a device can pin). --force replaces an existing CA and
      re-issues the cloud certificate (same cloud key) under the new one.
  issue --csr FILE [--days N] [--out FILE] [--der] [--allow-rekey] [--json]
      check a certification request (PEM or DER, "-" for standard input): its self-signature,
      a P-256 key, a subject of exactly CN=<device id>; then issue the device certificate
      (default 365 days) and record it under devices/<id>/. The same device id and key again
      gets the same certificate; another key for an enrolled id is refused (key-conflict)
      unless --allow-rekey (the previous certificate is then revoked as superseded).
      Prints the certificate PEM, or writes it to --out (DER with --der).
  revoke (--device ID | --serial HEX) [--reason TEXT] [--json]
      revoke a certificate (reasons: keyCompromise, superseded, cessationOfOperation,
      affiliationChanged, privilegeWithdrawn, or any text) and re-sign crl.pem
  list [--json]
      the devices: serial, expiry, revoked, enrollment mode
  allow [--rekey] DEVICE_ID...
      allow devices to enroll without a credential (enroll/allow-list); with --rekey, allow
      each one new key at its next enrollment (used up by it)
  batch create NAME
      a new enrollment batch: a random 32-byte secret in enroll/batches/NAME.secret (0600)
  batch key NAME DEVICE_ID
      print the device's enrollment key (hex) for the factory to write into the device
  serve --broker URL [--prefix P] [--days N] [--rate-limit-ms N]
      the enrollment service: answer requests on {prefix}/+/enroll (default prefix
      ${DEFAULT_PREFIX}) until SIGINT/SIGTERM; one JSON line per decision on standard output

--json: init, issue and revoke print one JSON object, list one JSON array of devices, instead of text.

Exit status: 0 done; 1 refused or failed (the reason on stderr, its code first); 2 usage error.
See README.md (Provisioning) and docs/ENROLLMENT.md.
`;

const DATA_DIR = { 'data-dir': { type: 'string' } } as const;
const MAX_DAYS = 36500;

function dataDir(values: { 'data-dir'?: string | undefined }): DataDir {
  const dir = values['data-dir'] ?? DEFAULT_DATA_DIR;
  if (dir === '') throw new UsageError('--data-dir must not be empty');
  return openDataDir(dir);
}

function days(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > MAX_DAYS) {
    throw new UsageError(`--days must be an integer from 1 to ${MAX_DAYS}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
}

async function readInput(path: string, io: CliIo): Promise<Uint8Array> {
  if (path === '-') {
    const chunks: Uint8Array[] = [];
    for await (const chunk of io.stdin()) chunks.push(chunk);
    return new Uint8Array(Buffer.concat(chunks));
  }
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!isFile) throw new UsageError(`${path} is not a regular file`);
  return new Uint8Array(readFileSync(path));
}

async function init(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...DATA_DIR,
    name: { type: 'string' },
    days: { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  noPositionals(positionals);
  const dir = dataDir(values);
  const validityDays = days(values.days);
  const { ca, fingerprintHex, reissuedCloudCertificate } = await initCa(nodeCrypto(), dir, {
    ...(values.name === undefined ? {} : { name: values.name }),
    ...(validityDays === undefined ? {} : { validityDays }),
    force: values.force ?? false,
  });
  if (values.json) {
    io.stdout(
      `${JSON.stringify({
        ca: ca.name,
        notAfter: ca.certificate.notAfter.toISOString(),
        fingerprintSha256: fingerprintHex,
        files: { certificate: dir.caCertificate, key: dir.caKey, crl: dir.crl },
        ...(reissuedCloudCertificate === undefined ? {} : { reissuedCloudCertificate: reissuedCloudCertificate.path }),
      })}\n`,
    );
    return 0;
  }
  io.stdout(
    `CA "${ca.name}" valid until ${ca.certificate.notAfter.toISOString()}\n` +
      `wrote ${dir.caCertificate}, ${dir.caKey} (mode 0600), ${dir.crl}\n` +
      `SHA-256 fingerprint: ${fingerprintHex}\n` +
      (reissuedCloudCertificate === undefined
        ? ''
        : `re-issued the cloud certificate ${reissuedCloudCertificate.path} (same cloud key) under the new CA\n` +
          'devices enrolled under the old CA must enroll again: their certificates no longer verify\n'),
  );
  return 0;
}

async function issue(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...DATA_DIR,
    csr: { type: 'string' },
    days: { type: 'string' },
    out: { type: 'string' },
    der: { type: 'boolean' },
    'allow-rekey': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  noPositionals(positionals);
  if (values.csr === undefined) throw new UsageError('--csr FILE is required');
  if (values.der && values.out === undefined) throw new UsageError('--der needs --out FILE (DER is binary)');
  const dir = dataDir(values);
  const validityDays = days(values.days);
  const csr = await readInput(values.csr, io);
  const ca = await loadCaFromDir(dir);
  const issued = await issueDeviceCertificate(dir, ca, csr, {
    allowRekey: values['allow-rekey'] ?? false,
    ...(validityDays === undefined ? {} : { validityDays }),
  });
  const what = {
    issued: 'issued',
    existing: 'already issued for this key (unchanged)',
    renewed: 'renewed (same key)',
    rekeyed: `issued for a new key (previous certificate ${issued.supersededSerial} revoked as superseded)`,
  }[issued.outcome];
  const summary =
    `device ${issued.deviceId}: certificate ${what}; serial ${issued.record.serial}, ` +
    `valid until ${issued.record.notAfter}; ${dir.device(issued.deviceId).certificate}`;
  if (values.out !== undefined) writeFileAtomic(values.out, values.der ? issued.certificateDer : issued.certificatePem);
  if (values.json) {
    io.stdout(
      `${JSON.stringify({
        deviceId: issued.deviceId,
        outcome: issued.outcome,
        serial: issued.record.serial,
        notAfter: issued.record.notAfter,
        certificateFile: dir.device(issued.deviceId).certificate,
        ...(issued.supersededSerial === undefined ? {} : { supersededSerial: issued.supersededSerial }),
        ...(values.out === undefined ? { certificatePem: issued.certificatePem } : { out: values.out }),
      })}\n`,
    );
    return 0;
  }
  if (values.out !== undefined) {
    io.stdout(`${summary}\nwrote ${values.out} (${values.der ? 'DER' : 'PEM'})\n`);
  } else {
    io.stdout(issued.certificatePem.endsWith('\n') ? issued.certificatePem : `${issued.certificatePem}\n`);
    io.stderr(`${summary}\n`);
  }
  return 0;
}

async function revokeCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...DATA_DIR,
    device: { type: 'string' },
    serial: { type: 'string' },
    reason: { type: 'string' },
    json: { type: 'boolean' },
  });
  noPositionals(positionals);
  if ((values.device === undefined) === (values.serial === undefined)) {
    throw new UsageError('give either --device ID or --serial HEX');
  }
  const dir = dataDir(values);
  const ca = await loadCaFromDir(dir);
  const { entry, already } = await revoke(dir, ca, {
    ...(values.device === undefined ? {} : { deviceId: values.device }),
    ...(values.serial === undefined ? {} : { serial: values.serial }),
    ...(values.reason === undefined ? {} : { reason: values.reason }),
  });
  if (values.json) {
    io.stdout(`${JSON.stringify({ ...entry, already, files: { revoked: dir.revoked, crl: dir.crl } })}\n`);
    return 0;
  }
  io.stdout(
    already
      ? `serial ${entry.serial} (device ${entry.deviceId}) was already revoked at ${entry.time} (${entry.reason})\n`
      : `revoked serial ${entry.serial} (device ${entry.deviceId}, ${entry.reason}); wrote ${dir.revoked} and ${dir.crl}\n`,
  );
  return 0;
}

async function list(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...DATA_DIR, json: { type: 'boolean' } });
  noPositionals(positionals);
  const dir = dataDir(values);
  const revoked = new Map(readRevocations(dir).map((e) => [e.serial, e]));
  const now = Date.now();
  const rows = listDeviceRecords(dir).map((r) => {
    const revocation = revoked.get(r.serial);
    const status = revocation !== undefined ? 'revoked' : new Date(r.notAfter).getTime() < now ? 'expired' : 'valid';
    return {
      deviceId: r.deviceId,
      serial: r.serial,
      notAfter: r.notAfter,
      status,
      revoked: revocation === undefined ? null : { reason: revocation.reason, time: revocation.time },
      enrollment: r.enrollment.mode + (r.enrollment.batch === undefined ? '' : `:${r.enrollment.batch}`),
    };
  });
  if (values.json) {
    io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    io.stdout(`no device certificates in ${dir.root}\n`);
    return 0;
  }
  const table = [
    ['DEVICE', 'SERIAL', 'NOT AFTER', 'STATUS', 'ENROLLMENT'],
    ...rows.map((r) => [
      r.deviceId,
      r.serial,
      r.notAfter,
      r.revoked === null ? r.status : `revoked (${r.revoked.reason})`,
      r.enrollment,
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table)
    io.stdout(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  return 0;
}

async function allow(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...DATA_DIR, rekey: { type: 'boolean' } });
  if (positionals.length === 0) throw new UsageError('give one or more device ids');
  const dir = dataDir(values);
  if (values.rekey) {
    const added = allowRekey(dir, positionals);
    io.stdout(
      `allowed one new key at the next enrollment for ${positionals.join(', ')}` +
        `${added.length < positionals.length ? ' (some were already allowed)' : ''}; ${dir.rekeyAllowed}\n`,
    );
  } else {
    const added = allowDevices(dir, positionals);
    io.stdout(
      `allow-listed ${added.length} new device id(s)` +
        `${added.length > 0 ? `: ${added.join(', ')}` : ''}; ${dir.allowList}\n`,
    );
  }
  return 0;
}

async function batch(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, DATA_DIR);
  const dir = dataDir(values);
  const [action, name, deviceId, ...rest] = positionals;
  if (action === 'create') {
    if (name === undefined || deviceId !== undefined) throw new UsageError('usage: ca batch create NAME');
    const { path } = createBatch(nodeCrypto(), dir, name);
    io.stdout(
      `created enrollment batch ${name}: ${path} (mode 0600)\n` +
        `per-device keys: cose-flow ca batch key ${name} DEVICE_ID --data-dir ${dir.root}\n`,
    );
    return 0;
  }
  if (action === 'key') {
    if (name === undefined || deviceId === undefined || rest.length > 0) {
      throw new UsageError('usage: ca batch key NAME DEVICE_ID');
    }
    const key = batchDeviceKey(nodeCrypto(), dir, name, deviceId);
    io.stdout(`${toHex(key)}\n`);
    key.fill(0);
    return 0;
  }
  throw new UsageError(`ca batch: expected "create NAME" or "key NAME DEVICE_ID", got ${JSON.stringify(action ?? '')}`);
}

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...DATA_DIR,
    broker: { type: 'string' },
    prefix: { type: 'string' },
    days: { type: 'string' },
    'rate-limit-ms': { type: 'string' },
  });
  noPositionals(positionals);
  if (values.broker === undefined) throw new UsageError('--broker URL is required (e.g. mqtt://127.0.0.1:1883)');
  const prefix = values.prefix ?? DEFAULT_PREFIX;
  try {
    checkPrefix(prefix);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const rate = values['rate-limit-ms'];
  if (rate !== undefined && (!/^[0-9]+$/.test(rate) || Number(rate) > 3_600_000)) {
    throw new UsageError(`--rate-limit-ms must be an integer from 0 to 3600000, got ${JSON.stringify(rate)}`);
  }
  const validityDays = days(values.days);
  const dir = dataDir(values);
  // Refuse to start without a CA and a cloud certificate, rather than refusing every device.
  await loadCaFromDir(dir);
  currentCloudCertificates(dir.root);
  const { startEnrollmentService } = await import('../cloud/enroll/service.js');
  let service: Awaited<ReturnType<typeof startEnrollmentService>>;
  try {
    service = await startEnrollmentService({
      dataDir: dir.root,
      crypto: nodeCrypto(),
      brokerUrl: values.broker,
      prefix,
      log: (line) => io.stdout(`${JSON.stringify(line)}\n`),
      ...(rate === undefined ? {} : { minIntervalMs: Number(rate) }),
      ...(validityDays === undefined ? {} : { validityDays }),
    });
  } catch (e) {
    io.stderr(`cose-flow ca serve: cannot serve on ${values.broker}: ${(e as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await service.close();
  return 0;
}

const SUBCOMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  init,
  issue,
  revoke: revokeCommand,
  list,
  allow,
  batch,
  serve,
};

/** Runs `fn`; a refusal or a data-directory problem is one line on stderr and exit 1, a bad argument exit 2. */
export async function operatorErrors(name: string, io: CliIo, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (isRefusal(e) || e instanceof DataDirError) {
      io.stderr(`cose-flow ${name}: ${e.message}\n`);
      return 1;
    }
    if (isErrno(e)) {
      io.stderr(`cose-flow ${name}: ${describeFailure(e)}\n`);
      return 1;
    }
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

async function run(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined) throw new UsageError('give a subcommand: init, issue, revoke, list, allow, batch or serve');
  const fn = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (fn === undefined) throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  return operatorErrors(`ca ${sub}`, io, () => fn(rest, io));
}

export const caCommand: Command = {
  usage: CA_USAGE,
  run,
};
