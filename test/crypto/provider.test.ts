/**
 * Cross-provider checks: what one CryptoProvider makes, the other must accept, and both must
 * refuse the same bad input with the same CryptoError reason.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeCrypto } from '../../node/crypto.js';
import { concat, fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import { CryptoError, type CryptoProvider, type CryptoReason } from '../../src/crypto/provider.js';
import {
  bytes,
  G_HEX,
  highSTwin,
  invalidPeerCases,
  invalidScalarCases,
  malformedVerifyCases,
  N_HEX,
  NEG_G_HEX,
  RFC3394,
  RFC4231,
  RFC6979,
  refusalCases,
} from './provider-checks.js';

const noble = nobleCrypto();
const node = nodeCrypto();
const providers = [noble, node];
const pairs: [CryptoProvider, CryptoProvider][] = [
  [noble, node],
  [node, noble],
  [noble, noble],
  [node, node],
];

function rejects(reason: CryptoReason, fn: () => unknown, what: string): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof CryptoError && e.reason === reason,
    `${what}: expected CryptoError('${reason}')`,
  );
}

/** A deterministic stand-in for a random source (xorshift32), for reproducible keys in tests. */
function fakeRandom(seed: number): (n: number) => Uint8Array {
  let s = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      out[i] = s & 255;
    }
    return out;
  };
}

describe('ECDSA P-256 across providers', () => {
  for (const [a, b] of pairs) {
    test(`${a.name} signs, ${b.name} verifies`, () => {
      const key = a.p256Generate();
      assert.equal(key.provider, a.name);
      for (const length of [0, 1, 64, 1000]) {
        const msg = bytes(length, length);
        const sig = a.ecdsaP256Sign(key, msg);
        assert.equal(sig.length, 64);
        assert.equal(sig.constructor, Uint8Array);
        assert.ok(b.ecdsaP256Verify(key.publicKey, msg, sig), `verify of a ${length}-byte message`);
        const tamperedMsg = concat(msg, new Uint8Array([0]));
        assert.equal(b.ecdsaP256Verify(key.publicKey, tamperedMsg, sig), false);
        const tamperedSig = sig.slice();
        tamperedSig[10]! ^= 1;
        assert.equal(b.ecdsaP256Verify(key.publicKey, msg, tamperedSig), false);
        const otherKey = b.p256Generate();
        assert.equal(b.ecdsaP256Verify(otherKey.publicKey, msg, sig), false);
      }
    });
  }

  test('noble signs RFC 6979 A.2.5 deterministically (SHA-256 of the message, s not normalised)', () => {
    const key = noble.p256Import(fromHex(RFC6979.d));
    assert.equal(toHex(noble.ecdsaP256Sign(key, utf8Encode('sample'))), RFC6979.sample);
    assert.equal(toHex(noble.ecdsaP256Sign(key, utf8Encode('test'))), RFC6979.test);
  });

  for (const p of providers) {
    test(`${p.name} verifies the RFC 6979 signatures, high-S and its low-S twin`, () => {
      const pub = fromHex(RFC6979.publicKey);
      assert.ok(p.ecdsaP256Verify(pub, utf8Encode('sample'), fromHex(RFC6979.sample)));
      assert.ok(p.ecdsaP256Verify(pub, utf8Encode('test'), fromHex(RFC6979.test)));
      // (r, n - s) is the same signature in the other half: both must verify (no low-S rule).
      const twin = highSTwin(fromHex(RFC6979.sample));
      assert.ok(p.ecdsaP256Verify(pub, utf8Encode('sample'), twin));
      assert.equal(p.ecdsaP256Verify(pub, utf8Encode('Sample'), twin), false);
    });

    test(`${p.name} verify returns false, never throws, on malformed input`, () => {
      const key = p.p256Generate();
      const msg = bytes(20);
      const sig = p.ecdsaP256Sign(key, msg);
      const cases = malformedVerifyCases(key.publicKey, msg, sig);
      for (const [what, k, m, s] of cases) {
        let result: unknown;
        assert.doesNotThrow(() => {
          result = p.ecdsaP256Verify(k as Uint8Array, m as Uint8Array, s as Uint8Array);
        }, what);
        assert.equal(result, false, what);
      }
      assert.ok(p.ecdsaP256Verify(key.publicKey, msg, sig));
    });
  }
});

