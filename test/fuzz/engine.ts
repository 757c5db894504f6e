/**
 * The input generator of the fuzzer (test/fuzz/run.ts): a seeded PRNG and four ways to make an
 * input from a target's valid messages (its seeds) and everyone else's (the splice pool):
 *
 * - `random`: random bytes (0–300), or a random CBOR item under a COSE tag;
 * - `mutate`: 1–4 byte-level edits of a valid message — bit flips, interesting bytes, inserts,
 *   deletes, duplicated ranges, truncation, splices with another valid message;
 * - `structure`: one field of a valid message changed, read as CBOR down into embedded byte
 *   strings that are CBOR themselves (protected headers, the key message's COSE_Encrypt, the
 *   control payload): an integer (alg, seq, content type, a label) to a neighbour or a boundary,
 *   a byte string (kid, Partial IV, IV, tag, signature, ciphertext) shortened, lengthened,
 *   flipped or replaced, a map entry added, removed or re-labelled, an array element dropped or
 *   doubled, a tag number changed or the tag removed; then encoded again (as given, no sorting);
 * - `valid`: a valid message unchanged (a duplicate, for stateful receivers).
 *
 * Everything is a function of the seed: a finding is replayed with `--seed S --target NAME`.
 */
import { checkWellFormed, decode, encodeAsGiven, Tag } from '../../src/cbor/index.js';

/** mulberry32: small, fast, seeded. */
export class Rng {
  #a: number;
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

export type Strategy = 'random' | 'mutate' | 'structure' | 'valid';
export const STRATEGIES: readonly Strategy[] = ['random', 'mutate', 'structure', 'valid'];

/** Bytes that mean something in CBOR heads (lengths, types, break) or at boundaries. */
const INTERESTING_BYTES = [
  0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x37, 0x38, 0x40, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5f,
  0x60, 0x7f, 0x80, 0x83, 0x84, 0x9f, 0xa0, 0xa1, 0xbf, 0xc0, 0xd0, 0xd1, 0xd2, 0xd8, 0xf4, 0xf5, 0xf6, 0xf7, 0xf9,
  0xfa, 0xfb, 0xff,
];
/** Integers that mean something in cose-flow/1 and COSE (algs, labels, tags, limits). */
const INTERESTING_INTS = [
  0,
  1,
  -1,
  2,
  3,
  4,
  5,
  6,
  -7,
  -8,
  -25,
  -29,
  -3,
  -35,
  23,
  24,
  33,
  60,
  96,
  255,
  256,
  65535,
  65536,
  0xffffffff,
  2 ** 32,
  2 ** 53 - 1,
  -(2 ** 53) + 1,
];
const TAGS = [16, 17, 18, 96, 97, 98, 61, 0, 24, 55799, 1];
const LENGTHS = [0, 1, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 24, 31, 32, 33, 63, 64, 65, 66];

/** Byte-level mutation: 1–4 edits of `input`, with `others` (valid messages) to splice from. */
export function mutateBytes(rng: Rng, input: Uint8Array, others: readonly Uint8Array[]): Uint8Array {
  let b = Array.from(input);
  const edits = 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const at = b.length === 0 ? 0 : rng.int(b.length);
    switch (rng.int(9)) {
      case 0:
      case 1:
        if (b.length > 0) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 2:
        if (b.length > 0) b[at] = rng.pick(INTERESTING_BYTES);
        break;
      case 3:
        if (b.length > 0) b[at] = rng.int(256);
        break;
      case 4:
        b.splice(at, 0, ...rng.bytes(1 + rng.int(8)));
        break;
      case 5:
        b.splice(at, 1 + rng.int(rng.chance(0.8) ? 8 : 64));
        break;
      case 6:
        b = b.slice(0, at);
        break;
      case 7: {
        const n = 1 + rng.int(16);
        b.splice(rng.int(b.length + 1), 0, ...b.slice(at, at + n));
        break;
      }
      default: {
        // Splice: our prefix, another valid message's suffix (or a slice of it inserted).
        const other = others.length > 0 ? rng.pick(others) : input;
        const from = rng.int(other.length + 1);
        if (rng.chance(0.5)) b = [...b.slice(0, at), ...other.subarray(from)];
        else b.splice(at, 0, ...other.subarray(from, from + 1 + rng.int(32)));
      }
    }
  }
  return Uint8Array.from(b);
}

