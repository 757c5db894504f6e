/**
 * Differential test of the data message fast path (src/profile/data-message-fast.ts): random,
 * mutated and hand-varied data messages go through the receiver as it runs (`parseDataMessage`,
 * fast path first, then `openData`) and through the general path alone (`parseDataMessageGeneral`,
 * the kid check, `decryptEncrypt0` of src/cose). Both must accept the same messages with the same
 * kid, seq and payload, and refuse the same ones with the same reason. Seeded (FAST_PATH_SEED,
 * FAST_PATH_RUNS to change), a few seconds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeCrypto } from '../../node/crypto.js';
import { equal, toHex } from '../../src/bytes.js';
import { encode, Tag } from '../../src/cbor/index.js';
import { CoseError, decryptEncrypt0, makeEncrypt0, nonceFromPartialIv } from '../../src/cose/index.js';
import { readCanonicalDataMessage } from '../../src/profile/data-message-fast.js';
import {
  encodeKid,
  encodePartialIv,
  newSessionKey,
  openData,
  parseDataMessage,
  parseDataMessageGeneral,
  type SessionKey,
  sealData,
} from '../../src/profile/index.js';

const crypto = nodeCrypto();
const SEED = Number(process.env.FAST_PATH_SEED ?? 0x5eed13);
const RUNS = Number(process.env.FAST_PATH_RUNS ?? 6000);

/** xorshift32: a small seeded generator. */
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

type Result = { ok: true; kid: string; seq: number; payload: string } | { ok: false; reason: string };

function run(fn: () => { kid: Uint8Array; seq: number; payload: Uint8Array }): Result {
  try {
    const r = fn();
    return { ok: true, kid: toHex(r.kid), seq: r.seq, payload: toHex(r.payload) };
  } catch (e) {
    if (e instanceof CoseError) return { ok: false, reason: e.reason };
    throw e;
  }
}

function viaReceiver(bytes: Uint8Array, session: SessionKey, maxBytes: number): Result {
  return run(() => {
    const parsed = parseDataMessage(bytes, maxBytes);
    return { kid: parsed.kid, seq: parsed.seq, payload: openData(crypto, parsed, session) };
  });
}

function viaGeneral(bytes: Uint8Array, session: SessionKey, maxBytes: number): Result {
  return run(() => {
    const parsed = parseDataMessageGeneral(bytes, maxBytes);
    if (!equal(parsed.kid, session.kid)) throw new CoseError('kid-mismatch', 'the message kid is not this session');
    const payload = decryptEncrypt0(crypto, parsed.message, session.key, { baseIv: session.baseIv });
    return { kid: parsed.kid, seq: parsed.seq, payload };
  });
}

/** A data message with any protected map / unprotected map, sealed under `session` (as-given order). */
function craft(
  session: SessionKey,
  seq: number,
  payload: Uint8Array,
  protectedEntries: [number, unknown][],
  unprotected: Map<number, unknown> = new Map(),
): Uint8Array {
  return makeEncrypt0(crypto, {
    protected: new Map(protectedEntries),
    unprotected,
    plaintext: payload,
    key: session.key,
    nonce: nonceFromPartialIv(session.baseIv, encodePartialIv(seq)),
    mapOrder: 'as-given',
  });
}

