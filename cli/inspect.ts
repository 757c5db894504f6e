/**
 * `cose-flow inspect [options] FILE…`: print messages of the profile in CBOR diagnostic notation
 * with named headers, and verify/open them with the keys given. Flags and output only; the work
 * is in inspect-message.ts.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { readCertificates, readP256PrivateKey } from '../cloud/pki/files.js';
import { deviceCertificateVerifier } from '../cloud/pki/verify.js';
import { nodeCrypto } from '../node/crypto.js';
import { fromHex } from '../src/bytes.js';
import type { P256PrivateKey } from '../src/crypto/provider.js';
import { BASE_IV_BYTES, DEFAULT_MAX_MESSAGE_BYTES, SESSION_KEY_BYTES } from '../src/profile/limits.js';
import { type CliIo, type Command, parseFlags, UsageError } from './command.js';
import { formatLine, inspectLines, jsonLine, looksLikeLines } from './inspect-lines.js';
import { Inspector, type InspectResult } from './inspect-message.js';

export const INSPECT_USAGE = `Usage: cose-flow inspect [options] FILE...

Prints each cose-flow/1 message (a key message: COSE_Sign1 tag 18; a data message: COSE_Encrypt0
tag 16) in CBOR diagnostic notation with its COSE headers named, and verifies and opens it with the
keys given. FILE "-" reads standard input. A file may hold the message as binary or as hex text.

Options:
  --ca FILE            CA certificate(s), PEM or DER (repeatable): verify the device certificate of
                       key messages (chain, validity, key usage, device id) and report its device id
  --cloud-key FILE     cloud P-256 private key, PEM or DER, PKCS#8 or SEC1 (repeatable): unwrap
                       key messages; a data message after them opens with the session they carry
  --session-key HEX    16-byte session key to open data messages (needs --base-iv)
  --base-iv HEX        12-byte Base IV of that session key
  --reveal-keys        print session keys and Base IVs (hidden otherwise)
  --json               one JSON object per line per message instead of text
  --max-bytes N        refuse messages larger than N bytes (default ${DEFAULT_MAX_MESSAGE_BYTES})
  --input FORMAT       auto (default), binary or hex; auto reads a file of only hex digits and
                       whitespace as hex
  --require-verified   also fail (exit 1) on a message that was only decoded, not verified with a key
  --lines              each FILE is a capture of the broker's traffic, one "TOPIC HEX" per line, as
                       \`mosquitto_sub -v -F '%t %x' -t 'cose-flow/v1/#'\` writes it (detected without
                       the flag when the first line reads so); the messages are judged in order as the
                       cloud would — key messages teach their device's session, data messages after
                       them open, a repeated (device, kid, seq) is a duplicate — one result per line
  -h, --help           print this help

A message is "valid" when it has the profile's structure and passed every check the keys given
allow: without --ca a key message's signature is checked against the key in its (unverified)
certificate; with --ca the certificate is verified too; with --cloud-key the session key is
unwrapped. A data message is decrypted when its session is known (--session-key, or a key message
earlier on the command line), otherwise only its structure is checked. "verified" says whether a
key vouched for it (CA + signature, or AES-GCM decryption).

JSON fields: file, type (session | data | unknown), valid, reason and error (when not valid, with
the library's CoseError reason codes: bad-cbor, bad-tag, bad-signature, bad-certificate,
decrypt-failed, too-large, ...), verified, opened, deviceId (certificate verified with --ca), kid
(hex), kidCounter, seq, cloudKid, sessionFrom, payloadHex, payloadDiagnostic, sessionKey and
baseIv (only with --reveal-keys), certificate {subject, issuer, serialHex, notBefore, notAfter,
keyType, commonName}, checked, bytes.

Exit status: 0 when every message is valid (and verified, with --require-verified); 1 otherwise;
2 for a usage error (unknown flag, bad value, missing or unreadable FILE).
`;

const FLAGS = {
  ca: { type: 'string', multiple: true },
  'cloud-key': { type: 'string', multiple: true },
  'session-key': { type: 'string' },
  'base-iv': { type: 'string' },
  'reveal-keys': { type: 'boolean' },
  json: { type: 'boolean' },
  'max-bytes': { type: 'string' },
  input: { type: 'string' },
  'require-verified': { type: 'boolean' },
  lines: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type InputFormat = 'auto' | 'binary' | 'hex';

function hexFlag(value: string, name: string, length: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = fromHex(value.trim());
  } catch (e) {
    throw new UsageError(`--${name}: not hex: ${(e as Error).message}`);
  }
  if (bytes.length !== length) throw new UsageError(`--${name} must be ${length} bytes (${2 * length} hex digits)`);
  return bytes;
}

function positiveInteger(value: string, name: string): number {
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Reads at most `cap` bytes of a file (the rest, if any, makes the result `cap` + 1 bytes long). */
function readCapped(path: string, cap: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const out = new Uint8Array(cap + 1);
    let length = 0;
    while (length < out.length) {
      const n = readSync(fd, out, length, out.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return out.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

async function readStdinCapped(io: CliIo, cap: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of io.stdin()) {
    chunks.push(chunk);
    length += chunk.length;
    if (length > cap) break;
  }
  const out = new Uint8Array(Math.min(length, cap + 1));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, out.length - at);
    out.set(part, at);
    at += part.length;
    if (at === out.length) break;
  }
  return out;
}