/** A random CBOR value (small), for random structures. */
export function randomCbor(rng: Rng, depth = 0): unknown {
  const k = rng.int(depth > 3 ? 5 : 8);
  switch (k) {
    case 0:
      return rng.pick(INTERESTING_INTS);
    case 1:
      return rng.bytes(rng.pick(LENGTHS));
    case 2:
      return rng.pick(['', 'rekey', 'cloud-certificate', 'issued', 'refused', 'dev-1', 'x'.repeat(70)]);
    case 3:
      return rng.pick([null, true, false, undefined, 1.5]);
    case 4:
      return rng.int(2 ** 31) - 2 ** 30;
    case 5: {
      const n = rng.int(5);
      return Array.from({ length: n }, () => randomCbor(rng, depth + 1));
    }
    case 6: {
      const m = new Map<unknown, unknown>();
      for (let i = rng.int(5); i > 0; i--) m.set(rng.pick(INTERESTING_INTS), randomCbor(rng, depth + 1));
      return m;
    }
    default:
      return new Tag(randomCbor(rng, depth + 1), rng.pick(TAGS));
  }
}

/** Random bytes, or a random CBOR structure (often an array under a COSE tag with bstr headers). */
export function randomInput(rng: Rng): Uint8Array {
  if (rng.chance(0.5)) return rng.bytes(rng.int(300));
  const fields = Array.from({ length: 1 + rng.int(5) }, (_, i) =>
    i === 0 && rng.chance(0.7) ? safeEncode(randomCbor(rng, 2)) : randomCbor(rng, 1),
  );
  return safeEncode(rng.chance(0.8) ? new Tag(fields, rng.pick(TAGS)) : fields) ?? rng.bytes(rng.int(64));
}

function safeEncode(value: unknown): Uint8Array {
  try {
    return encodeAsGiven(value);
  } catch {
    return new Uint8Array(0);
  }
}

/** A byte string that holds one CBOR container is edited as that container (protected headers, payloads). */
class Embedded {
  constructor(readonly value: unknown) {}
}

function lift(value: unknown, depth: number): unknown {
  if (depth > 12) return value;
  if (
    value instanceof Uint8Array &&
    value.length > 0 &&
    (value[0]! >= 0x80 || value[0] === 0xd1 || value[0] === 0xd2)
  ) {
    try {
      checkWellFormed(value, { allowTags: 'any', maxDepth: 32 });
      const inner = decode(value, { allowTags: 'any', maxDepth: 32 });
      if (inner instanceof Map || Array.isArray(inner) || inner instanceof Tag)
        return new Embedded(lift(inner, depth + 1));
    } catch {
      // not CBOR: a plain byte string (a certificate, a ciphertext, a signature)
    }
    return value;
  }
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (Array.isArray(value)) return value.map((v) => lift(v, depth + 1));
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, lift(v, depth + 1)]));
  if (value instanceof Tag) return new Tag(lift(value.value, depth + 1), value.tag);
  return value;
}

function lower(value: unknown): unknown {
  if (value instanceof Embedded) return encodeAsGiven(lower(value.value));
  if (Array.isArray(value)) return value.map(lower);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, lower(v)]));
  if (value instanceof Tag) return new Tag(lower(value.value), value.tag);
  return value;
}

function countNodes(value: unknown): number {
  if (value instanceof Embedded) return 1 + countNodes(value.value);
  if (Array.isArray(value)) return 1 + value.reduce((n: number, v) => n + countNodes(v), 0);
  if (value instanceof Map) return 1 + [...value.values()].reduce((n: number, v) => n + countNodes(v), 0);
  if (value instanceof Tag) return 1 + countNodes(value.value);
  return 1;
}

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** r ‖ (n − s): the other signature ECDSA accepts for the same message (64-byte r ‖ s). */
function ecdsaTwin(signature: Uint8Array): Uint8Array {
  let s = 0n;
  for (const byte of signature.subarray(32)) s = (s << 8n) | BigInt(byte);
  let t = (P256_N - s) % P256_N;
  const out = Uint8Array.from(signature);
  for (let i = 63; i >= 32; i--) {
    out[i] = Number(t & 0xffn);
    t >>= 8n;
  }
  return out;
}

