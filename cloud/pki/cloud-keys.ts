/**
 * The cloud's ECDH key pairs in the data directory, and their rotation.
 *
 * `DIR/cloud.pem` + `DIR/cloud.key` are the current pair: its certificate (issued by the CA,
 * keyUsage keyAgreement) goes to devices at enrollment, and devices seal session keys to it,
 * naming its cloud key id (`cloudKeyId`: SHA-256 of the point, first 8 bytes) in the recipient
 * header. `rotate` moves the current pair to `DIR/cloud-keys/retired/<kid hex>.{pem,key}` before
 * the new one takes its place, so sessions sealed to an older key still open: `loadCloudKeys`
 * returns every configured key, current and retiring, by key id, and the cloud service accepts a
 * key message for any of them — until the retired key's deadline, `retired/<kid hex>.retire-at`
 * (an ISO time; default 30 days after the rotation), after which it is no longer loaded. Retiring
 * a key for good (`retireCloudKey`, what `cose-flow cloud rotate` does once every device moved or
 * at its deadline) deletes its private key and keeps its certificate in `cloud-keys/ended/`.
 * A new cloud certificate's notBefore is later than the one it replaces: devices take a cloud
 * certificate only when it is newer than theirs (docs/PROTOCOL.md §4.9).
 *
 * A running service holds its keys in a `CloudKeyRing`: lookup by key id, the current key, and a
 * reload whenever the keys on disk change or a retired key's deadline passes.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../node/atomic-write.js';
import { toHex } from '../../src/bytes.js';
import type { CryptoProvider, P256PrivateKey } from '../../src/crypto/provider.js';
import { cloudKeyId } from '../../src/profile/session.js';
import { generateKeyPair, issueCertificate } from './authority.js';
import { parseCertificate } from './certificate.js';
import { DataDirError, loadCaFromDir, openDataDir, writeSecretFile } from './data-dir.js';
import { keyMatchesPublicKey, readCertificates, readP256PrivateKey } from './files.js';

export const DEFAULT_CLOUD_NAME = 'cose-flow cloud';
/** How long a rotated-out key stays accepted when no deadline is given. */
export const DEFAULT_RETIRE_AFTER_MS = 30 * 86_400_000;

export interface CloudKey {
  /** The cloud key id devices name (8 bytes) and its hex. */
  kid: Uint8Array;
  kidHex: string;
  /** The private key, imported into the provider given to `loadCloudKeys`. */
  key: P256PrivateKey;
  publicKey: Uint8Array;
  /** The certificate DER. */
  certificate: Uint8Array;
  notAfter: Date;
  /** True for `DIR/cloud.pem` / `DIR/cloud.key`, false for a retired pair. */
  current: boolean;
  /** A retired pair's deadline: not loaded from then on. */
  retireAt?: Date;
  notBefore: Date;
  /** The certificate and key files. */
  certificatePath: string;
  keyPath: string;
}

export interface CloudKeygenOptions {
  /** Replace an existing pair, keeping it as a retired key. Without it an existing pair is an error. */
  rotate?: boolean;
  validityDays?: number;
  /** The certificate's common name; default "cose-flow cloud". */
  name?: string;
  /** When rotating: until when the retired key is still accepted (default 30 days from now). */
  retireAt?: Date;
}

export interface CloudKeygenResult {
  kidHex: string;
  certificatePem: string;
  serialHex: string;
  notAfter: Date;
  /** The key id of the pair that was retired, when rotating, and until when it is accepted. */
  retiredKidHex?: string;
  retireAt?: Date;
}

