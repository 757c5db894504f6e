/** Defaults of the cloud service that the CLI needs without loading the service itself. */

/** The default store: sqlite:DATA_DIR/cose-flow.db. */
export const DEFAULT_STORE_FILE = 'cose-flow.db';
/** MQTT 5 Receive Maximum: unacknowledged QoS 1/2 messages the broker may have in flight to us. */
export const DEFAULT_RECEIVE_MAXIMUM = 4096;
/** How long the broker keeps the session (and queues messages) while the service is away. */
export const DEFAULT_SESSION_EXPIRY_SECONDS = 86_400;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/**
 * Replay window W with a shared subscription: the instances commit one device's messages out of
 * order, and a message more than W behind the newest one committed would be lost as `replay`.
 */
export const DEFAULT_SHARED_WINDOW_SIZE = 1024;
