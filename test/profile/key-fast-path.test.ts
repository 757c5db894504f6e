/**
 * Differential test of the key message fast reader (src/profile/key-message-fast.ts):
 * `openKeyMessage` (fast reader first) and `openKeyMessageGeneral` (the strict decoder only) must
 * open the same messages to the same session and refuse the same ones with the same reason, on
 * seeded random mutations of valid key messages and on valid but non-canonical re-encodings
 * (KEY_FAST_PATH_SEED, KEY_FAST_PATH_RUNS to change).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { nodeCrypto } from '../../node/crypto.js';
import { equal, toHex } from '../../src/bytes.js';
import { encode, encodeAsGiven, Tag } from '../../src/cbor/index.js';
import {
  CoseError,
  decodeEncrypt,
  decodeSign1,
  decodeSymmetricKey,
  makeSign1,
  symmetricKeyMap,
} from '../../src/cose/index.js';
import {
  cloudKeyId,
  makeKeyMessage,
  newSessionKey,
  type OpenKeyMessage,
  openKeyMessage,
  openKeyMessageGeneral,
} from '../../src/profile/index.js';
import { readCanonicalKeyMessage, readCanonicalSessionKey } from '../../src/profile/key-message-fast.js';
import { makePki, type Pki } from '../fixtures/pki.js';

const crypto = nodeCrypto();
const SEED = Number(process.env.KEY_FAST_PATH_SEED ?? 0x13b);
const RUNS = Number(process.env.KEY_FAST_PATH_RUNS ?? 1500);

let pki: Pki;
let options: OpenKeyMessage;
const messages: Uint8Array[] = [];

before(async () => {
  pki = await makePki({ deviceIds: ['dev-1', 'dev-2'] });
  const cloudKey = crypto.p256Import(pki.cloud.privateScalar);
  const cloudKid = cloudKeyId(crypto, cloudKey.publicKey);
  options = {
    cloudKey: (kid) => (equal(kid, cloudKid) ? cloudKey : undefined),
    verifyCertificate: deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] }),
    topicDeviceId: 'dev-1',
  };
  for (const [deviceId, counter] of [
    ['dev-1', 1],
    ['dev-1', 300],
    ['dev-1', 2 ** 40],
    ['dev-2', 5],
  ] as const) {
    const dev = pki.devices.get(deviceId)!;
    messages.push(
      makeKeyMessage(crypto, {
        deviceId,
        deviceKey: crypto.p256Import(dev.privateScalar),
        deviceCertificate: dev.der,
        cloudPublicKey: pki.cloud.publicKey,
        session: newSessionKey(crypto, counter),
      }),
    );
  }
});

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

function outcome(open: () => ReturnType<typeof openKeyMessage>): string {
  try {
    const o = open();
    const s = o.session;
    return [
      o.deviceId,
      toHex(s.kid),
      toHex(s.key),
      toHex(s.baseIv),
      toHex(o.cloudKid),
      toHex(o.signedContentDigest),
    ].join(' ');
  } catch (e) {
    if (e instanceof CoseError) return `refused ${e.reason}`;
    throw e;
  }
}

/** The same key message re-signed with its Sign1 protected map in another (non-deterministic) order. */
function reordered(message: Uint8Array): Uint8Array {
  const sign1 = decodeSign1(message);
  const dev = pki.devices.get('dev-1')!;
  return makeSign1(crypto, crypto.p256Import(dev.privateScalar), {
    protected: new Map<number, unknown>([
      [33, sign1.protected.get(33)],
      [1, -7],
      [3, 96],
    ]),
    payload: sign1.payload!,
    mapOrder: 'as-given',
  });
}

/** The same COSE_Encrypt with its unprotected IV header written with a non-shortest length. */
function longIvHead(message: Uint8Array): Uint8Array {
  const sign1 = decodeSign1(message);
  const enc = decodeEncrypt(sign1.payload!);
  const iv = enc.unprotected.get(5) as Uint8Array;
  const body = encodeAsGiven(
    new Tag(
      [
        enc.protectedBytes,
        new Map([[5, iv]]),
        enc.ciphertext,
        enc.recipients.map((r) => [r.protectedBytes, r.unprotected, r.ciphertext]),
      ],
      96,
    ),
  );
  // 4C (12-byte bstr) → 58 0C: the same item, not shortest
  const at = body.indexOf(0x4c, 4);
  const patched = Uint8Array.of(...body.subarray(0, at), 0x58, 0x0c, ...body.subarray(at + 1));
  const dev = pki.devices.get('dev-1')!;
  return makeSign1(crypto, crypto.p256Import(dev.privateScalar), {
    protected: sign1.protected,
    payload: patched,
  });
}

