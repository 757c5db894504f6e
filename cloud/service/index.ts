/** The cloud service: `startCloudService` and the pieces it is made of (docs/CLOUD.md). */

export * from '../telemetry/payload.js';
export * from './at-rest.js';
export * from './commit-queue.js';
export * from './config.js';
export * from './defaults.js';
export * from './log.js';
export * from './metrics.js';
export * from './out-file.js';
export * from './pending-buffer.js';
export * from './receiver.js';
export * from './rekey.js';
export * from './service.js';
export * from './session-table.js';
