/**
 * `CryptoProvider` on node:crypto (OpenSSL), synchronous calls only; the cloud service's fast path.
 *
 * Performance notes (measured on the 2-core dev machine, Node 20 / OpenSSL 3.0):
 * - Importing a public key into a KeyObject costs more than a verify (SPKI ≈ 115 µs, JWK ≈ 75 µs,
 *   verify ≈ 70 µs), so verify keeps an LRU cache of public KeyObjects (device keys repeat).
 * - ECDH peers are usually one-time ephemeral keys, so ECDH uses an `ECDH` object per private
 *   key and `computeSecret(point)`, which needs no KeyObject import and rejects off-curve points.
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type ECDH,
  hkdfSync,
  type KeyObject,
  randomFillSync,
  sign,
  verify,
} from 'node:crypto';
import {
  AES_KW_DEFAULT_IV,
  checkBytes,
  checkGcmArgs,
  checkGcmCiphertext,
  checkHkdfLength,
  checkKeyUnwrapArgs,
  checkKeyWrapArgs,
  checkLength,
  checkPublicKeyShape,
  checkScalar,
  isVerifyInputShape,
} from '../src/crypto/checks.js';
import { P256KeyHandle } from '../src/crypto/key-handle.js';
import {
  CryptoError,
  type CryptoProvider,
  GCM_TAG_BYTES,
  P256_SCALAR_BYTES,
  type P256PrivateKey,
} from '../src/crypto/provider.js';

const NAME = 'node';
const CURVE = 'prime256v1';
/** Node's hkdfSync refuses `info` longer than this; longer info goes through HMAC directly. */
const NODE_HKDF_MAX_INFO = 1024;
/** Public keys kept as KeyObjects for verify. */
const VERIFY_KEY_CACHE_SIZE = 4096;

/** A plain Uint8Array the caller owns (a Buffer may be a slice of Node's shared pool). */
function own(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  return new Uint8Array(buf);
}

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function jwkPublic(publicKey: Uint8Array): { kty: 'EC'; crv: 'P-256'; x: string; y: string } {
  return { kty: 'EC', crv: 'P-256', x: b64u(publicKey.subarray(1, 33)), y: b64u(publicKey.subarray(33, 65)) };
}

interface NodeKeyState {
  readonly keyObject: KeyObject;
  readonly ecdh: ECDH;
}

const states = new WeakMap<NodeP256Key, NodeKeyState>();

class NodeP256Key extends P256KeyHandle {
  constructor(publicKey: Uint8Array, state: NodeKeyState) {
    super(NAME, publicKey);
    states.set(this, state);
  }
}

function stateOf(key: P256PrivateKey): NodeKeyState {
  const state = typeof key === 'object' && key !== null ? states.get(key as NodeP256Key) : undefined;
  if (state === undefined) throw new CryptoError('bad-key', 'not a P-256 key made by the node provider');
  return state;
}

/** Builds a key from an ECDH object that already holds a valid private scalar. */
function keyFromEcdh(ecdh: ECDH): NodeP256Key {
  const d = leftPad(ecdh.getPrivateKey());
  const publicKey = own(ecdh.getPublicKey(null, 'uncompressed'));
  const keyObject = createPrivateKey({ key: { ...jwkPublic(publicKey), d: b64u(d) }, format: 'jwk' });
  d.fill(0);
  return new NodeP256Key(publicKey, { keyObject, ecdh });
}

function leftPad(scalar: Uint8Array): Uint8Array {
  const out = new Uint8Array(P256_SCALAR_BYTES);
  out.set(scalar, P256_SCALAR_BYTES - scalar.length);
  return out;
}

function hkdfByHmac(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const prk = createHmac('sha256', salt.length > 0 ? salt : new Uint8Array(32))
    .update(ikm)
    .digest();
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, at = 0; at < length; i++) {
    t = createHmac('sha256', prk)
      .update(t)
      .update(info)
      .update(new Uint8Array([i]))
      .digest();
    out.set(t.subarray(0, Math.min(t.length, length - at)), at);
    at += t.length;
  }
  prk.fill(0);
  return out;
}