/** Whether every FILE reads as a `TOPIC HEX` capture (only its first 4 KiB are looked at). */
function allLines(files: string[]): boolean {
  return files.every((file) => {
    const head = readCapped(file, 4096);
    return looksLikeLines(Buffer.from(head).toString('latin1'));
  });
}

async function readStdinText(io: CliIo): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of io.stdin()) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** The message bytes of a file's content: hex text is decoded (format auto or hex). */
function decodeInput(raw: Uint8Array, format: InputFormat): { bytes: Uint8Array; note?: string } {
  if (format === 'binary') return { bytes: raw };
  const text = Buffer.from(raw).toString('latin1');
  const digits = text.replace(/\s+/g, '');
  const isHex = digits.length > 0 && digits.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(digits);
  if (isHex) return { bytes: fromHex(digits), note: 'read as hex text' };
  if (format === 'hex') return { bytes: raw, note: 'not hex text: read as binary' };
  return { bytes: raw };
}

async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS);
  if (values.help) {
    io.stdout(INSPECT_USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('no FILE given (use "-" for standard input)');
  if (positionals.filter((p) => p === '-').length > 1) throw new UsageError('"-" (standard input) may be given once');
  const maxBytes =
    values['max-bytes'] === undefined ? DEFAULT_MAX_MESSAGE_BYTES : positiveInteger(values['max-bytes'], 'max-bytes');
  const format = (values.input ?? 'auto') as InputFormat;
  if (!['auto', 'binary', 'hex'].includes(format))
    throw new UsageError(`--input must be auto, binary or hex, got ${JSON.stringify(values.input)}`);
  if ((values['session-key'] === undefined) !== (values['base-iv'] === undefined)) {
    throw new UsageError('--session-key and --base-iv go together');
  }
  const sessionKey =
    values['session-key'] === undefined
      ? undefined
      : {
          key: hexFlag(values['session-key'], 'session-key', SESSION_KEY_BYTES),
          baseIv: hexFlag(values['base-iv']!, 'base-iv', BASE_IV_BYTES),
        };
  for (const file of positionals) {
    if (file === '-') continue;
    let isFile: boolean;
    try {
      isFile = statSync(file).isFile();
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!isFile) throw new UsageError(`${file} is not a regular file`);
  }

  const crypto = nodeCrypto();
  let verifyCertificate: ReturnType<typeof deviceCertificateVerifier> | undefined;
  if (values.ca !== undefined) {
    let anchors: Uint8Array[];
    try {
      anchors = values.ca.flatMap((path) => readCertificates(path));
      verifyCertificate = deviceCertificateVerifier({ crypto, trustAnchors: anchors });
    } catch (e) {
      throw new UsageError(`--ca: ${(e as Error).message}`);
    }
  }
  const cloudKeys: P256PrivateKey[] = [];
  for (const path of values['cloud-key'] ?? []) {
    try {
      cloudKeys.push(readP256PrivateKey(crypto, path));
    } catch (e) {
      throw new UsageError(`--cloud-key: ${(e as Error).message}`);
    }
  }

  const inspector = new Inspector({
    crypto,
    maxBytes,
    cloudKeys,
    ...(verifyCertificate === undefined ? {} : { verifyCertificate }),
    ...(sessionKey === undefined ? {} : { sessionKey }),
    revealKeys: values['reveal-keys'] === true,
    diagnostic: values.json !== true,
  });
  // Hex text is up to a little over twice as long as the message it holds.
  const cap = format === 'binary' ? maxBytes : 2 * maxBytes + Math.max(1024, maxBytes);
  let failed = false;
  if (values.lines === true || (format !== 'binary' && positionals.every((f) => f !== '-') && allLines(positionals))) {
    // A capture: many messages a file, so no per-message cap on the file (each line is capped).
    for (const file of positionals) {
      const text = file === '-' ? await readStdinText(io) : readFileSync(file, 'utf8');
      for (const r of inspectLines(inspector, text)) {
        if (!r.valid || r.duplicateOf !== undefined || (values['require-verified'] && !r.verified)) failed = true;
        io.stdout(values.json ? jsonLine(r) : formatLine(r));
      }
    }
    return failed ? 1 : 0;
  }
  for (const file of positionals) {
    let result: InspectResult;
    let note: string | undefined;
    try {
      const raw = file === '-' ? await readStdinCapped(io, cap) : readCapped(file, cap);
      const input = decodeInput(raw, format);
      note = input.note;
      result = inspector.inspect(file, input.bytes);
    } catch (e) {
      // An I/O failure after the checks above (e.g. the file vanished): still one result per file.
      result = {
        file,
        type: 'unknown',
        valid: false,
        reason: 'io-error',
        error: (e as Error).message,
        verified: false,
        opened: false,
        checked: [],
        bytes: 0,
      };
    }
    if (!result.valid || (values['require-verified'] && !result.verified)) failed = true;
    io.stdout(values.json ? `${toJsonLine(result)}\n` : formatText(result, note));
  }
  return failed ? 1 : 0;
}

const JSON_ORDER: (keyof InspectResult)[] = [
  'file',
  'type',
  'valid',
  'reason',
  'error',
  'verified',
  'opened',
  'deviceId',
  'kid',
  'kidCounter',
  'seq',
  'cloudKid',
  'sessionFrom',
  'payloadHex',
  'payloadDiagnostic',
  'sessionKey',
  'baseIv',
  'certificate',
  'checked',
  'bytes',
];

function toJsonLine(result: InspectResult): string {
  const ordered: Record<string, unknown> = {};
  for (const key of JSON_ORDER) if (result[key] !== undefined) ordered[key] = result[key];
  return JSON.stringify(ordered);
}

const TYPE_NAMES: Record<InspectResult['type'], string> = {
  session: 'key message (COSE_Sign1)',
  data: 'data message (COSE_Encrypt0)',
  unknown: 'not a cose-flow/1 message',
};

function formatText(r: InspectResult, note: string | undefined): string {
  const lines = [`== ${r.file}: ${TYPE_NAMES[r.type]}, ${r.bytes} bytes${note === undefined ? '' : ` (${note})`}`];
  const field = (name: string, value: string | number | undefined) => {
    if (value !== undefined) lines.push(`${(name === '' ? '' : `${name}:`).padEnd(13)}${value}`);
  };
  field('valid', r.valid ? `yes${r.verified ? '' : ' (not verified with a key)'}` : `NO — ${r.error}`);
  if (r.valid) for (const check of r.checked) lines.push(`${''.padEnd(13)}✓ ${check}`);
  field('device', r.deviceId);
  if (r.certificate !== undefined) {
    const c = r.certificate;
    field('certificate', `${c.subject} (${c.keyType}), issuer ${c.issuer}, serial ${c.serialHex}`);
    field('', `valid ${c.notBefore} … ${c.notAfter}`);
  }
  if (r.kid !== undefined) field('kid', r.kidCounter === undefined ? r.kid : `${r.kid} (counter ${r.kidCounter})`);
  field('cloud kid', r.cloudKid);
  field('seq', r.seq);
  field('session from', r.sessionFrom);
  if (r.opened || r.sessionKey !== undefined) {
    field('session key', r.sessionKey ?? '(hidden; --reveal-keys prints it)');
    field('Base IV', r.baseIv ?? '(hidden)');
  }
  if (r.payloadHex !== undefined) {
    field('payload', r.payloadDiagnostic ?? `h'${r.payloadHex}' (not CBOR)`);
    if (r.payloadDiagnostic !== undefined) field('payload hex', r.payloadHex);
  }
  if (r.diagnostic !== undefined) lines.push(r.diagnostic);
  return `${lines.join('\n')}\n\n`;
}

export const inspectCommand: Command = {
  usage: INSPECT_USAGE,
  run,
};
