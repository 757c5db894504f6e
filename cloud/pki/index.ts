/** Host PKI for cose-flow: the CA (issuing), X.509 device certificates (verification), certificate and key files. */
export * from './authority.js';
export * from './certificate.js';
export * from './files.js';
export * from './verify.js';
export { x509 } from './x509.js';