/** Makes the cloud key pair and its certificate (issued by the CA of `root`). */
export async function cloudKeygen(
  crypto: CryptoProvider,
  root: string,
  options: CloudKeygenOptions = {},
): Promise<CloudKeygenResult> {
  const layout = openDataDir(root);
  const exists = existsSync(layout.cloudCertificate) || existsSync(layout.cloudKey);
  if (exists && !options.rotate) {
    throw new DataDirError(
      `${root} already has a cloud key (${layout.cloudKey}); use --rotate to replace it (the old key stays usable as a retired key)`,
    );
  }
  const ca = await loadCaFromDir(root);
  let retired: CloudKey | undefined;
  if (exists) {
    retired = readPair(crypto, layout.cloudCertificate, layout.cloudKey, true);
  }
  const pair = generateKeyPair();
  pair.privateScalar.fill(0);
  const request = {
    commonName: options.name ?? DEFAULT_CLOUD_NAME,
    publicKey: pair.publicKey,
    keyUsage: 'cloud' as const,
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
  };
  let issued = await issueCertificate(ca, request);
  if (retired !== undefined && issued.certificate.notBefore.getTime() <= retired.notBefore.getTime()) {
    // Devices take only a newer certificate: one second after the one it replaces, same length.
    const notBefore = new Date(retired.notBefore.getTime() + 1000);
    const length = issued.certificate.notAfter.getTime() - issued.certificate.notBefore.getTime();
    issued = await issueCertificate(ca, { ...request, notBefore, notAfter: new Date(notBefore.getTime() + length) });
  }
  let retiredKidHex: string | undefined;
  let retireAt: Date | undefined;
  if (retired !== undefined) {
    // Keep the old pair first: a crash between the steps leaves both keys on disk, never neither.
    retiredKidHex = retired.kidHex;
    retireAt = options.retireAt ?? new Date(Date.now() + DEFAULT_RETIRE_AFTER_MS);
    const base = join(layout.retiredCloudKeys, retired.kidHex);
    writeFileAtomic(`${base}.retire-at`, `${retireAt.toISOString()}\n`);
    writeFileAtomic(`${base}.pem`, readFileText(layout.cloudCertificate));
    writeSecretFile(`${base}.key`, readFileText(layout.cloudKey));
  }
  writeSecretFile(layout.cloudKey, pair.privateKeyPem);
  writeFileAtomic(layout.cloudCertificate, issued.pem);
  return {
    kidHex: toHex(cloudKeyId(crypto, pair.publicKey)),
    certificatePem: issued.pem,
    serialHex: issued.serialHex,
    notAfter: issued.notAfter,
    ...(retiredKidHex === undefined ? {} : { retiredKidHex }),
    ...(retireAt === undefined ? {} : { retireAt }),
  };
}

function readFileText(path: string): string {
  return readFileSync(path, 'utf8');
}

function readPair(crypto: CryptoProvider, certificatePath: string, keyPath: string, current: boolean): CloudKey {
  const [der] = readCertificates(certificatePath);
  const cert = parseCertificate(der!);
  if (cert.p256PublicKey === undefined) {
    throw new DataDirError(`${certificatePath}: the cloud key is ${cert.keyType}, not EC P-256`);
  }
  const key = readP256PrivateKey(crypto, keyPath);
  if (!keyMatchesPublicKey(key, cert.p256PublicKey)) {
    throw new DataDirError(`${keyPath} does not belong to the certificate ${certificatePath}`);
  }
  const kid = cloudKeyId(crypto, cert.p256PublicKey);
  return {
    kid,
    kidHex: toHex(kid),
    key,
    publicKey: cert.p256PublicKey,
    certificate: cert.der,
    notAfter: cert.notAfter,
    notBefore: cert.notBefore,
    current,
    certificatePath,
    keyPath,
  };
}

/** A retired pair's deadline (`retired/<kid>.retire-at`), or undefined when it has none. */
function readRetireAt(base: string): Date | undefined {
  if (!existsSync(`${base}.retire-at`)) return undefined;
  const at = new Date(readFileText(`${base}.retire-at`).trim());
  if (Number.isNaN(at.getTime())) throw new DataDirError(`${base}.retire-at does not hold an ISO time`);
  return at;
}

