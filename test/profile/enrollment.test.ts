import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHex, toHex } from '../../src/bytes.js';
import { decode, encode, Tag } from '../../src/cbor/index.js';
import { CoseError, type CoseReason, decodeMac0, makeMac0, verifyMac0 } from '../../src/cose/index.js';
import {
  enrollmentKey,
  makeEnrollRequest,
  makeEnrollResult,
  parseEnrollRequest,
  parseEnrollResult,
  verifyEnrollRequest,
} from '../../src/profile/index.js';
import { providers } from '../providers.js';

const rejectsWith = (reason: CoseReason, fn: () => unknown, what: string) =>
  assert.throws(fn, (e: unknown) => e instanceof CoseError && e.reason === reason, what);

const csr = fromHex('3081a0'.padEnd(200, '5'));
const requestId = fromHex('0102030405060708');
const secret = fromHex('00112233445566778899aabbccddeeff');

for (const crypto of providers) {
  test(`COSE_Mac0 HMAC 256/256 round trip and tamper [${crypto.name}]`, () => {
    const key = crypto.randomBytes(32);
    const msg = makeMac0(crypto, key, {
      protected: new Map([[1, 5]]),
      payload: fromHex('cafe'),
      externalAad: fromHex('01'),
    });
    assert.equal(toHex(verifyMac0(crypto, decodeMac0(msg), key, fromHex('01'))), 'cafe');
    rejectsWith('bad-signature', () => verifyMac0(crypto, decodeMac0(msg), key, fromHex('02')), 'other external AAD');
    rejectsWith(
      'bad-signature',
      () => verifyMac0(crypto, decodeMac0(msg), crypto.randomBytes(32), fromHex('01')),
      'other key',
    );
    const alg = makeMac0(crypto, key, { protected: new Map([[1, 6]]), payload: fromHex('cafe') });
    rejectsWith('unsupported-alg', () => verifyMac0(crypto, decodeMac0(alg), key), 'HMAC 256/64 (alg 6)');
  });

  test(`enroll request with a credential: binds the device id and the batch [${crypto.name}]`, () => {
    const key = enrollmentKey(crypto, secret, 'dev-1');
    assert.notEqual(toHex(key), toHex(enrollmentKey(crypto, secret, 'dev-2')), 'per-device keys differ');
    const bytes = makeEnrollRequest(crypto, {
      deviceId: 'dev-1',
      csr,
      requestId,
      credential: { batchId: 'batch-7', key },
    });
    const req = parseEnrollRequest(bytes);
    assert.equal(req.batchId, 'batch-7');
    assert.deepEqual(req.csr, csr);
    assert.deepEqual(req.requestId, requestId);
    verifyEnrollRequest(crypto, req, key, 'dev-1');
    rejectsWith(
      'bad-signature',
      () => verifyEnrollRequest(crypto, req, key, 'dev-2'),
      'replayed on another device topic',
    );
    rejectsWith(
      'bad-signature',
      () => verifyEnrollRequest(crypto, req, enrollmentKey(crypto, secret, 'dev-2'), 'dev-1'),
      'another device key',
    );
    const flipped = Uint8Array.from(bytes);
    flipped[20]! ^= 1;
    assert.throws(() => verifyEnrollRequest(crypto, parseEnrollRequest(flipped), key, 'dev-1'), CoseError);
  });
}

test('enroll request without a credential (allow-list) and malformed requests', () => {
  const crypto = providers[0]!;
  const req = parseEnrollRequest(makeEnrollRequest(crypto, { deviceId: 'dev-1', csr, requestId }));
  assert.equal(req.batchId, undefined);
  rejectsWith('missing-header', () => verifyEnrollRequest(crypto, req, secret, 'dev-1'), 'no credential');
  assert.throws(() => makeEnrollRequest(crypto, { deviceId: 'dev-1', csr, requestId: new Uint8Array(4) }), RangeError);
  rejectsWith('bad-cbor', () => parseEnrollRequest(fromHex('ff')), 'garbage');
  rejectsWith('bad-structure', () => parseEnrollRequest(encode([1, 2])), 'not a map');
  rejectsWith('bad-structure', () => parseEnrollRequest(encode(new Map([[1, csr]]))), 'no request id');
  rejectsWith('too-large', () => parseEnrollRequest(new Uint8Array(20000)), 'too large');
  const mac = decode(
    makeEnrollRequest(crypto, { deviceId: 'd', csr, requestId, credential: { batchId: 'b', key: secret } }),
    {
      allowTags: [17],
    },
  ) as Tag;
  const fields = mac.value as unknown[];
  fields[0] = encode(new Map<number, unknown>([[1, 5]]));
  rejectsWith('missing-header', () => parseEnrollRequest(encode(new Tag(fields, 17))), 'no batch id');
});

test('enroll results round trip; issued results must carry every certificate', () => {
  const issued = {
    status: 'issued' as const,
    requestId,
    deviceCertificate: fromHex('3001'),
    caCertificate: fromHex('3002'),
    cloudCertificates: [fromHex('3003'), fromHex('3004')],
  };
  assert.deepEqual(parseEnrollResult(makeEnrollResult(issued)), issued);
  const refused = { status: 'refused' as const, requestId, reason: 'key-conflict: dev-1 is enrolled with another key' };
  assert.deepEqual(parseEnrollResult(makeEnrollResult(refused)), refused);
  rejectsWith(
    'bad-structure',
    () => parseEnrollResult(makeEnrollResult({ status: 'issued', requestId })),
    'issued without certs',
  );
  rejectsWith('bad-structure', () => parseEnrollResult(encode(new Map([[1, 'maybe']]))), 'unknown status');
  rejectsWith('bad-cbor', () => parseEnrollResult(fromHex('a1')), 'truncated');
});
