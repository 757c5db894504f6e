/** The inspector in-process: mutated and hostile input never throws and always gets a reason. */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Inspector } from '../../cli/inspect-message.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { nodeCrypto } from '../../node/crypto.js';
import { encode, Tag } from '../../src/cbor/index.js';
import { makeKeyMessage, newSessionKey, sealData } from '../../src/profile/index.js';
import { makePki } from '../fixtures/pki.js';

const crypto = nodeCrypto();
let keyMessage: Uint8Array;
let dataMessage: Uint8Array;
let inspector: () => Inspector;

before(async () => {
  const pki = await makePki({ deviceIds: ['dev-1'] });
  const dev = pki.devices.get('dev-1')!;
  const session = newSessionKey(crypto, 7);
  keyMessage = makeKeyMessage(crypto, {
    deviceId: 'dev-1',
    deviceKey: crypto.p256Import(dev.privateScalar),
    deviceCertificate: dev.der,
    cloudPublicKey: pki.cloud.publicKey,
    session,
  });
  dataMessage = sealData(crypto, session, 300, encode({ v: 1 }));
  const verifyCertificate = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
  const cloudKeys = [crypto.p256Import(pki.cloud.privateScalar)];
  inspector = () => new Inspector({ crypto, verifyCertificate, cloudKeys });
});

/** A small deterministic PRNG (xorshift32) so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function mutate(bytes: Uint8Array, random: () => number): Uint8Array {
  const out = Array.from(bytes);
  const edits = 1 + Math.floor(random() * 3);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * out.length);
    const kind = random();
    if (kind < 0.5) out[at] = out[at]! ^ (1 << Math.floor(random() * 8));
    else if (kind < 0.7) out.splice(at, 1);
    else if (kind < 0.85) out.splice(at, 0, Math.floor(random() * 256));
    else out.length = at;
  }
  return Uint8Array.from(out);
}

test('the unmodified messages are valid and open', () => {
  const i = inspector();
  const s = i.inspect('key', keyMessage);
  assert.equal(s.valid, true, s.error);
  assert.equal(s.opened, true);
  const d = i.inspect('data', dataMessage);
  assert.equal(d.valid, true, d.error);
  assert.equal(d.seq, 300);
  assert.equal(d.kidCounter, 7);
});

test('mutated messages: never a throw, always a library reason', () => {
  const random = rng(0xc05e);
  const i = inspector();
  const reasons = new Map<string, number>();
  for (let n = 0; n < 600; n++) {
    const source = n % 2 === 0 ? keyMessage : dataMessage;
    const bytes = mutate(source, random);
    const r = i.inspect(`m${n}`, bytes);
    assert.equal(typeof r.valid, 'boolean');
    if (!r.valid) {
      assert.equal(typeof r.reason, 'string');
      assert.notEqual(r.reason, 'internal-error', `${r.error} (input ${Buffer.from(bytes).toString('hex')})`);
      reasons.set(r.reason!, (reasons.get(r.reason!) ?? 0) + 1);
    }
  }
  assert.ok(reasons.size >= 4, `several kinds of refusal: ${[...reasons.keys()].join(', ')}`);
});

test('hostile nesting: deep arrays, Sign1 inside Sign1 inside …', () => {
  const i = inspector();
  const deep = new Uint8Array(5000).fill(0x81);
  const r = i.inspect('deep', deep);
  assert.equal(r.reason, 'bad-cbor');
  let nested: Uint8Array = new Uint8Array(0);
  for (let k = 0; k < 300; k++) nested = encode(new Tag([new Uint8Array(0), new Map(), nested, new Uint8Array(0)], 18));
  const s = i.inspect('nested', nested);
  assert.equal(s.type, 'session');
  assert.equal(s.valid, false);
  assert.match(s.diagnostic ?? '', /not expanded: CBOR embedded more than 8 levels deep/);
});
