/**
 * Host PKI for cose-flow: the CA (issuing), X.509 device certificates (verification), certificate
 * and key files, and the CA data directory (layout, cloud keys, device records, CSR checks,
 * revocation).
 */
export * from './authority.js';
export * from './certificate.js';
export * from './cloud-keys.js';
export * from './csr.js';
export * from './data-dir.js';
export * from './device-issuer.js';
export * from './files.js';
export * from './records.js';
export * from './refusal.js';
export * from './revocation.js';
export * from './setup.js';
export * from './verify.js';
export { x509 } from './x509.js';
