/**
 * What the service trusts and holds, loaded before anything connects (a configuration problem
 * stops the start): the storage key that seals session keys at rest, the CA certificates device
 * certificates must chain to, the revocation list, and — given the cloud key ring — how a key
 * message is opened.
 */
import { CoseError } from '../../src/cose/errors.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { type OpenedKeyMessage, openKeyMessage } from '../../src/profile/key-message.js';
import type { CloudKeyRing } from '../pki/cloud-keys.js';
import { type DataDir, DataDirError } from '../pki/data-dir.js';
import { readCertificates } from '../pki/files.js';
import { revocationCheckerPerTurn } from '../pki/revocation.js';
import { deviceCertificateVerifier } from '../pki/verify.js';
import { type LoadedStorageKey, loadStorageKey, SessionSealer } from './at-rest.js';
import type { Logger } from './log.js';

export interface TrustOptions {
  /** The at-rest key: bytes, a hex string (COSE_FLOW_STORAGE_KEY) or a file; default DATA_DIR/storage.key. */
  storageKey?: Uint8Array;
  storageKeyHex?: string;
  storageKeyFile?: string;
  /** CA certificate files trusted for device certificates (default DATA_DIR/ca.pem). */
  trustAnchors?: string[];
  /** The clock for certificate validity (tests). */
  certificateTime?: () => Date;
}

export interface Trust {
  /** The key, where it came from (`option` when given as bytes) and its loggable id. */
  storageKey: { key: Uint8Array; source: LoadedStorageKey['source'] | 'option'; keyId: string };
  sealer: SessionSealer;
  /** The trusted CA certificates (DER). */
  anchors: Uint8Array[];
  /** The revocation list (re-read when it changes). */
  isRevoked: (serialHex: string) => boolean;
  verifyCertificate: ReturnType<typeof deviceCertificateVerifier>;
}

export function loadTrust(crypto: CryptoProvider, dataDir: DataDir, options: TrustOptions, log: Logger): Trust {
  const storageKey: Trust['storageKey'] = options.storageKey
    ? { key: options.storageKey, source: 'option', keyId: new SessionSealer(options.storageKey).keyId }
    : loadStorageKey({
        dataDir: dataDir.root,
        ...(options.storageKeyHex === undefined ? {} : { hex: options.storageKeyHex }),
        ...(options.storageKeyFile === undefined ? {} : { file: options.storageKeyFile }),
        warn: (message) => log.warn({ event: 'storage-key-mode' }, message),
      });
  const anchors = (options.trustAnchors ?? [dataDir.caCertificate]).flatMap((file) => {
    try {
      return readCertificates(file);
    } catch (e) {
      throw new DataDirError(
        `cannot read the trusted CA certificate ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): ` +
          `run \`cose-flow ca init --data-dir ${dataDir.root}\`, or name the CA file(s) with --trust`,
      );
    }
  });
  // Looked at once per event-loop turn: a stat per message was a cost that grew with the fleet.
  const isRevoked = revocationCheckerPerTurn(dataDir);
  const verifyCertificate = deviceCertificateVerifier({
    crypto,
    trustAnchors: anchors,
    isRevoked,
    ...(options.certificateTime === undefined ? {} : { now: options.certificateTime }),
  });
  return { storageKey, sealer: new SessionSealer(storageKey.key), anchors, isRevoked, verifyCertificate };
}

/**
 * `openKeyMessage` with the ring's keys and the trusted CA. A key message for a cloud key the
 * ring does not hold (one `cloud keygen --rotate` made after the start) reloads the ring and is
 * tried once more.
 */
export function keyMessageOpener(
  crypto: CryptoProvider,
  keys: CloudKeyRing,
  trust: Pick<Trust, 'verifyCertificate'>,
  maxBytes: number,
): (bytes: Uint8Array, topicDeviceId: string) => OpenedKeyMessage {
  return (bytes, topicDeviceId) => {
    const open = () =>
      openKeyMessage(crypto, bytes, {
        cloudKey: keys.lookup,
        verifyCertificate: trust.verifyCertificate,
        topicDeviceId,
        maxBytes,
      });
    try {
      return open();
    } catch (e) {
      if (e instanceof CoseError && e.reason === 'unknown-recipient' && keys.reload()) return open();
      throw e;
    }
  };
}
