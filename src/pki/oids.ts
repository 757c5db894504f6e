/** The object identifiers the device PKI reads and writes (dotted form). */
export const OID = {
  /** id-ecPublicKey (RFC 5480). */
  ecPublicKey: '1.2.840.10045.2.1',
  /** prime256v1 / secp256r1, "P-256" (RFC 5480). */
  prime256v1: '1.2.840.10045.3.1.7',
  /** ecdsa-with-SHA256 (RFC 5758): parameters absent. */
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  /** id-at-commonName (X.520). */
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
} as const;

/** Display names for refusal messages (curves and key algorithms this profile does not take). */
export const OID_NAMES: Readonly<Record<string, string>> = {
  [OID.prime256v1]: 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
  '1.3.132.0.10': 'secp256k1',
  '1.2.840.113549.1.1.1': 'RSA',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
  '1.3.101.110': 'X25519',
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
};