export function nodeCrypto(): CryptoProvider {
  /** Insertion-ordered Map used as an LRU: a hit moves the entry to the end. */
  const verifyKeys = new Map<string, KeyObject>();

  function verifyKey(publicKey: Uint8Array): KeyObject | undefined {
    const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1');
    const hit = verifyKeys.get(id);
    if (hit !== undefined) {
      verifyKeys.delete(id);
      verifyKeys.set(id, hit);
      return hit;
    }
    let keyObject: KeyObject;
    try {
      keyObject = createPublicKey({ key: jwkPublic(publicKey), format: 'jwk' }); // OpenSSL checks the point
    } catch {
      return undefined;
    }
    if (verifyKeys.size >= VERIFY_KEY_CACHE_SIZE) verifyKeys.delete(verifyKeys.keys().next().value!);
    verifyKeys.set(id, keyObject);
    return keyObject;
  }

  return {
    name: NAME,

    randomBytes(length: number): Uint8Array {
      checkLength(length, 'random length', 2 ** 31 - 1);
      return randomFillSync(new Uint8Array(length));
    },

    sha256(data: Uint8Array): Uint8Array {
      return own(createHash('sha256').update(checkBytes(data, 'data')).digest());
    },

    hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
      checkBytes(key, 'HMAC key');
      checkBytes(data, 'data');
      return new Uint8Array(createHmac('sha256', key).update(data).digest());
    },

    hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
      checkBytes(ikm, 'HKDF ikm');
      checkBytes(salt, 'HKDF salt');
      checkBytes(info, 'HKDF info');
      checkHkdfLength(length);
      if (info.length > NODE_HKDF_MAX_INFO) return hkdfByHmac(ikm, salt, info, length);
      return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
    },

    aesGcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
      checkGcmArgs(key, iv, plaintext, aad);
      const cipher = createCipheriv('aes-128-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
      cipher.setAAD(aad);
      const out = new Uint8Array(plaintext.length + GCM_TAG_BYTES);
      const body = cipher.update(plaintext);
      out.set(body, 0);
      const rest = cipher.final();
      out.set(rest, body.length);
      out.set(cipher.getAuthTag(), plaintext.length);
      return out;
    },

    aesGcmDecrypt(key: Uint8Array, iv: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array): Uint8Array {
      checkGcmArgs(key, iv, ciphertextAndTag, aad);
      checkGcmCiphertext(ciphertextAndTag);
      const split = ciphertextAndTag.length - GCM_TAG_BYTES;
      const decipher = createDecipheriv('aes-128-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
      decipher.setAuthTag(ciphertextAndTag.subarray(split));
      decipher.setAAD(aad);
      // GCM decrypts all of update()'s input in update() and final() adds nothing, so the
      // plaintext is update()'s own buffer: no second buffer, no copy (wiped if the tag fails).
      const body = decipher.update(ciphertextAndTag.subarray(0, split));
      try {
        const rest = decipher.final();
        if (rest.length !== 0) throw new Error('AES-GCM final() returned bytes');
      } catch {
        body.fill(0);
        throw new CryptoError('decrypt-failed', 'AES-GCM authentication failed');
      }
      return own(body);
    },

    aesKeyWrap(kek: Uint8Array, keyData: Uint8Array): Uint8Array {
      checkKeyWrapArgs(kek, keyData);
      const cipher = createCipheriv('id-aes128-wrap', kek, AES_KW_DEFAULT_IV);
      const out = new Uint8Array(keyData.length + 8);
      const body = cipher.update(keyData);
      out.set(body, 0);
      out.set(cipher.final(), body.length);
      return out;
    },

    aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array {
      checkKeyUnwrapArgs(kek, wrapped);
      // OpenSSL reports a failed integrity check from update() ("unsupported state"), not final().
      try {
        const decipher = createDecipheriv('id-aes128-wrap', kek, AES_KW_DEFAULT_IV);
        const out = new Uint8Array(wrapped.length - 8);
        const body = decipher.update(wrapped);
        out.set(body, 0);
        out.set(decipher.final(), body.length);
        return out;
      } catch {
        throw new CryptoError('decrypt-failed', 'AES key unwrap integrity check failed');
      }
    },

    p256Generate(): P256PrivateKey {
      const ecdh = createECDH(CURVE);
      ecdh.generateKeys();
      return keyFromEcdh(ecdh);
    },

    p256Import(d: Uint8Array): P256PrivateKey {
      checkScalar(d);
      const ecdh = createECDH(CURVE);
      try {
        ecdh.setPrivateKey(d);
      } catch {
        throw new CryptoError('bad-key', 'P-256 private scalar rejected by OpenSSL');
      }
      return keyFromEcdh(ecdh);
    },

    ecdsaP256Sign(key: P256PrivateKey, message: Uint8Array): Uint8Array {
      const { keyObject } = stateOf(key);
      checkBytes(message, 'message');
      return own(sign('sha256', message, { key: keyObject, dsaEncoding: 'ieee-p1363' }));
    },

    ecdsaP256Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      if (!isVerifyInputShape(publicKey, message, signature)) return false;
      const key = verifyKey(publicKey);
      if (key === undefined) return false;
      try {
        return verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
      } catch {
        return false;
      }
    },

    ecdhP256(key: P256PrivateKey, peerPublicKey: Uint8Array): Uint8Array {
      const { ecdh } = stateOf(key);
      checkPublicKeyShape(peerPublicKey, 'peer public key');
      try {
        // OpenSSL decodes the point with EC_POINT_oct2point, which refuses points off the curve.
        return own(ecdh.computeSecret(peerPublicKey));
      } catch {
        throw new CryptoError('bad-key', 'peer public key is not a point on P-256');
      }
    },
  };
}
