/**
 * Offline provisioning for simulated devices, the factory's two steps on the host:
 *
 *   deviceCsr(crypto, dataDir, id)     the device's certification request (PEM), from its own
 *                                      HUK in DIR/sim/<id>/huk (made on first use, as a first boot)
 *   readProvisioning(files, ids)       the certificates `ca issue` made, read from files (PEM or
 *                                      DER; `{id}` in the device certificate's path is each device's
 *                                      id), as `DeviceConfig.provisioned` takes them
 *
 * The device checks what it is given at boot (src/device/credentials.ts verifyCredentials); this
 * only reads files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CryptoProvider } from '../src/crypto/provider.js';
import type { Credentials } from '../src/device/credentials.js';
import { makeCsr } from '../src/pki/csr.js';
import { pemDecode, pemEncode } from '../src/pki/pem.js';
import { fileHuk } from './huk.js';

/** Where each device's certificates come from: paths to PEM or DER files. */
export interface ProvisioningFiles {
  /** The device certificate; `{id}` is replaced by the device id (required for more than one device). */
  deviceCertificate: string;
  caCertificate: string;
  cloudCertificate: string;
}

/** The DER of one certificate file: PEM ("CERTIFICATE") or DER. Errors name the file. */
export function readCertificateFile(path: string, what: string): Uint8Array {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read the ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (data.length > 0 && data[0] === 0x30) return new Uint8Array(data); // DER: a SEQUENCE
  try {
    return pemDecode(data.toString('utf8'), 'CERTIFICATE');
  } catch (e) {
    throw new Error(`the ${what} ${path} is neither DER nor a PEM certificate: ${(e as Error).message}`);
  }
}

/** Each device's certificates, by device id. */
export function readProvisioning(files: ProvisioningFiles, deviceIds: string[]): Map<string, Credentials> {
  if (deviceIds.length > 1 && !files.deviceCertificate.includes('{id}')) {
    throw new Error(
      `${deviceIds.length} devices need one certificate each: put {id} in the device certificate path (e.g. certs/{id}.pem)`,
    );
  }
  const caCertificate = readCertificateFile(files.caCertificate, 'CA certificate');
  const cloudCertificate = readCertificateFile(files.cloudCertificate, 'cloud certificate');
  const byId = new Map<string, Credentials>();
  for (const id of deviceIds) {
    const path = files.deviceCertificate.replaceAll('{id}', id);
    byId.set(id, {
      deviceCertificate: readCertificateFile(path, `device certificate of ${id}`),
      caCertificate,
      cloudCertificate,
    });
  }
  return byId;
}

/**
 * The certification request (PEM) of the simulated device `deviceId` in `dataDir`, for
 * `ca issue --csr`: CN = the device id, signed by the key derived from the device's HUK
 * (DIR/sim/<id>/huk, made now when the device has never run).
 */
export function deviceCsr(crypto: CryptoProvider, dataDir: string, deviceId: string): string {
  const identity = fileHuk(crypto, join(dataDir, 'sim', deviceId, 'huk')).identity();
  return pemEncode(makeCsr(crypto, identity.key, deviceId), 'CERTIFICATE REQUEST');
}