describe('ECDH P-256 across providers', () => {
  for (const [a, b] of pairs) {
    test(`${a.name} and ${b.name} agree`, () => {
      const ka = a.p256Generate();
      const kb = b.p256Generate();
      const sa = a.ecdhP256(ka, kb.publicKey);
      const sb = b.ecdhP256(kb, ka.publicKey);
      assert.equal(sa.length, 32);
      assert.equal(toHex(sa), toHex(sb));
    });
  }

  test('d·G for d = 1 is the x of G in both providers', () => {
    const one = fromHex(`${'00'.repeat(31)}01`);
    for (const p of providers) {
      const k = p.p256Import(fromHex(RFC6979.d));
      const shared = p.ecdhP256(p.p256Import(one), k.publicKey);
      assert.equal(toHex(shared), RFC6979.publicKey.slice(2, 66), p.name);
    }
  });

  for (const p of providers) {
    test(`${p.name} refuses invalid peer points with bad-key`, () => {
      const key = p.p256Generate();
      const pub = p.p256Generate().publicKey;
      const cases = invalidPeerCases(pub);
      for (const [what, peer] of cases) rejects('bad-key', () => p.ecdhP256(key, peer as Uint8Array), what);
      assert.equal(p.ecdhP256(key, pub).length, 32);
    });
  }
});

describe('P-256 keys', () => {
  test('importing a known scalar gives the known public key in both providers', () => {
    for (const p of providers) {
      const key = p.p256Import(fromHex(RFC6979.d));
      assert.equal(toHex(key.publicKey), RFC6979.publicKey, p.name);
      assert.equal(key.provider, p.name);
      assert.equal(toHex(p.p256Import(fromHex(`${'00'.repeat(31)}01`)).publicKey), G_HEX, `${p.name}: 1·G`);
      const nMinus1 = fromHex(`${N_HEX.slice(0, 62)}50`);
      assert.equal(toHex(p.p256Import(nMinus1).publicKey), NEG_G_HEX, `${p.name}: (n-1)·G`);
    }
  });

  for (const p of providers) {
    test(`${p.name} p256Import refuses scalars out of range or of the wrong length`, () => {
      for (const [what, reason, d] of invalidScalarCases()) rejects(reason, () => p.p256Import(d as Uint8Array), what);
    });

    test(`${p.name} keys stay with their provider and keep their public key`, () => {
      const key = p.p256Generate();
      const pub = key.publicKey;
      assert.equal(pub.length, 65);
      assert.equal(pub[0], 4);
      key.publicKey.fill(0); // a copy: the key is unaffected
      assert.equal(toHex(key.publicKey), toHex(pub));
      const other = providers.find((q) => q !== p)!;
      const foreign = other.p256Generate();
      rejects('bad-key', () => p.ecdsaP256Sign(foreign, bytes(4)), 'foreign key in sign');
      rejects('bad-key', () => p.ecdhP256(foreign, pub), 'foreign key in ECDH');
      const fake = { provider: p.name, publicKey: pub };
      rejects('bad-key', () => p.ecdsaP256Sign(fake, bytes(4)), 'look-alike key object');
      assert.ok(!JSON.stringify(key).includes('"d"'));
    });
  }

  test('noble with an injected deterministic random source generates deterministic keys', () => {
    const a = nobleCrypto(fakeRandom(42));
    const b = nobleCrypto(fakeRandom(42));
    const c = nobleCrypto(fakeRandom(43));
    const ka = [a.p256Generate(), a.p256Generate()].map((k) => toHex(k.publicKey));
    const kb = [b.p256Generate(), b.p256Generate()].map((k) => toHex(k.publicKey));
    const kc = [c.p256Generate(), c.p256Generate()].map((k) => toHex(k.publicKey));
    assert.deepEqual(ka, kb);
    assert.notEqual(ka[0], ka[1]);
    assert.notEqual(ka[0], kc[0]);
    assert.equal(toHex(a.randomBytes(8)), toHex(b.randomBytes(8)));
    // The generated key works with the other provider.
    const key = a.p256Generate();
    const msg = bytes(33);
    assert.ok(node.ecdsaP256Verify(key.publicKey, msg, a.ecdsaP256Sign(key, msg)));
  });

  test('noble refuses a random source that returns the wrong length', () => {
    const bad = nobleCrypto((n) => new Uint8Array(n - 1));
    assert.throws(() => bad.randomBytes(16), /random source returned 15 bytes/);
    assert.throws(() => bad.p256Generate());
  });
});

