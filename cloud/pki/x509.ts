/**
 * The one place the host loads @peculiar/x509. Its dependency injection (tsyringe) needs the
 * `Reflect.getMetadata` polyfill installed first, so every module that wants the library imports
 * it from here, never from '@peculiar/x509' directly (ES modules evaluate imports in order).
 */
import 'reflect-metadata';
import { AsnParser } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';

export { x509 };

/** Resource limits for parsing untrusted DER (a device certificate is well under 2 KiB). */
const BER_LIMITS: asn1js.FromBerOptions = { maxDepth: 32, maxNodes: 4096, maxContentLength: 65536 };

/**
 * Parses `der` as one ASN.1 value of `type` with @peculiar/asn1-schema, refusing bytes after it
 * and anything past the resource limits. Throws an Error naming `what` on any failure.
 */
export function parseAsn1<T>(der: Uint8Array, type: new () => T, what: string): T {
  const view = new Uint8Array(der); // a private copy over a plain ArrayBuffer
  const parsed = asn1js.fromBER(view.buffer, BER_LIMITS);
  if (parsed.offset === -1 || parsed.result.error) {
    throw new Error(`${what} is not valid DER: ${parsed.result.error || 'unparseable'}`);
  }
  if (parsed.offset !== view.length) {
    throw new Error(`${what} has ${view.length - parsed.offset} byte(s) after its DER encoding`);
  }
  try {
    return AsnParser.fromASN(parsed.result, type);
  } catch (e) {
    throw new Error(`${what} does not have the expected ASN.1 structure: ${(e as Error).message}`);
  }
}
