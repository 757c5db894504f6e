/**
 * `cose-flow tour`: cose-flow/1 end to end on throwaway keys, no servers.
 * A CA, the cloud key and one simulated device are made (or reused) under DIR/tour/; the device
 * seals a session key and a few readings with the noble provider exactly as the firmware does; the
 * cloud opens them with the node provider; then three forgeries are refused with their reason
 * codes. Every step is a library call (cloud/pki, src/profile); this file holds the files, the
 * flags and the printing.
 */

import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, generateKeyPair, issueCertificate } from '../cloud/pki/authority.js';
import { certificateP256PublicKey, ecdsaSha256Signature, parseCertificate } from '../cloud/pki/certificate.js';
import { keyMatchesPublicKey, readCertificates, readP256PrivateKey } from '../cloud/pki/files.js';
import { deviceCertificateVerifier } from '../cloud/pki/verify.js';
import { writeFileAtomic } from '../node/atomic-write.js';
import { nodeCrypto } from '../node/crypto.js';
import { equal, toHex } from '../src/bytes.js';
import { decode, encode, Tag } from '../src/cbor/index.js';
import { type CoseReason, isCoseError } from '../src/cose/errors.js';
import { CoseTag, Header } from '../src/cose/headers.js';
import { nobleCrypto } from '../src/crypto/noble.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { encodeReading } from '../src/device/reading.js';
import { encodePartialIv } from '../src/profile/counter.js';
import { openData, parseDataMessage, sealData } from '../src/profile/data-message.js';
import { makeKeyMessage, openKeyMessage } from '../src/profile/key-message.js';
import { cloudKeyId, newSessionKey } from '../src/profile/session.js';
import { topic } from '../src/profile/topics.js';
import { type CliIo, type Command, parseFlags, UsageError } from './command.js';

export const DEMO_DEVICE_ID = 'demo-device-1';
/** The device whose topic the replayed key message is presented on. */
export const OTHER_DEVICE_ID = 'demo-device-2';
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_MESSAGES = 5;
const MAX_MESSAGES = 1000;
const CA_NAME = 'cose-flow demo CA';
const CLOUD_NAME = 'cose-flow demo cloud';

/** The files of DIR/tour/. Key files are written with mode 0600. */
export const DEMO_FILES = {
  ca: 'ca.pem',
  cloudCertificate: 'cloud.pem',
  cloudKey: 'cloud.key',
  deviceCertificate: 'device.pem',
  deviceKey: 'device.key',
  kidCounter: 'kid-counter',
  keyMessage: 'session.cbor',
} as const;
const PKI_FILES = [
  DEMO_FILES.ca,
  DEMO_FILES.cloudCertificate,
  DEMO_FILES.cloudKey,
  DEMO_FILES.deviceCertificate,
  DEMO_FILES.deviceKey,
];
const SECRET = 0o600;
const PUBLIC = 0o644;

export const TOUR_USAGE = `Usage: cose-flow tour [options]

A walk-through of cose-flow/1 with real keys and certificates, no servers needed:
  1. make a throwaway CA, the cloud key + certificate and device ${DEMO_DEVICE_ID}'s key + certificate
     (or reuse them from DIR/tour/)
  2. the device (noble crypto) takes the next session kid from its persisted counter and seals a
     session key for the cloud in a signed key message: session.cbor
  3. the device seals N readings (CBOR maps) as data messages: data-000.cbor ...
  4. the cloud (node crypto) verifies the certificate against the CA and opens the key message, then
     every data message
  5. forgeries refused with their reason codes: a flipped ciphertext byte, the key message replayed
     on ${OTHER_DEVICE_ID}'s topic, a forged sequence number
  6. how to look at the files with \`cose-flow inspect\`

Options:
  --data-dir DIR   where to write (default ${DEFAULT_DATA_DIR}); the tour uses DIR/tour/ only
  --messages N     readings to send, 1-${MAX_MESSAGES} (default ${DEFAULT_MESSAGES})
  --json           print one JSON object at the end (the steps' lines, the files, the kid) instead
  -h, --help       print this help

Files in DIR/tour/: ca.pem, cloud.pem, cloud.key, device.pem, device.key (keys: PKCS#8 PEM, mode
0600), kid-counter, session.cbor, data-NNN.cbor. Delete the directory to start over.

Exit status: 0 when every step did what it should; 1 otherwise; 2 for a usage error.
`;