describe('random bytes', () => {
  for (const p of providers) {
    test(`${p.name} returns fresh bytes of the requested length`, () => {
      for (const n of [0, 1, 12, 16, 32, 70000]) {
        const r = p.randomBytes(n);
        assert.equal(r.length, n);
        assert.equal(r.constructor, Uint8Array);
      }
      const seen = new Set<string>();
      for (let i = 0; i < 16; i++) seen.add(toHex(p.randomBytes(16)));
      assert.equal(seen.size, 16);
      const big = p.randomBytes(70000);
      assert.notEqual(toHex(big.subarray(65536, 65568)), '00'.repeat(32), 'past the 64 KiB getRandomValues quota');
      rejects('bad-input', () => p.randomBytes(-1), '-1');
      rejects('bad-input', () => p.randomBytes(1.5), '1.5');
    });
  }

  test('noble reads globalThis.crypto at call time and says so when it is missing', () => {
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
    assert.ok(descriptor?.configurable, 'globalThis.crypto can be replaced for this test');
    const p = nobleCrypto();
    try {
      Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true });
      assert.throws(() => p.randomBytes(8), /globalThis\.crypto\.getRandomValues is missing/);
      assert.throws(() => p.p256Generate(), /getRandomValues is missing/);
      let calls = 0;
      Object.defineProperty(globalThis, 'crypto', {
        value: {
          getRandomValues: (a: Uint8Array) => {
            calls++;
            return a.fill(7);
          },
        },
        configurable: true,
        writable: true,
      });
      assert.equal(toHex(p.randomBytes(3)), '070707');
      assert.equal(calls, 1);
    } finally {
      Object.defineProperty(globalThis, 'crypto', descriptor!);
    }
    assert.equal(p.randomBytes(32).length, 32);
  });
});

