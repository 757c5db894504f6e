/**
 * What test/xs/protocol.test.ts gives the XS entry test/xs/entries/protocol.ts (the JSON string
 * `XS_INPUT`, put into the bundle by esbuild). Plain JSON: every byte string is hex, every COSE
 * header map is its CBOR encoding (in the order the example lists it).
 */
export interface CoseWgSign1Case {
  file: string;
  message: string;
  /** The signer's key: 65-byte uncompressed point. */
  publicKey: string;
  externalAad: string;
  plaintext: string;
  /** Reason codes of which one is expected, or absent when the example must verify. */
  reject?: string[];
}

export interface CoseWgEncrypt0Case {
  file: string;
  message: string;
  key: string;
  externalAad: string;
  plaintext: string;
  reject?: string[];
  /** Encrypting again with these inputs must give `expected` byte for byte. */
  again?: { protected: string; unprotected: string; iv: string; expected: string };
}

export interface CoseWgEcdhWrapCase {
  file: string;
  message: string;
  /** The recipient's private scalar. */
  recipientD: string;
  /** The CEK the unwrap must give (intermediates.CEK_hex). */
  cek: string;
  /** The KDF context of the recipient (intermediates), when the example gives it. */
  context?: string;
  externalAad: string;
  plaintext: string;
  again?: {
    /** rng_stream: CEK, content IV, ephemeral private scalar. */
    rng: [string, string, string];
    recipientPublicKey: string;
    recipientKid: string;
    protected: string;
    unprotected: string;
    expected: string;
  };
}

export interface ProtocolInput {
  coseWg: { sign1: CoseWgSign1Case[]; encrypt0: CoseWgEncrypt0Case[]; ecdhWrap: CoseWgEcdhWrapCase[] };
  /** The CA certificate (DER) that issued the device and cloud certificates. */
  caDer: string;
  /** Another CA, which did not issue the device certificate. */
  otherCaDer: string;
  device: { id: string; certificate: string; scalar: string; publicKey: string };
  cloud: { publicKey: string; scalar: string };
  /** The session kid counter of the key message XS makes. */
  kidCounter: number;
  /** Sequence numbers of the data messages XS seals (payloads: see `readingPayload`). */
  sequences: number[];
  /** Messages Node made, for XS to open. */
  fromNode: {
    keyMessage: string;
    data: { seq: number; message: string }[];
    /** `keyMessage`'s COSE_Encrypt re-signed with `otherDevice`'s key and certificate (same CA). */
    resignedKeyMessage: string;
  };
  /** Another device of the same CA: the id whose topic the re-signed key message is opened for. */
  otherDevice: { id: string };
}

/** The application payload of reading `seq`, built the same way on both sides. */
export function readingPayload(seq: number): Map<string, unknown> {
  return new Map<string, unknown>([
    ['seq', seq],
    ['t', 20 + (seq % 100) / 10],
    ['unit', '°C'],
  ]);
}