/**
 * Every configured cloud key of `root` — the current pair and each retired one whose deadline has
 * not passed at `now` — by cloud key id (lowercase hex), each private key imported into `crypto`.
 * A DataDirError when there is no current pair or a pair is inconsistent (key not matching its
 * certificate, file named for another key id).
 */
export function loadCloudKeys(crypto: CryptoProvider, root: string, now: number = Date.now()): Map<string, CloudKey> {
  const layout = openDataDir(root);
  if (!existsSync(layout.cloudCertificate) || !existsSync(layout.cloudKey)) {
    throw new DataDirError(`no cloud key in ${root} (run \`cose-flow cloud keygen --data-dir ${root}\`)`);
  }
  const keys = new Map<string, CloudKey>();
  const current = readPair(crypto, layout.cloudCertificate, layout.cloudKey, true);
  keys.set(current.kidHex, current);
  const names = existsSync(layout.retiredCloudKeys) ? readdirSync(layout.retiredCloudKeys).sort() : [];
  for (const name of names) {
    const m = /^([0-9a-f]{16})\.key$/.exec(name);
    if (m === null) continue;
    const base = join(layout.retiredCloudKeys, m[1]!);
    const retireAt = readRetireAt(base);
    if (retireAt !== undefined && retireAt.getTime() <= now) continue; // past its deadline
    if (!existsSync(`${base}.pem`)) throw new DataDirError(`${base}.key has no certificate ${base}.pem`);
    const pair = readPair(crypto, `${base}.pem`, `${base}.key`, false);
    if (retireAt !== undefined) pair.retireAt = retireAt;
    if (pair.kidHex !== m[1]) throw new DataDirError(`${base}.key holds cloud key ${pair.kidHex}, not ${m[1]}`);
    if (!keys.has(pair.kidHex)) keys.set(pair.kidHex, pair);
  }
  return keys;
}

/** The `cloudKey` lookup of `openKeyMessage` over `loadCloudKeys`' result. */
export function cloudKeyLookup(keys: Map<string, CloudKey>): (kid: Uint8Array) => P256PrivateKey | undefined {
  return (kid) => keys.get(toHex(kid))?.key;
}

/** The current cloud certificates (DER) of `root`: what enrollment gives devices. */
export function currentCloudCertificates(root: string): Uint8Array[] {
  const layout = openDataDir(root);
  if (!existsSync(layout.cloudCertificate)) {
    throw new DataDirError(`no cloud certificate in ${root} (run \`cose-flow cloud keygen --data-dir ${root}\`)`);
  }
  return readCertificates(layout.cloudCertificate);
}

/**
 * Retires a rotated-out key for good: its private key is deleted and its certificate kept as
 * `cloud-keys/ended/<kid>.pem`. Sessions sealed to it no longer open (`unknown-recipient`). False
 * when `root` has no retired key `kidHex`.
 */
export function retireCloudKey(root: string, kidHex: string): boolean {
  if (!/^[0-9a-f]{16}$/.test(kidHex)) throw new RangeError(`not a cloud key id: ${JSON.stringify(kidHex)}`);
  const base = join(openDataDir(root).retiredCloudKeys, kidHex);
  if (!existsSync(`${base}.key`) && !existsSync(`${base}.pem`)) return false;
  const ended = join(dirname(openDataDir(root).retiredCloudKeys), 'ended');
  mkdirSync(ended, { recursive: true });
  rmSync(`${base}.key`, { force: true });
  if (existsSync(`${base}.pem`)) renameSync(`${base}.pem`, join(ended, `${kidHex}.pem`));
  rmSync(`${base}.retire-at`, { force: true });
  return true;
}

/**
 * What changes when the cloud keys of `root` change (a rotation, a retirement): the current
 * pair's and the retired directory's modification times. Cheap (two stats): the service compares
 * it to decide when to load the keys again.
 */
export function cloudKeysVersion(root: string): string {
  const layout = openDataDir(root);
  const stamp = (path: string) => {
    try {
      const s = statSync(path);
      return `${s.mtimeMs}:${s.size}`;
    } catch {
      return '-';
    }
  };
  return [stamp(layout.cloudCertificate), stamp(layout.cloudKey), stamp(layout.retiredCloudKeys)].join('|');
}