test('the key message fast reader opens and refuses exactly as the general decoder', () => {
  const random = rng(SEED);
  const int = (n: number) => Math.floor(random() * n);
  let fastTaken = 0;
  let accepted = 0;
  const reasons = new Set<string>();
  const variants = [reordered(messages[0]!), longIvHead(messages[1]!)];
  for (const v of variants) assert.equal(readCanonicalKeyMessage(v, 65536), undefined, 'non-canonical: general path');
  for (const m of messages)
    assert.ok(readCanonicalKeyMessage(m, 65536) !== undefined, 'made by makeKeyMessage: fast path');
  for (let i = 0; i < RUNS; i++) {
    let bytes: Uint8Array;
    if (i % 50 === 0) bytes = variants[(i / 50) % variants.length]!;
    else {
      bytes = messages[int(messages.length)]!.slice();
      for (let m = int(3); m > 0; m--) {
        const at = int(bytes.length);
        const op = int(6);
        if (op === 0) bytes[at]! ^= 1 << int(8);
        else if (op === 1) bytes[at] = int(256);
        else if (op === 2) bytes = Uint8Array.of(...bytes.subarray(0, at), int(256), ...bytes.subarray(at));
        else if (op === 3) bytes = Uint8Array.of(...bytes.subarray(0, at), ...bytes.subarray(at + 1));
        else if (op === 4) bytes = bytes.slice(0, at);
        else bytes = Uint8Array.of(...bytes, int(256));
      }
    }
    const opts = random() < 0.05 ? { ...options, maxBytes: bytes.length - 1 } : options;
    if (readCanonicalKeyMessage(bytes, opts.maxBytes ?? 65536) !== undefined) fastTaken++;
    const fast = outcome(() => openKeyMessage(crypto, bytes, opts));
    const general = outcome(() => openKeyMessageGeneral(crypto, bytes, opts));
    assert.equal(fast, general, `case ${i} (seed ${SEED}): ${toHex(bytes)}`);
    if (fast.startsWith('refused')) reasons.add(fast);
    else accepted++;
  }
  assert.ok(fastTaken > RUNS / 10, `fast reader taken ${fastTaken} times`);
  assert.ok(accepted > 0, 'some messages open');
  for (const r of ['bad-cbor', 'bad-signature', 'device-mismatch', 'too-large'])
    assert.ok(reasons.has(`refused ${r}`), `no case refused with ${r} (${[...reasons].join(', ')})`);
});

test('the session COSE_Key fast reader reads only what decodeSymmetricKey reads, to the same key', () => {
  const random = rng(SEED ^ 0x55);
  const int = (n: number) => Math.floor(random() * n);
  let fast = 0;
  for (let i = 0; i < 3000; i++) {
    const kidLen = 1 + int(8);
    let bytes = encode(
      symmetricKeyMap({
        kid: Uint8Array.from({ length: kidLen }, () => 1 + int(255)),
        alg: 1,
        baseIv: Uint8Array.from({ length: 12 }, () => int(256)),
        k: Uint8Array.from({ length: 16 }, () => int(256)),
      }),
    );
    for (let m = int(3); m > 0; m--) {
      const at = int(bytes.length);
      const op = int(4);
      if (op === 0) bytes[at] = int(256);
      else if (op === 1) bytes = Uint8Array.of(...bytes.subarray(0, at), int(256), ...bytes.subarray(at));
      else if (op === 2) bytes = Uint8Array.of(...bytes.subarray(0, at), ...bytes.subarray(at + 1));
      else bytes = bytes.slice(0, at);
    }
    const read = readCanonicalSessionKey(bytes);
    if (read === undefined) continue;
    fast++;
    const general = decodeSymmetricKey(bytes);
    assert.deepEqual(
      [read.kid, read.alg, read.baseIv, read.k].map((v) => (v instanceof Uint8Array ? toHex(v) : v)),
      [general.kid, general.alg, general.baseIv, general.k].map((v) => (v instanceof Uint8Array ? toHex(v) : v)),
      toHex(bytes),
    );
  }
  assert.ok(fast > 500, `fast reader took ${fast} cases`);
});