test('the fast path accepts and refuses exactly as the general path (random and mutated messages)', () => {
  const random = rng(SEED);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)]!;
  const bytesOf = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  const sessions = [1, 2, 255, 256, 70000, 2 ** 40 + 3].map((k) => newSessionKey(crypto, k));
  const seqs = () => pick([0, 1, 23, 24, 255, 256, 65535, 65536, 0xffffff, 0x1000000, 0xffffffff, int(2 ** 32)]);
  const counts = { fast: 0, general: 0, accepted: 0, refused: new Map<string, number>() };

  for (let i = 0; i < RUNS; i++) {
    const session = pick(sessions);
    const seq = seqs();
    const payload = bytesOf(pick([0, 1, 7, 30, 200, 239, 240, 300, 1000]));
    let bytes: Uint8Array;
    const kind = int(10);
    if (kind === 0) bytes = bytesOf(int(60));
    else if (kind === 1) {
      // hand-varied shapes: other orders, extra or missing labels, odd values, non-empty unprotected
      const kid = session.kid;
      const piv = encodePartialIv(seq);
      const variants: (() => Uint8Array)[] = [
        () =>
          craft(session, seq, payload, [
            [4, kid],
            [1, 1],
            [6, piv],
          ]),
        () =>
          craft(
            session,
            seq,
            payload,
            [
              [1, 1],
              [4, kid],
              [6, piv],
            ],
            new Map([[99, 1]]),
          ),
        () =>
          craft(
            session,
            seq,
            payload,
            [
              [1, 1],
              [4, kid],
              [6, piv],
            ],
            new Map([[5, new Uint8Array(12)]]),
          ),
        () =>
          craft(
            session,
            seq,
            payload,
            [
              [1, 1],
              [4, kid],
              [6, piv],
            ],
            new Map([[2, [4]]]),
          ),
        () =>
          craft(session, seq, payload, [
            [1, 1],
            [4, kid],
            [6, piv],
            [2, [4]],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 1],
            [4, kid],
            [6, piv],
            [3, 0],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 1],
            [4, kid],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 3],
            [4, kid],
            [6, piv],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 'A128GCM'],
            [4, kid],
            [6, piv],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 1],
            [4, Uint8Array.of(0, ...kid)],
            [6, piv],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 1],
            [4, kid],
            [6, Uint8Array.of(0, ...piv)],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 1],
            [4, 'kid'],
            [6, piv],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 1],
            [4, kid],
            [6, 5],
          ]),
        () =>
          craft(session, seq, payload, [
            [1, 1],
            [4, encodeKid(2 ** 40)],
            [6, piv],
          ]),
        () => encode(new Tag([encode(new Map([[1, 1]])), new Map(), payload], 16)),
        () => encode(new Tag([new Uint8Array(0), new Map(), payload], 16)),
        () => encode(new Tag([1, new Map(), payload], 16)),
      ];
      bytes = pick(variants)();
    } else {
      bytes = sealData(crypto, session, seq, payload);
      // 0–3 mutations, mostly in the headers (the first ~24 bytes)
      for (let m = int(4); m > 0; m--) {
        const at = random() < 0.7 ? int(Math.min(bytes.length, 24)) : int(bytes.length);
        const op = int(6);
        if (op === 0) bytes[at]! ^= 1 << int(8);
        else if (op === 1) bytes[at] = int(256);
        else if (op === 2) bytes = Uint8Array.of(...bytes.subarray(0, at), int(256), ...bytes.subarray(at));
        else if (op === 3) bytes = Uint8Array.of(...bytes.subarray(0, at), ...bytes.subarray(at + 1));
        else if (op === 4) bytes = bytes.slice(0, at);
        else bytes = Uint8Array.of(...bytes, int(256));
      }
    }
    // sometimes the wrong session (kid-mismatch, decrypt-failed) or a tight size limit (too-large)
    const opener = random() < 0.1 ? pick(sessions) : session;
    const maxBytes = random() < 0.05 ? Math.max(0, bytes.length - int(3)) : 65536;
    if (readCanonicalDataMessage(bytes, maxBytes) === undefined) counts.general++;
    else counts.fast++;
    const fast = viaReceiver(bytes, opener, maxBytes);
    const general = viaGeneral(bytes, opener, maxBytes);
    assert.deepEqual(fast, general, `case ${i} (seed ${SEED}): ${toHex(bytes)}`);
    if (fast.ok) counts.accepted++;
    else counts.refused.set(fast.reason, (counts.refused.get(fast.reason) ?? 0) + 1);
  }
  // The cases must reach both paths and a spread of refusals.
  assert.ok(counts.fast > RUNS / 5, `fast path taken ${counts.fast} times`);
  assert.ok(counts.general > RUNS / 5, `general path taken ${counts.general} times`);
  assert.ok(counts.accepted > RUNS / 10, `accepted ${counts.accepted}`);
  for (const reason of [
    'bad-cbor',
    'bad-tag',
    'bad-structure',
    'decrypt-failed',
    'kid-mismatch',
    'too-large',
    'unknown-header',
    'missing-header',
    'unsupported-alg',
    'crit-not-supported',
    'bad-kid',
    'bad-partial-iv',
  ]) {
    assert.ok(counts.refused.has(reason), `no case refused with ${reason}`);
  }
});

test('the fast path reads canonical messages as views, never copies', () => {
  const session = newSessionKey(crypto, 300);
  for (const seq of [0, 1, 255, 256, 65536, 0xffffffff]) {
    for (const size of [0, 8, 239, 240, 65519, 65520]) {
      const bytes = sealData(crypto, session, seq, new Uint8Array(size).fill(7));
      const parts = readCanonicalDataMessage(bytes, 1 << 20);
      assert.ok(parts !== undefined, `seq ${seq}, payload ${size} bytes takes the fast path`);
      assert.equal(parts.seq, seq);
      assert.deepEqual(parts.kid, session.kid);
      assert.equal(parts.ciphertext.buffer, bytes.buffer);
      assert.equal(parts.ciphertext.length, size + 16);
      assert.equal(bytes[parts.protectedAt - 1], 0x40 + parts.protectedLength);
      const parsed = parseDataMessage(bytes, 1 << 20);
      assert.deepEqual(openData(crypto, parsed, session), new Uint8Array(size).fill(7));
      // the lazily built COSE_Encrypt0 is the general decoder's
      const general = parseDataMessageGeneral(bytes, 1 << 20).message;
      const hex = (v: unknown) => (v instanceof Uint8Array ? toHex(v) : v);
      assert.equal(toHex(parsed.message.protectedBytes), toHex(general.protectedBytes));
      assert.deepEqual(
        [...parsed.message.protected].map(([k, v]) => [k, hex(v)]),
        [...general.protected].map(([k, v]) => [k, hex(v)]),
      );
      assert.equal(parsed.message.unprotected.size, general.unprotected.size);
      assert.equal(toHex(parsed.message.ciphertext), toHex(general.ciphertext));
    }
  }
});
