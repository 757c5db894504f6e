/** cose-flow/1: the wire profile, built from `src/cose`. See docs/PROTOCOL.md. */
export * from './counter.js';
export * from './data-message.js';
export * from './enrollment.js';
export * from './key-message.js';
export * from './limits.js';
export * from './session.js';
export * from './topics.js';
