/**
 * The certificates a device keeps: its own, the CA's, and the cloud's, in one durable record
 * (two slots, src/device/durable.ts) so that replacing the cloud certificate survives a power cut.
 *
 *   record "certs" = CBOR {1: device certificate DER, 2: CA certificate DER, 3: cloud certificate DER}
 *
 * The device key is not stored: it is derived from the HUK on every boot. Runtime-neutral.
 */
import { CborError, decode, encode } from '../cbor/index.js';
import { bstr } from '../cose/headers.js';
import type { KeyValueStore } from '../platform/store.js';
import { DurableRecord } from './durable.js';

export interface Credentials {
  deviceCertificate: Uint8Array;
  caCertificate: Uint8Array;
  cloudCertificate: Uint8Array;
}

const RECORD = 'certs';

export class CredentialStore {
  readonly #record: DurableRecord;

  constructor(store: KeyValueStore) {
    this.#record = new DurableRecord(store, RECORD);
  }

  /** The stored certificates, or undefined when the device has none (not enrolled). Throws when corrupt. */
  load(): Credentials | undefined {
    const stored = this.#record.read();
    if (stored === undefined) return undefined;
    let map: unknown;
    try {
      map = decode(stored.value, { maxDepth: 1 });
    } catch (e) {
      if (e instanceof CborError) throw new Error(`the stored certificates are not readable: ${e.message}`);
      throw e;
    }
    if (!(map instanceof Map)) throw new Error('the stored certificates are not a map');
    return {
      deviceCertificate: bstr(map.get(1), 'stored device certificate').slice(),
      caCertificate: bstr(map.get(2), 'stored CA certificate').slice(),
      cloudCertificate: bstr(map.get(3), 'stored cloud certificate').slice(),
    };
  }

  save(credentials: Credentials): void {
    this.#record.write(
      encode(
        new Map<number, Uint8Array>([
          [1, credentials.deviceCertificate],
          [2, credentials.caCertificate],
          [3, credentials.cloudCertificate],
        ]),
      ),
    );
  }
}
