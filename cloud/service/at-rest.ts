/**
 * Session keys at rest. The store never sees a session key in clear: the service seals the key
 * and its Base IV with AES-256-GCM under the **storage key** (32 bytes from its configuration)
 * before `putSession`, and opens them again when it loads a session.
 *
 *   sealed = 0x01 ‖ storage key id (4) ‖ nonce (12) ‖ AES-256-GCM(key ‖ Base IV) (28) ‖ tag (16)   61 bytes
 *   AAD    = "cose-flow/1 session at rest" ‖ 0x00 ‖ device id (UTF-8) ‖ 0x00 ‖ kid
 *
 * The AAD binds a sealed key to its (device id, kid): a row copied onto another session does not
 * open. The storage key id (SHA-256 of the key, first 4 bytes) tells an operator which key a
 * session was sealed under when it does not open (instances configured with different keys).
 *
 * Where the storage key comes from, first found wins: `COSE_FLOW_STORAGE_KEY` (64 hex digits), a
 * file named by `--storage-key-file` (64 hex digits), or `DATA_DIR/storage.key`, generated (mode
 * 0600) on first run. Several instances sharing one PostgreSQL store must share the key.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, linkSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { concat, equal, fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import type { SessionKey } from '../../src/profile/session.js';

export const STORAGE_KEY_BYTES = 32;
export const STORAGE_KEY_FILE = 'storage.key';
export const STORAGE_KEY_ENV = 'COSE_FLOW_STORAGE_KEY';
const FORMAT = 0x01;
const KEY_ID_BYTES = 4;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SEALED_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES + 16 + 12 + TAG_BYTES;
const AAD_LABEL = utf8Encode('cose-flow/1 session at rest');

/**
 * The storage key cannot be had: a file that does not hold one, or a named file that is missing.
 * Not a usage error — the configuration names the right place, the content is wrong — and never
 * mended by making a new key, which would leave every stored session unreadable.
 */
export class StorageKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageKeyError';
  }
}

/** A sealed session that does not open: another storage key, or a damaged row. */
export class AtRestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AtRestError';
  }
}

export interface LoadedStorageKey {
  key: Uint8Array;
  /** Where it came from. */
  source: 'environment' | 'file' | 'generated';
  /** The file, for 'file' and 'generated'. */
  path?: string;
  /** First 4 bytes of SHA-256(key), hex: safe to log. */
  keyId: string;
}

function storageKeyId(key: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(key).digest()).slice(0, KEY_ID_BYTES);
}

function parseKeyText(text: string, where: string): Uint8Array {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new StorageKeyError(
      `${where} must hold the storage key as 64 hex digits (32 bytes): restore it from your backup ` +
        '(a new key would leave every stored session unreadable)',
    );
  }
  return fromHex(hex.toLowerCase());
}

export interface LoadStorageKeyOptions {
  dataDir: string;
  /** An explicit key file (never generated). */
  file?: string;
  /** The key as 64 hex digits (e.g. from COSE_FLOW_STORAGE_KEY). */
  hex?: string;
  /** Called when DATA_DIR/storage.key is readable by others than its owner. */
  warn?: (message: string) => void;
}

/**
 * The storage key: `hex`, else `file`, else DATA_DIR/storage.key (made, 0600, when missing; two
 * instances starting at once on one data directory agree on the first one written).
 */
export function loadStorageKey(options: LoadStorageKeyOptions): LoadedStorageKey {
  if (options.hex !== undefined && options.hex !== '') {
    const key = parseKeyText(options.hex, STORAGE_KEY_ENV);
    return { key, source: 'environment', keyId: toHex(storageKeyId(key)) };
  }
  if (options.file !== undefined) {
    if (!existsSync(options.file)) throw new StorageKeyError(`storage key file ${options.file} does not exist`);
    const key = parseKeyText(readFileSync(options.file, 'utf8'), options.file);
    checkMode(options.file, options.warn);
    return { key, source: 'file', path: options.file, keyId: toHex(storageKeyId(key)) };
  }
  const path = join(options.dataDir, STORAGE_KEY_FILE);
  if (!existsSync(path)) {
    // Exclusive creation through a hard link: complete contents or nothing, and no overwrite.
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    try {
      writeFileSync(tmp, `${randomBytes(STORAGE_KEY_BYTES).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
      try {
        linkSync(tmp, path);
        rmSync(tmp, { force: true });
        const key = parseKeyText(readFileSync(path, 'utf8'), path);
        return { key, source: 'generated', path, keyId: toHex(storageKeyId(key)) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  const key = parseKeyText(readFileSync(path, 'utf8'), path);
  checkMode(path, options.warn);
  return { key, source: 'file', path, keyId: toHex(storageKeyId(key)) };
}

function checkMode(path: string, warn?: (message: string) => void): void {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0)
    warn?.(`${path} is readable by others (mode ${mode.toString(8)}): chmod 600 it, it protects every session key`);
}

/** Seals and opens session keys under one storage key. */
export class SessionSealer {
  readonly #key: Buffer;
  readonly #keyId: Uint8Array;
  /** Hex of the storage key id (safe to log). */
  readonly keyId: string;

  constructor(storageKey: Uint8Array) {
    if (storageKey.length !== STORAGE_KEY_BYTES) throw new RangeError('the storage key must be 32 bytes');
    this.#key = Buffer.from(storageKey);
    this.#keyId = storageKeyId(storageKey);
    this.keyId = toHex(this.#keyId);
  }

  seal(deviceId: string, session: SessionKey): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(deviceId, session.kid));
    const plain = Buffer.concat([session.key, session.baseIv]);
    const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    plain.fill(0);
    return concat(Uint8Array.of(FORMAT), this.#keyId, nonce, body);
  }

  /** The session sealed for (deviceId, kid); an AtRestError when it does not open. */
  open(deviceId: string, kid: Uint8Array, sealed: Uint8Array): SessionKey {
    if (sealed.length !== SEALED_BYTES || sealed[0] !== FORMAT)
      throw new AtRestError(`a sealed session is ${SEALED_BYTES} bytes of format 1; this one is not`);
    const keyId = sealed.subarray(1, 1 + KEY_ID_BYTES);
    if (!equal(keyId, this.#keyId))
      throw new AtRestError(
        `the session was sealed under storage key ${toHex(keyId)}, this service has ${this.keyId}: ` +
          'every instance sharing a store needs the same storage key',
      );
    const nonce = sealed.subarray(1 + KEY_ID_BYTES, 1 + KEY_ID_BYTES + NONCE_BYTES);
    const body = sealed.subarray(1 + KEY_ID_BYTES + NONCE_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(deviceId, kid));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new AtRestError(`the sealed session of ${deviceId} kid ${toHex(kid)} does not open (damaged or moved)`);
    }
    const session = {
      kid: kid.slice(),
      key: new Uint8Array(plain.subarray(0, 16)),
      baseIv: new Uint8Array(plain.subarray(16)),
    };
    plain.fill(0);
    return session;
  }
}

function aad(deviceId: string, kid: Uint8Array): Uint8Array {
  return concat(AAD_LABEL, Uint8Array.of(0), utf8Encode(deviceId), Uint8Array.of(0), kid);
}