/** The value that replaces one node. */
function changeNode(rng: Rng, value: unknown): unknown {
  if (rng.chance(0.08)) return randomCbor(rng, 3); // any type at all
  if (typeof value === 'number' || typeof value === 'bigint') {
    const n = Number(value);
    return rng.pick([n + 1, n - 1, -n, rng.pick(INTERESTING_INTS), rng.pick(INTERESTING_INTS), String(n)]);
  }
  if (value instanceof Uint8Array) {
    if (value.length === 64 && rng.chance(0.2)) return ecdsaTwin(value);
    const b = Array.from(value);
    switch (rng.int(7)) {
      case 0:
        return Uint8Array.from(b.slice(0, rng.int(b.length + 1)));
      case 1:
        return Uint8Array.from([...b, ...rng.bytes(1 + rng.int(4))]);
      case 2: {
        const c = Uint8Array.from(b);
        if (c.length > 0) c[rng.int(c.length)]! ^= 1 << rng.int(8);
        return c;
      }
      case 3:
        return rng.bytes(rng.pick(LENGTHS));
      case 4:
        return Uint8Array.from([0, ...b]); // a non-minimal kid / Partial IV
      case 5:
        return new Uint8Array(b.length); // zeros of the same length (kid 0, seq 0)
      default:
        return Uint8Array.from(b).fill(0xff);
    }
  }
  if (typeof value === 'string') return rng.pick(['', `${value}x`, value.slice(1), 'dev-2', 'rekey', 'Ä']);
  if (value instanceof Embedded) {
    return rng.chance(0.5) ? new Uint8Array(0) : new Embedded(changeNode(rng, value.value));
  }
  if (Array.isArray(value)) {
    const a = [...value];
    const i = rng.int(a.length + 1);
    switch (rng.int(4)) {
      case 0:
        a.splice(i, 1);
        break;
      case 1:
        if (a.length > 0) a.splice(i, 0, a[rng.int(a.length)]);
        break;
      case 2:
        a.splice(i, 0, randomCbor(rng, 3));
        break;
      default:
        a.reverse();
    }
    return a;
  }
  if (value instanceof Map) {
    const entries = [...value];
    const i = rng.int(entries.length + 1);
    switch (rng.int(4)) {
      case 0:
        entries.splice(i, 1);
        break;
      case 1:
        entries.push([rng.pick(INTERESTING_INTS), randomCbor(rng, 3)]);
        break;
      case 2:
        if (entries.length > 0) entries[i % entries.length]![0] = rng.pick(INTERESTING_INTS);
        break;
      default:
        entries.reverse();
    }
    return new Map(entries);
  }
  if (value instanceof Tag) return rng.chance(0.3) ? value.value : new Tag(value.value, rng.pick(TAGS));
  return randomCbor(rng, 3);
}

function replaceNth(rng: Rng, value: unknown, target: { left: number }): unknown {
  if (target.left-- === 0) return changeNode(rng, value);
  if (value instanceof Embedded) return new Embedded(replaceNth(rng, value.value, target));
  if (Array.isArray(value)) return value.map((v) => (target.left < 0 ? v : replaceNth(rng, v, target)));
  if (value instanceof Map)
    return new Map([...value].map(([k, v]) => [k, target.left < 0 ? v : replaceNth(rng, v, target)]));
  if (value instanceof Tag) return new Tag(replaceNth(rng, value.value, target), value.tag);
  return value;
}

const NOT_CBOR = Symbol('not CBOR');

/** Parsed seeds, kept per seed (lifting is not free). */
const lifted = new WeakMap<Uint8Array, { tree: unknown }>();

/** One or two fields of a valid message changed (see the header); byte-level when it is not CBOR. */
export function mutateStructure(rng: Rng, input: Uint8Array, others: readonly Uint8Array[]): Uint8Array {
  let entry = lifted.get(input);
  if (entry === undefined) {
    try {
      entry = { tree: lift(decode(input, { allowTags: 'any', maxDepth: 32 }), 0) };
    } catch {
      entry = { tree: NOT_CBOR };
    }
    lifted.set(input, entry);
  }
  if (entry.tree === NOT_CBOR) return mutateBytes(rng, input, others);
  let value = entry.tree;
  for (let n = rng.chance(0.8) ? 1 : 2; n > 0; n--)
    value = replaceNth(rng, value, { left: rng.int(countNodes(value)) });
  try {
    return encodeAsGiven(lower(value));
  } catch {
    return mutateBytes(rng, input, others);
  }
}

/** The next input of a target with `seeds`, and the strategy that made it. */
export function nextInput(
  rng: Rng,
  seeds: readonly Uint8Array[],
  pool: readonly Uint8Array[],
): { input: Uint8Array; strategy: Strategy } {
  const r = rng.next();
  if (r < 0.15 || seeds.length === 0) return { input: randomInput(rng), strategy: 'random' };
  const seed = rng.pick(seeds);
  if (r < 0.55) return { input: mutateBytes(rng, seed, rng.chance(0.5) ? seeds : pool), strategy: 'mutate' };
  if (r < 0.97) return { input: mutateStructure(rng, seed, pool), strategy: 'structure' };
  return { input: seed, strategy: 'valid' };
}
