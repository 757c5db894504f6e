/**
 * `cose-flow cloud keygen`: the cloud's key pair and certificate (issued by the CA of the data
 * directory), and its rotation. Thin: the work is `cloudKeygen` in cloud/pki/cloud-keys.ts.
 */
import { nodeCrypto } from '../cloud/crypto/node.js';
import { cloudKeygen, DEFAULT_CLOUD_NAME } from '../cloud/pki/cloud-keys.js';
import { DEFAULT_DATA_DIR, dataLayout } from '../cloud/pki/store.js';
import { operatorErrors } from './ca.js';
import { type CliIo, type Command, parseFlags, UsageError } from './command.js';

export const CLOUD_USAGE = `Usage: cose-flow cloud keygen [--rotate] [--days N] [--name CN] [--data-dir DIR]

Makes the cloud's P-256 key and its certificate (keyUsage keyAgreement, default 365 days, CN
"${DEFAULT_CLOUD_NAME}"), issued by the CA of DIR (default ${DEFAULT_DATA_DIR}; run \`cose-flow ca init\`
first): DIR/cloud.pem and DIR/cloud.key (PKCS#8 PEM, mode 0600). Prints the cloud key id (hex),
the id devices put in the recipient header of their key messages.

An existing key is kept unless --rotate: then it moves to DIR/cloud-keys/retired/<kid>.{pem,key},
where the cloud service still finds it (sessions sealed to it keep opening), and the new key
becomes the one enrollment hands to devices.

Exit status: 0 done; 1 failed (the reason on stderr); 2 usage error.
`;

async function keygen(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    'data-dir': { type: 'string' },
    rotate: { type: 'boolean' },
    days: { type: 'string' },
    name: { type: 'string' },
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
  const layout = dataLayout(root);
  io.stdout(`${result.kidHex}\n`);
  io.stderr(
    `cloud key id ${result.kidHex}: wrote ${layout.cloudCertificate} and ${layout.cloudKey} (mode 0600); ` +
      `certificate serial ${result.serialHex}, valid until ${result.notAfter.toISOString()}\n` +
      (result.retiredKidHex === undefined
        ? ''
        : `retired cloud key ${result.retiredKidHex}: ${layout.retiredCloudKeys}/${result.retiredKidHex}.{pem,key} (still accepted)\n`),
  );
  return 0;
}

async function run(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'keygen') throw new UsageError(`expected "keygen", got ${JSON.stringify(sub ?? '')}`);
  return operatorErrors('cloud keygen', io, () => keygen(rest, io));
}

export const cloudCommand: Command = {
  summary: 'cloud keygen [--rotate]: the cloud key and certificate (and key rotation)',
  usage: CLOUD_USAGE,
  run,
};
