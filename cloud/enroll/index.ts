/** Zero-touch enrollment, the cloud side: who may enroll (policy), the decision (enroller), the MQTT service. */
export * from './enroller.js';
export * from './policy.js';
export * from './service.js';
