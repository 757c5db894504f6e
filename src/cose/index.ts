/** COSE (RFC 9052/9053) with the algorithms cose-flow/1 uses: pure functions, no I/O. */
export * from './encrypt.js';
export * from './encrypt0.js';
export * from './errors.js';
export * from './headers.js';
export * from './key.js';
export * from './mac0.js';
export * from './message.js';
export * from './sign1.js';
