/**
 * What the cloud service tells observers besides delivered payloads (those go to `onPayload`): a
 * session stored, a message refused (with its reason code), a duplicate acknowledged. The live
 * dashboard (cloud/dashboard/) and the demo's terminal view are built on these; the same facts are
 * in the log and the metrics. Shared by the service (which emits them) and its observers, so that
 * neither imports the other.
 */

/** Which topic a message came on: a key message, a data message, or neither (a bad topic). */
export type MessageKind = 'session' | 'data' | 'other';

export type ServiceEvent =
  | {
      type: 'session';
      deviceId: string;
      kidHex: string;
      at: number;
      /** The cloud key id (hex) the session was sealed to: the key the device now trusts. */
      cloudKid?: string;
    }
  | {
      type: 'rejected';
      kind: MessageKind;
      /** A reason code of docs/PROTOCOL.md §6.4 (`decrypt-failed`, `bad-certificate`, `replay`, …). */
      reason: string;
      deviceId?: string;
      kidHex?: string;
      seq?: number;
      detail: string;
      at: number;
    }
  | { type: 'duplicate'; kind: MessageKind; deviceId?: string; kidHex?: string; seq?: number; at: number };

export type ServiceEventHandler = (event: ServiceEvent) => void;
