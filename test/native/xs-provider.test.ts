/**
 * The native provider (src/moddable/native-crypto.ts over the C of native/crypto, linked into the
 * XS test host) inside the real XS engine:
 * - every Wycheproof case of test/crypto/wycheproof-suites.ts, judged as for noble and node;
 * - the refusal tables and known answers of test/crypto/provider-checks.ts, same reasons;
 * - what the node provider made opens and verifies in XS, and what XS made verifies on Node;
 * - the device identity from the host's HUK file equals the derivation done on Node;
 * - the C bindings refuse bad arguments with TypeError/RangeError, and keys are freed by GC.
 * It runs in the sanitized host (native/build/xs-host-asan): the project's C (bindings, crypto,
 * host) under AddressSanitizer, LeakSanitizer and UBSan, so a key the destructor did not free, or
 * a buffer overrun in the bindings, fails the run.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { nodeCrypto } from '../../node/crypto.js';
import { concat, fromHex, toHex } from '../../src/bytes.js';
import { bytes } from '../crypto/provider-checks.js';
import { suites, type VectorFile } from '../crypto/wycheproof-suites.js';
import { readVectorJson } from '../vectors.js';
import { runInXs, type XsRun } from '../xs/run.js';
import type { NativeProviderInput } from './entries/provider-input.js';
import { deviceIdentityFromSecret, deviceSecret } from './reference.js';

const node = nodeCrypto();
const nodeKeyScalar = node.randomBytes(32);
nodeKeyScalar[0] = 0x42; // below n
const nodeKey = node.p256Import(nodeKeyScalar);
const MESSAGE_LENGTHS = [0, 1, 64, 1000];

let run: XsRun;
let home: string;
let input: NativeProviderInput;

function lines(kind: string): string[][] {
  return run.stdout
    .split('\n')
    .filter((line) => line.startsWith(`${kind} `) || line === kind)
    .map((line) => line.split(' ').slice(1));
}

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'cf-xs-provider-'));
  const huk = randomBytes(32);
  const hukFile = join(home, 'huk.bin');
  writeFileSync(hukFile, huk, { mode: 0o600 });
  const device = deviceIdentityFromSecret(deviceSecret(huk));
  input = {
    wycheproof: suites.map((suite) => ({
      file: suite.file,
      groups: readVectorJson<VectorFile>('wycheproof', suite.file).testGroups.filter(suite.select),
    })),
    node: {
      key: { d: toHex(nodeKeyScalar), publicKey: toHex(nodeKey.publicKey) },
      signatures: MESSAGE_LENGTHS.map((n) => {
        const message = bytes(n, n);
        return { message: toHex(message), signature: toHex(node.ecdsaP256Sign(nodeKey, message)) };
      }),
      gcm: [
        [0, 0],
        [64, 0],
        [64, 20],
        [17, 100],
        [4096, 5],
      ].map(([ptLength, aadLength]) => {
        const [key, iv, plaintext, aad] = [bytes(16, 3), bytes(12, 4), bytes(ptLength!, 5), bytes(aadLength!, 6)];
        const sealed = node.aesGcmEncrypt(key, iv, plaintext, aad);
        return { key: toHex(key), iv: toHex(iv), plaintext: toHex(plaintext), aad: toHex(aad), sealed: toHex(sealed) };
      }),
      wrap: [16, 24, 32, 64].map((length) => {
        const [kek, data] = [bytes(16, 7), bytes(length, length)];
        return { kek: toHex(kek), data: toHex(data), wrapped: toHex(node.aesKeyWrap(kek, data)) };
      }),
      hkdf: [
        [0, 0, 16],
        [32, 10, 32],
        [13, 2000, 100],
        [0, 1025, 8160],
      ].map(([saltLength, infoLength, length]) => {
        const [ikm, salt, info] = [bytes(32, 9), bytes(saltLength!, 10), bytes(infoLength!, 11)];
        const okm = node.hkdfSha256(ikm, salt, info, length!);
        return { ikm: toHex(ikm), salt: toHex(salt), info: toHex(info), length: length!, okm: toHex(okm) };
      }),
      hmac: [0, 1, 31, 64, 65, 200, 9000].map((keyLength) => {
        const [key, data] = [randomBytes(keyLength), randomBytes(keyLength % 97)];
        return { key: toHex(key), data: toHex(data), mac: toHex(node.hmacSha256(key, data)) };
      }),
    },
    device: { id: toHex(device.id), publicKey: toHex(device.publicKey) },
  };
  run = await runInXs('test/native/entries/provider.ts', {
    inputs: { XS_INPUT: input },
    env: { COSE_FLOW_HUK_FILE: hukFile, ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
    sanitized: true,
    timeoutMs: 120_000,
  });
  assert.doesNotMatch(run.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, run.stderr);
  assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
  assert.equal(lines('done').length, 1, `the XS run did not finish:\n${run.stdout}`);
});

after(() => rmSync(home, { recursive: true, force: true }));

test('every selected Wycheproof case passes with the native provider in XS', (t) => {
  const results = new Map(lines('wycheproof').map(([file, ...counts]) => [file!, counts.map(Number)]));
  assert.deepEqual(lines('wycheproof-failure'), []);
  for (const suite of suites) {
    const groups = input.wycheproof.find((w) => w.file === suite.file)!.groups;
    const count = (r: string) => groups.reduce((n, g) => n + g.tests.filter((c) => c.result === r).length, 0);
    assert.deepEqual(
      results.get(suite.file),
      [suite.expectedSelected, count('valid'), count('invalid'), count('acceptable')],
      `${suite.file}: run, valid accepted, invalid rejected, acceptable`,
    );
    t.diagnostic(
      `${suite.file} [native, XS]: ${results.get(suite.file)!.join(' / ')} (run / valid / invalid / acceptable)`,
    );
  }
});

test('the native provider in XS meets the cross-provider checks', () => {
  const checks = lines('check');
  const failed = checks.filter(([, status]) => status !== 'ok').map((fields) => fields.join(' '));
  assert.deepEqual(failed, []);
  const ran = Number(lines('done')[0]![0]);
  assert.equal(checks.length, ran);
  assert.ok(ran >= 19, `only ${ran} checks ran`);
});

test('a key the native provider made in XS signs what node verifies, and agrees on ECDH', () => {
  const [publicKeyHex] = lines('made-key')[0] ?? [];
  const publicKey = fromHex(publicKeyHex!);
  const signatures = lines('made-signature');
  assert.equal(signatures.length, MESSAGE_LENGTHS.length);
  for (const [messageHex, signatureHex] of signatures) {
    const message = messageHex === '-' ? new Uint8Array(0) : fromHex(messageHex!);
    const signature = fromHex(signatureHex!);
    assert.ok(node.ecdsaP256Verify(publicKey, message, signature), `${message.length}-byte message`);
    assert.equal(node.ecdsaP256Verify(publicKey, concat(message, new Uint8Array(1)), signature), false);
    assert.equal(node.ecdsaP256Verify(nodeKey.publicKey, message, signature), false);
  }
  const [sharedHex] = lines('made-shared')[0] ?? [];
  assert.equal(sharedHex, toHex(node.ecdhP256(nodeKey, publicKey)));
});