describe('symmetric primitives across providers', () => {
  const key = bytes(16, 3);
  const iv = bytes(12, 4);

  for (const [a, b] of pairs) {
    test(`AES-128-GCM: ${a.name} seals, ${b.name} opens`, () => {
      for (const [ptLen, aadLen] of [
        [0, 0],
        [64, 0],
        [64, 20],
        [17, 100],
        [4096, 5],
      ] as const) {
        const pt = bytes(ptLen, 5);
        const aad = bytes(aadLen, 6);
        const sealed = a.aesGcmEncrypt(key, iv, pt, aad);
        assert.equal(sealed.length, ptLen + 16);
        assert.equal(toHex(sealed), toHex(b.aesGcmEncrypt(key, iv, pt, aad)));
        assert.equal(toHex(b.aesGcmDecrypt(key, iv, sealed, aad)), toHex(pt));
        const tampered = sealed.slice();
        tampered[tampered.length - 1]! ^= 0x80;
        rejects('decrypt-failed', () => b.aesGcmDecrypt(key, iv, tampered, aad), 'tampered tag');
        rejects('decrypt-failed', () => b.aesGcmDecrypt(key, iv, sealed, concat(aad, new Uint8Array(1))), 'other AAD');
      }
    });

    test(`AES key wrap: ${a.name} wraps, ${b.name} unwraps`, () => {
      const kek = bytes(16, 7);
      for (const len of [16, 24, 32, 64]) {
        const data = bytes(len, len);
        const wrapped = a.aesKeyWrap(kek, data);
        assert.equal(wrapped.length, len + 8);
        assert.equal(toHex(wrapped), toHex(b.aesKeyWrap(kek, data)));
        assert.equal(toHex(b.aesKeyUnwrap(kek, wrapped)), toHex(data));
        const tampered = wrapped.slice();
        tampered[0]! ^= 1;
        rejects('decrypt-failed', () => b.aesKeyUnwrap(kek, tampered), 'tampered wrapped key');
        rejects('decrypt-failed', () => b.aesKeyUnwrap(bytes(16, 8), wrapped), 'wrong KEK');
      }
    });
  }

  test('RFC 3394 §4.1 in both providers', () => {
    for (const p of providers) {
      assert.equal(toHex(p.aesKeyWrap(fromHex(RFC3394.kek), fromHex(RFC3394.data))), RFC3394.wrapped, p.name);
    }
  });

  test('HKDF and SHA-256 agree, including long info and empty salt', () => {
    const ikm = bytes(32, 9);
    for (const [saltLen, infoLen, length] of [
      [0, 0, 16],
      [32, 10, 32],
      [13, 2000, 100],
      [0, 1025, 8160],
    ] as const) {
      const salt = bytes(saltLen, 10);
      const info = bytes(infoLen, 11);
      const [x, y] = providers.map((p) => toHex(p.hkdfSha256(ikm, salt, info, length)));
      assert.equal(x!.length, 2 * length);
      assert.equal(x, y, `salt ${saltLen}, info ${infoLen}, length ${length}`);
    }
    for (const p of providers) {
      // RFC 5869: an absent salt is HashLen zeros.
      assert.equal(
        toHex(p.hkdfSha256(ikm, new Uint8Array(0), bytes(3), 42)),
        toHex(p.hkdfSha256(ikm, new Uint8Array(32), bytes(3), 42)),
      );
      assert.equal(
        toHex(p.sha256(utf8Encode('abc'))),
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      );
    }
  });
});

describe('bad input is refused the same way by every provider', () => {
  for (const p of providers) {
    test(p.name, () => {
      const key = p.p256Generate();
      const foreign = providers.find((q) => q !== p)!.p256Generate();
      for (const [what, reason, run] of refusalCases(p, key, foreign)) rejects(reason, run, what);
      const k16 = bytes(16);
      const iv = bytes(12);
      // Buffers are Uint8Arrays and must work; results are plain Uint8Arrays.
      const sealed = p.aesGcmEncrypt(Buffer.from(k16), Buffer.from(iv), Buffer.from('hi'), Buffer.alloc(0));
      assert.equal(sealed.constructor, Uint8Array);
      assert.equal(p.sha256(Buffer.from('abc')).constructor, Uint8Array);
    });
  }
});

describe('HMAC-SHA-256', () => {
  // RFC 4231 §4.2, §4.3, §4.7 (key longer than the block size).
  for (const p of providers) {
    test(`RFC 4231 vectors [${p.name}]`, () => {
      for (const c of RFC4231) assert.equal(toHex(p.hmacSha256(fromHex(c.key), c.data)), c.mac, c.key);
    });
  }
  test('providers agree on random keys and messages', () => {
    for (let i = 0; i < 50; i++) {
      const key = noble.randomBytes(i);
      const data = noble.randomBytes(i * 7);
      assert.equal(toHex(noble.hmacSha256(key, data)), toHex(node.hmacSha256(key, data)));
    }
  });
});
