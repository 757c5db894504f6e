/** The device side of the cose-flow PKI: DER, PKCS#10 requests, X.509 certificate checks (runs in XS). */
export * from './certificate.js';
export * from './csr.js';
export * as der from './der.js';
export { DerError } from './der.js';
export * from './ecdsa-signature.js';
export * from './name.js';
export * from './oids.js';
export * from './spki.js';
