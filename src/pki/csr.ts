/**
 * PKCS#10 certification requests (RFC 2986) for device enrollment:
 *
 *   CertificationRequest ::= SEQUENCE {
 *     certificationRequestInfo SEQUENCE {
 *       version       INTEGER 0,
 *       subject       Name            -- exactly CN = the device id (UTF8String)
 *       subjectPKInfo                 -- id-ecPublicKey, prime256v1, the 65-byte point
 *       attributes    [0] IMPLICIT SET OF Attribute -- empty: see below
 *     },
 *     signatureAlgorithm  ecdsa-with-SHA256 (no parameters),
 *     signature           BIT STRING (DER ECDSA-Sig-Value over certificationRequestInfo) }
 *
 * The request carries no attributes (no extensionRequest): what a device certificate may do
 * (keyUsage digitalSignature, cA false) is the CA's profile, not something a device can ask
 * for, so the request holds only what the CA must learn from the device — its id and its key —
 * and the proof that it holds the private key.
 *
 * Runtime-neutral (no Node APIs): this runs in XS, where the private key stays in the provider.
 */
import { CoseError } from '../cose/errors.js';
import type { CryptoProvider, P256PrivateKey } from '../crypto/provider.js';
import { checkDeviceId, isValidDeviceId } from '../profile/topics.js';
import {
  bitString,
  contextConstructed,
  DerError,
  integer,
  items,
  readBitStringBytes,
  readDer,
  readOid,
  readSmallUnsigned,
  sequence,
  setItems,
  Tag,
} from './der.js';
import {
  ecdsaSha256AlgorithmIdentifier,
  ecdsaSignatureFromDer,
  ecdsaSignatureToDer,
  readEcdsaSha256AlgorithmIdentifier,
} from './ecdsa-signature.js';
import { commonNameSubject, readName } from './name.js';
import { p256PublicKeyInfo, readP256PublicKeyInfo } from './spki.js';

/** Reader limits for a request (a device's is about 250 bytes and 20 values). */
const LIMITS = { maxDepth: 16, maxNodes: 512 };

/** The DER CertificationRequest for `deviceId` and `key`, self-signed with `key` through `crypto`. */
export function makeCsr(crypto: CryptoProvider, key: P256PrivateKey, deviceId: string): Uint8Array {
  if (typeof deviceId !== 'string') throw new TypeError('the device id must be a string');
  checkDeviceId(deviceId);
  if (key === null || typeof key !== 'object' || !(key.publicKey instanceof Uint8Array)) {
    throw new TypeError('key must be a P256PrivateKey of the provider');
  }
  const info = sequence(
    integer(Uint8Array.of(0)),
    commonNameSubject(deviceId),
    p256PublicKeyInfo(key.publicKey),
    contextConstructed(0),
  );
  const signature = crypto.ecdsaP256Sign(key, info);
  return sequence(info, ecdsaSha256AlgorithmIdentifier(), bitString(ecdsaSignatureToDer(signature)));
}

export interface ParsedCsr {
  /** The subject CN, a valid device id. */
  deviceId: string;
  /** The requested P-256 public key (65-byte point, a copy). */
  publicKey: Uint8Array;
  /** Whether the self-signature verifies under `publicKey` (proof of possession). */
  signatureValid: boolean;
  /** The certificationRequestInfo bytes the signature covers (a copy). */
  info: Uint8Array;
}

/**
 * Reads a DER CertificationRequest and checks its self-signature. Throws
 * `CoseError('bad-certificate')` when it is not a well-formed request of this profile (DER,
 * version 0, exactly one CN that is a valid device id, an EC P-256 key, ecdsa-with-SHA256);
 * a well-formed request whose signature does not verify is returned with `signatureValid: false`.
 */
export function parseCsr(crypto: CryptoProvider, der: Uint8Array): ParsedCsr {
  if (!(der instanceof Uint8Array)) throw bad('it is not a byte string');
  if (der.length === 0) throw bad('it is empty');
  const bytes = der.slice();
  let request: { deviceId: string; publicKey: Uint8Array; info: Uint8Array; signature: Uint8Array };
  try {
    request = readRequest(bytes);
  } catch (e) {
    if (e instanceof DerError) throw bad(e.message);
    throw e;
  }
  const signatureValid = crypto.ecdsaP256Verify(request.publicKey, request.info, request.signature);
  return { deviceId: request.deviceId, publicKey: request.publicKey, signatureValid, info: request.info.slice() };
}

function bad(message: string): CoseError {
  return new CoseError('bad-certificate', `certification request: ${message}`);
}

function readRequest(bytes: Uint8Array) {
  const [info, algorithm, signatureBits] = items(readDer(bytes, LIMITS), Tag.SEQUENCE, 'the request', 3, 3);
  const [version, subject, spki, attributes] = items(info, Tag.SEQUENCE, 'certificationRequestInfo', 4, 4);
  if (readSmallUnsigned(version, 'the version') !== 0) throw new DerError('the version is not 0 (v1)', version!.start);
  const name = readName(subject, 'the subject');
  if (name.commonNames.length !== 1) {
    throw new DerError(`the subject has ${name.commonNames.length} common names (CN), expected one`, subject!.start);
  }
  const deviceId = name.commonNames[0]!;
  if (!isValidDeviceId(deviceId)) {
    throw new DerError(`the subject CN ${JSON.stringify(deviceId)} is not a valid device id`, subject!.start);
  }
  const publicKey = readP256PublicKeyInfo(spki, 'the subject key');
  for (const attribute of setItems(attributes, 'the attributes', 0, 0xa0)) {
    const [type, values] = items(attribute, Tag.SEQUENCE, 'an attribute', 2, 2);
    readOid(type, 'an attribute type');
    setItems(values, 'the values of an attribute');
  }
  readEcdsaSha256AlgorithmIdentifier(algorithm, 'the signature algorithm');
  const signature = ecdsaSignatureFromDer(readBitStringBytes(signatureBits, 'the signature'));
  return { deviceId, publicKey, info: info!.encoding, signature };
}