const FLAGS = {
  'data-dir': { type: 'string' },
  messages: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface TourOptions {
  /** The tour works in `join(dataDir, 'tour')`. */
  dataDir: string;
  messages: number;
  /** Receives each printed line (without its newline). */
  print: (line: string) => void;
}

/** What a run did (for tests and callers; the printed lines say the same). */
export interface TourResult {
  dir: string;
  pki: 'made' | 'reused';
  kidCounter: number;
  files: string[];
}

/** A step that failed unexpectedly: which step, and why. */
export class TourError extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'TourError';
  }
}

async function step<T>(name: string, work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw e instanceof TourError ? e : new TourError(name, e);
  }
}

function readBytes(path: string): Uint8Array {
  const data = readFileSync(path);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Why the PKI files in `dir` cannot be reused, or undefined when they can. */
function unusablePki(dir: string, crypto: CryptoProvider): string | undefined {
  const missing = PKI_FILES.filter((name) => !existsSync(join(dir, name)));
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  try {
    const anchors = readCertificates(join(dir, DEMO_FILES.ca));
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: anchors, cacheSize: 0 });
    const [deviceDer] = readCertificates(join(dir, DEMO_FILES.deviceCertificate));
    const device = verify(deviceDer!);
    if (device.deviceId !== DEMO_DEVICE_ID) return `device.pem is for ${device.deviceId}, not ${DEMO_DEVICE_ID}`;
    if (!keyMatchesPublicKey(readP256PrivateKey(crypto, join(dir, DEMO_FILES.deviceKey)), device.publicKey)) {
      return 'device.key does not match device.pem';
    }
    const [cloudDer] = readCertificates(join(dir, DEMO_FILES.cloudCertificate));
    const cloud = parseCertificate(cloudDer!);
    const now = Date.now();
    const issuer = anchors.map(parseCertificate).find((ca) => equal(ca.subjectDer, cloud.issuerDer));
    if (
      issuer?.p256PublicKey === undefined ||
      !crypto.ecdsaP256Verify(issuer.p256PublicKey, cloud.tbs, ecdsaSha256Signature(cloud))
    ) {
      return 'cloud.pem is not issued by ca.pem';
    }
    if (now < cloud.notBefore.getTime() || now > cloud.notAfter.getTime()) return 'cloud.pem is not valid now';
    if (
      cloud.p256PublicKey === undefined ||
      !keyMatchesPublicKey(readP256PrivateKey(crypto, join(dir, DEMO_FILES.cloudKey)), cloud.p256PublicKey)
    ) {
      return 'cloud.key does not match cloud.pem';
    }
  } catch (e) {
    return (e as Error).message;
  }
  for (const name of [DEMO_FILES.cloudKey, DEMO_FILES.deviceKey]) chmodSync(join(dir, name), SECRET);
  return undefined;
}

/** A new CA, cloud key + certificate and device key + certificate, written to `dir`. */
async function makePki(dir: string): Promise<void> {
  const ca = await createCa({ name: CA_NAME });
  const cloud = generateKeyPair();
  const cloudCert = await issueCertificate(ca, {
    commonName: CLOUD_NAME,
    publicKey: cloud.publicKey,
    keyUsage: 'cloud',
  });
  const device = generateKeyPair();
  const deviceCert = await issueCertificate(ca, {
    commonName: DEMO_DEVICE_ID,
    publicKey: device.publicKey,
    keyUsage: 'device',
  });
  cloud.privateScalar.fill(0);
  device.privateScalar.fill(0);
  // The CA private key is not kept: nobody can issue more certificates under this throwaway CA.
  writeFileAtomic(join(dir, DEMO_FILES.ca), ca.pem, PUBLIC);
  writeFileAtomic(join(dir, DEMO_FILES.cloudCertificate), cloudCert.pem, PUBLIC);
  writeFileAtomic(join(dir, DEMO_FILES.cloudKey), cloud.privateKeyPem, SECRET);
  writeFileAtomic(join(dir, DEMO_FILES.deviceCertificate), deviceCert.pem, PUBLIC);
  writeFileAtomic(join(dir, DEMO_FILES.deviceKey), device.privateKeyPem, SECRET);
}

