/**
 * Property tests: random bytes, random CBOR structures and mutations of valid messages fed to
 * every decoder. The only acceptable failure is the typed error (CborError / CoseError); a
 * mutated data message never opens to anything but its original payload.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import fc from 'fast-check';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { equal } from '../../src/bytes.js';
import { CborError, decode, encode, Tag } from '../../src/cbor/index.js';
import { CoseError, decodeEncrypt, decodeEncrypt0, decodeSign1, decodeSymmetricKey } from '../../src/cose/index.js';
import {
  cloudKeyId,
  makeKeyMessage,
  newSessionKey,
  type OpenKeyMessage,
  openData,
  openKeyMessage,
  parseDataMessage,
  type SessionKey,
  sealData,
} from '../../src/profile/index.js';
import { makePki } from '../fixtures/pki.js';
import { providers } from '../providers.js';

const crypto = providers[0]!;
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

let keyMessage: Uint8Array;
let dataMessage: Uint8Array;
let payload: Uint8Array;
let session: SessionKey;
let keyOptions: OpenKeyMessage;

before(async () => {
  const pki = await makePki({ deviceIds: ['dev-1'] });
  const dev = pki.devices.get('dev-1')!;
  const cloudKey = crypto.p256Import(pki.cloud.privateScalar);
  const cloudKid = cloudKeyId(crypto, cloudKey.publicKey);
  session = newSessionKey(crypto, 1);
  keyMessage = makeKeyMessage(crypto, {
    deviceId: 'dev-1',
    deviceKey: crypto.p256Import(dev.privateScalar),
    deviceCertificate: dev.der,
    cloudPublicKey: pki.cloud.publicKey,
    session,
  });
  payload = encode(
    new Map<string, unknown>([
      ['temperature', 21.5],
      ['uptime', 1234],
    ]),
  );
  dataMessage = sealData(crypto, session, 9, payload);
  keyOptions = {
    cloudKey: (kid) => (equal(kid, cloudKid) ? cloudKey : undefined),
    verifyCertificate: deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] }),
    topicDeviceId: 'dev-1',
  };
});

/** Runs `fn` and fails the property unless it returns or throws the allowed error type. */
function onlyTyped(fn: () => unknown, allowed: (e: unknown) => boolean = (e) => e instanceof CoseError): void {
  try {
    fn();
  } catch (e) {
    if (!allowed(e)) throw new Error(`untyped failure: ${(e as Error)?.stack ?? String(e)}`);
  }
}

const decoders: [string, (b: Uint8Array) => unknown][] = [
  ['decodeSign1', (b) => decodeSign1(b)],
  ['decodeEncrypt0', (b) => decodeEncrypt0(b)],
  ['decodeEncrypt', (b) => decodeEncrypt(b)],
  ['decodeSymmetricKey', (b) => decodeSymmetricKey(b)],
  ['parseDataMessage', (b) => parseDataMessage(b)],
  ['openData', (b) => openData(crypto, parseDataMessage(b), session)],
  ['openKeyMessage', (b) => openKeyMessage(crypto, b, keyOptions)],
];

/** A mutation: flip, overwrite, insert or delete bytes, or truncate. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function apply(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = Array.from(bytes);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.kind === 'flip' && b.length > 0) b[at] = b[at]! ^ (1 << m.bit);
    else if (m.kind === 'set' && b.length > 0) b[at] = m.value;
    else if (m.kind === 'insert') b.splice(at, 0, ...m.bytes);
    else if (m.kind === 'delete') b.splice(at, m.count);
    else if (m.kind === 'truncate') b = b.slice(0, at);
  }
  return Uint8Array.from(b);
}

test('random bytes: strict CBOR decode throws only CborError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) =>
      onlyTyped(
        () => decode(bytes),
        (e) => e instanceof CborError,
      ),
    ),
    { numRuns: RUNS },
  );
});

test('random bytes: every message decoder throws only CoseError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      for (const [, fn] of decoders) onlyTyped(() => fn(bytes));
    }),
    { numRuns: RUNS },
  );
});

test('random CBOR structures under COSE tags: only CoseError', () => {
  const cborValue = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.uint8Array({ maxLength: 40 }),
      fc.string({ maxLength: 10 }),
      fc.array(tie('value'), { maxLength: 5 }),
      fc.array(fc.tuple(fc.integer({ min: -40, max: 40 }), tie('value')), { maxLength: 5 }).map((e) => new Map(e)),
    ),
  })).value;
  const protectedBucket = fc
    .array(fc.tuple(fc.integer({ min: -5, max: 40 }), cborValue), { maxLength: 5 })
    .map((e) => encode(new Map(e)));
  const message = fc.tuple(
    fc.constantFrom(16, 18, 96, 17, 98),
    fc.array(fc.oneof(cborValue, protectedBucket), { minLength: 0, maxLength: 5 }),
  );
  fc.assert(
    fc.property(message, ([tag, fields]) => {
      let bytes: Uint8Array;
      try {
        bytes = encode(new Tag(fields, tag));
      } catch {
        return; // not encodable (e.g. duplicate keys collapsed): nothing to test
      }
      for (const [, fn] of decoders) onlyTyped(() => fn(bytes));
    }),
    { numRuns: RUNS },
  );
});

test('mutated key messages: only CoseError, and never a different session', () => {
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
      const bytes = apply(keyMessage, mutations);
      try {
        const opened = openKeyMessage(crypto, bytes, keyOptions);
        assert.deepEqual(opened.session, session, 'a mutated key message opened to another session');
      } catch (e) {
        if (!(e instanceof CoseError)) throw e;
      }
    }),
    { numRuns: Math.max(200, RUNS / 4) },
  );
});

test('mutated data messages: only CoseError, and never a different payload', () => {
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
      const bytes = apply(dataMessage, mutations);
      try {
        const parsed = parseDataMessage(bytes);
        const out = openData(crypto, parsed, session);
        assert.ok(equal(out, payload), 'a mutated data message opened to another payload');
        assert.equal(parsed.seq, 9, 'a mutated data message opened under another sequence number');
      } catch (e) {
        if (!(e instanceof CoseError)) throw e;
      }
    }),
    { numRuns: RUNS },
  );
});