/** What changed when a key ring loaded its keys again. */
export interface CloudKeyChange {
  /** Key ids (hex) loaded now and not before, and loaded before and not now. */
  added: string[];
  removed: string[];
  keys: CloudKey[];
}

export interface CloudKeyRingOptions {
  /** The clock for retired keys' deadlines (tests). */
  now?: () => number;
  /** After a reload that added or removed keys. */
  onChange?: (change: CloudKeyChange) => void;
  /** A reload failed (the keys loaded before stay in use). */
  onError?: (error: Error) => void;
}

/**
 * The cloud keys of a data directory, kept current while a service runs: loaded at the start
 * (a missing or broken key stops it), and again whenever the directory's keys change (a rotation,
 * a retirement: `cloudKeysVersion`, two stats) or a retired key's deadline passes — checked by
 * `watch`'s timer, and by `reload` when a key message names a key the ring does not hold. So during
 * a rotation both keys open sessions, and a retired key stops at its deadline.
 */
export class CloudKeyRing {
  readonly #crypto: CryptoProvider;
  readonly #root: string;
  readonly #options: CloudKeyRingOptions;
  readonly #now: () => number;
  #version: string;
  #keys: Map<string, CloudKey>;
  #timer: NodeJS.Timeout | undefined;

  /** Loads the keys of `root`; throws a DataDirError when they cannot be loaded. */
  constructor(crypto: CryptoProvider, root: string, options: CloudKeyRingOptions = {}) {
    this.#crypto = crypto;
    this.#root = root;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#version = cloudKeysVersion(root);
    this.#keys = loadCloudKeys(crypto, root, this.#now());
  }

  /** The version (`cloudKeysVersion`) of the keys loaded last. */
  get version(): string {
    return this.#version;
  }

  /** Every key loaded now, current first. */
  keys(): CloudKey[] {
    return [...this.#keys.values()];
  }

  /** The key with this id (hex), if loaded. */
  get(kidHex: string): CloudKey | undefined {
    return this.#keys.get(kidHex);
  }

  /** The current pair (the one devices are given). */
  current(): CloudKey {
    for (const k of this.#keys.values()) if (k.current) return k;
    throw new DataDirError(`no current cloud key in ${this.#root}`);
  }

  /** The `cloudKey` lookup of `openKeyMessage`: the private key a recipient names, if loaded. */
  readonly lookup = (kid: Uint8Array): P256PrivateKey | undefined => this.#keys.get(toHex(kid))?.key;

  /**
   * Loads the keys again when they changed on disk or a deadline passed. True when a key was
   * added (a key message naming an unknown key may open now). A failure is reported to `onError`
   * and keeps the keys loaded before.
   */
  reload(): boolean {
    const version = cloudKeysVersion(this.#root);
    const now = this.#now();
    const expired = [...this.#keys.values()].some((k) => k.retireAt !== undefined && k.retireAt.getTime() <= now);
    if (version === this.#version && !expired) return false;
    this.#version = version;
    let fresh: Map<string, CloudKey>;
    try {
      fresh = loadCloudKeys(this.#crypto, this.#root, now);
    } catch (e) {
      this.#options.onError?.(e instanceof Error ? e : new Error(String(e)));
      return false;
    }
    const added = [...fresh.keys()].filter((k) => !this.#keys.has(k));
    const removed = [...this.#keys.keys()].filter((k) => !fresh.has(k));
    this.#keys = fresh;
    if (added.length > 0 || removed.length > 0) this.#options.onChange?.({ added, removed, keys: this.keys() });
    return added.length > 0;
  }

  /** Looks for changes every `intervalMs` until `close` (the timer does not keep the process alive). */
  watch(intervalMs: number): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = setInterval(() => this.reload(), intervalMs);
    this.#timer.unref();
  }

  /** Stops watching. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