/**
 * The device's kid counter: reads the last value used from `path` (0 when absent), persists the
 * next one, and only then returns it, so a kid is never used twice. A corrupt file is an error,
 * never a reset to 1.
 */
export function nextKidCounter(path: string): number {
  let last = 0;
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8');
    if (!/^[0-9]{1,16}\n?$/.test(text) || !Number.isSafeInteger(Number(text.trim()))) {
      throw new Error(`${path} does not hold a kid counter (a decimal number); delete its directory to start over`);
    }
    last = Number(text.trim());
  }
  const next = last + 1;
  if (!Number.isSafeInteger(next)) throw new Error(`${path}: the kid counter is exhausted`);
  writeFileAtomic(path, `${next}\n`, PUBLIC);
  return next;
}

/** A reading as the firmware sends it (src/device/reading.ts): {t: epoch ms, temp: °C, up: s}. */
function reading(seq: number, startedAt: number): Uint8Array {
  const temperature = 21.5 + 0.8 * Math.sin(seq / 2) + 0.1 * (seq % 3);
  return encodeReading({ time: startedAt + 30_000 * seq, temperature, uptime: 60 + 30 * seq });
}

function dataFileName(seq: number): string {
  return `data-${String(seq).padStart(3, '0')}.cbor`;
}

/** Runs `refuse`, which must throw a `CoseError` with `expected`; returns the error message. */
function expectRefusal(what: string, expected: CoseReason, refuse: () => unknown): string {
  try {
    refuse();
  } catch (e) {
    if (isCoseError(e) && e.reason === expected) return e.message;
    throw new Error(`${what}: expected a refusal with ${expected}, got ${e instanceof Error ? e.message : String(e)}`);
  }
  throw new Error(`${what} was accepted; expected a refusal with ${expected}`);
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The walk-through. Throws `TourError` (naming the step) on any unexpected failure. */
export async function runTour(options: TourOptions): Promise<TourResult> {
  const { print, messages } = options;
  const dir = join(options.dataDir, 'tour');
  const at = (name: string) => join(dir, name);
  const device = nobleCrypto(); // the device's crypto: the same code runs in XS on the ESP32
  const cloud = nodeCrypto(); // the cloud's: node:crypto (OpenSSL)

  print(`cose-flow tour: cose-flow/1 end to end on throwaway keys; files in ${dir}/`);

  // 1. PKI
  const pki = await step('1 (CA and keys)', async () => {
    mkdirSync(dir, { recursive: true });
    const problem = unusablePki(dir, cloud);
    if (problem === undefined) {
      const cert = parseCertificate(readCertificates(at(DEMO_FILES.deviceCertificate))[0]!);
      print(
        `[1/6] PKI: reusing the CA, cloud key and device ${DEMO_DEVICE_ID}'s key + certificate in ${dir}/ ` +
          `(device certificate serial ${cert.serialHex}, valid until ${cert.notAfter.toISOString().slice(0, 10)})`,
      );
      return 'reused' as const;
    }
    const why = PKI_FILES.every((name) => !existsSync(at(name))) ? '' : ` (the files there were unusable: ${problem})`;
    await makePki(dir);
    print(
      `[1/6] PKI: made a throwaway CA "${CA_NAME}", the cloud key + certificate and device ${DEMO_DEVICE_ID}'s ` +
        `key + certificate${why} → ${PKI_FILES.join(', ')} in ${dir}/`,
    );
    return 'made' as const;
  });

  // 2. The device announces a new session.
  const { session, kidCounter, keyMessage } = await step('2 (device: key message)', () => {
    const kidCounter = nextKidCounter(at(DEMO_FILES.kidCounter)); // persisted before it is used
    const session = newSessionKey(device, kidCounter);
    const deviceKey = readP256PrivateKey(device, at(DEMO_FILES.deviceKey));
    const deviceCertificate = readCertificates(at(DEMO_FILES.deviceCertificate))[0]!;
    const cloudPublicKey = certificateP256PublicKey(readCertificates(at(DEMO_FILES.cloudCertificate))[0]!);
    const keyMessage = makeKeyMessage(device, {
      deviceId: DEMO_DEVICE_ID,
      deviceKey,
      deviceCertificate,
      cloudPublicKey,
      session,
    });
    writeFileAtomic(at(DEMO_FILES.keyMessage), keyMessage, PUBLIC);
    print(
      `[2/6] device ${DEMO_DEVICE_ID} (noble crypto): kid counter ${kidCounter} → session kid ${toHex(session.kid)}; ` +
        `new session key sealed for cloud key id ${toHex(cloudKeyId(device, cloudPublicKey))} (bound to ` +
        `${DEMO_DEVICE_ID} in the key derivation) and signed with the ` +
        `device key → ${at(DEMO_FILES.keyMessage)} (${keyMessage.length} bytes)`,
    );
    return { session, kidCounter, keyMessage };
  });

  // 3. The device sends readings.
  const sent = await step('3 (device: data messages)', () => {
    for (const name of readdirSync(dir)) if (/^data-[0-9]+\.cbor$/.test(name)) rmSync(at(name)); // an older run's
    const sent: { file: string; payload: Uint8Array }[] = [];
    const readingsFrom = Date.now();
    for (let seq = 0; seq < messages; seq++) {
      const payload = reading(seq, readingsFrom);
      const file = at(dataFileName(seq));
      writeFileAtomic(file, sealData(device, session, seq, payload), PUBLIC);
      sent.push({ file, payload });
    }
    const files = messages === 1 ? sent[0]!.file : `${sent[0]!.file} … ${dataFileName(messages - 1)}`;
    print(
      `[3/6] device ${DEMO_DEVICE_ID}: ${messages} reading${messages === 1 ? '' : 's'} {t, temp, up} sealed as data ` +
        `messages (A128GCM, kid ${toHex(session.kid)}, seq 0-${messages - 1}) → ${files}`,
    );
    return sent;
  });

  // 4. The cloud opens everything, from the files.
  const cloudSide = await step('4 (cloud: open)', () => {
    const verifyCertificate = deviceCertificateVerifier({
      crypto: cloud,
      trustAnchors: readCertificates(at(DEMO_FILES.ca)),
    });
    const cloudKey = readP256PrivateKey(cloud, at(DEMO_FILES.cloudKey));
    const cloudKid = cloudKeyId(cloud, cloudKey.publicKey);
    const keyOptions = {
      cloudKey: (kid: Uint8Array) => (equal(kid, cloudKid) ? cloudKey : undefined),
      verifyCertificate,
    };
    const onTopic = topic('session', DEMO_DEVICE_ID);
    const opened = openKeyMessage(cloud, readBytes(at(DEMO_FILES.keyMessage)), {
      ...keyOptions,
      topicDeviceId: DEMO_DEVICE_ID,
    });
    if (!equal(opened.session.key, session.key) || !equal(opened.session.baseIv, session.baseIv)) {
      throw new Error('the cloud unwrapped a session key that differs from the device’s');
    }
    print(
      `[4/6] cloud (node crypto): key message on ${onTopic} accepted: device ${opened.deviceId} ` +
        `(certificate verified against ${at(DEMO_FILES.ca)}, ES256 signature checked), session kid ` +
        `${toHex(opened.session.kid)} (counter ${kidCounter}), cloud key id ${toHex(cloudKid)}`,
    );
    for (const { file, payload } of sent) {
      const parsed = parseDataMessage(readBytes(file));
      const plaintext = openData(cloud, parsed, opened.session);
      if (!equal(plaintext, payload)) throw new Error(`${file}: the decrypted reading differs from the one sealed`);
      const value = decode(plaintext) as Map<string, number>;
      print(`      cloud: data seq ${parsed.seq} → ${JSON.stringify(Object.fromEntries(value))}`);
    }
    return { keyOptions, opened };
  });

  // 5. Forgeries.
  await step('5 (refusals)', () => {
    const { keyOptions, opened } = cloudSide;
    const first = sent[0]!;
    const tampered = readBytes(first.file).slice();
    const { ciphertext } = parseDataMessage(tampered).message;
    const offset = tampered.length - ciphertext.length; // the ciphertext is the message's last field
    if (!equal(tampered.subarray(offset), ciphertext)) throw new Error('cannot find the ciphertext in the message');
    tampered[offset] = tampered[offset]! ^ 0x01;
    const flipped = expectRefusal('a tampered data message', 'decrypt-failed', () =>
      openData(cloud, parseDataMessage(tampered), opened.session),
    );
    print(`[5/6] refused: ${first.file} with one ciphertext byte flipped → ${flipped}`);

    const otherTopic = topic('session', OTHER_DEVICE_ID);
    const replayed = expectRefusal('a replayed key message', 'device-mismatch', () =>
      openKeyMessage(cloud, keyMessage, { ...keyOptions, topicDeviceId: OTHER_DEVICE_ID }),
    );
    print(`      refused: ${at(DEMO_FILES.keyMessage)} replayed on ${otherTopic} → ${replayed}`);

    // Claim another sequence number: a new protected header (kid, Partial IV) over the same ciphertext.
    const last = sent[sent.length - 1]!;
    const original = parseDataMessage(readBytes(last.file));
    const forgedSeq = original.seq + 1000;
    const header = new Map(original.message.protected);
    header.set(Header.partialIv, encodePartialIv(forgedSeq));
    const forgedBytes = encode(new Tag([encode(header), new Map(), original.message.ciphertext], CoseTag.Encrypt0));
    const forged = parseDataMessage(forgedBytes);
    if (forged.seq !== forgedSeq) throw new Error('the forged message does not parse with the forged sequence number');
    const reason = expectRefusal('a data message with a forged sequence number', 'decrypt-failed', () =>
      openData(cloud, forged, opened.session),
    );
    print(`      refused: ${last.file} with its sequence number changed to ${forgedSeq} → ${reason}`);
  });

  // 6. Where to look.
  const command = [
    'npx cose-flow inspect --ca',
    shellQuote(at(DEMO_FILES.ca)),
    '--cloud-key',
    shellQuote(at(DEMO_FILES.cloudKey)),
    shellQuote(at(DEMO_FILES.keyMessage)),
    `${shellQuote(dir)}/data-*.cbor`,
  ].join(' ');
  print(`[6/6] inspect the messages (add --json for JSON, --reveal-keys for the session key): ${command}`);

  return {
    dir,
    pki,
    kidCounter,
    files: [...PKI_FILES.map(at), at(DEMO_FILES.kidCounter), at(DEMO_FILES.keyMessage), ...sent.map((s) => s.file)],
  };
}

function positiveInteger(value: string, name: string, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS);
  if (values.help) {
    io.stdout(TOUR_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const dataDir = values['data-dir'] ?? DEFAULT_DATA_DIR;
  if (dataDir === '') throw new UsageError('--data-dir must not be empty');
  const messages =
    values.messages === undefined ? DEFAULT_MESSAGES : positiveInteger(values.messages, 'messages', MAX_MESSAGES);
  const started = Date.now();
  const steps: string[] = [];
  const print = values.json ? (line: string) => void steps.push(line) : (line: string) => io.stdout(`${line}\n`);
  let result: TourResult;
  try {
    result = await runTour({ dataDir, messages, print });
  } catch (e) {
    const message = e instanceof TourError ? `step ${e.message}` : e instanceof Error ? e.message : String(e);
    io.stderr(`cose-flow tour: FAILED at ${message}\n`);
    return 1;
  }
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  if (values.json) io.stdout(`${JSON.stringify({ ...result, messages, seconds, steps })}\n`);
  else io.stdout(`done in ${seconds.toFixed(1)} s\n`);
  return 0;
}

export const tourCommand: Command = {
  usage: TOUR_USAGE,
  run,
};
