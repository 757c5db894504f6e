/**
 * PKCS#10 requests made on the device (src/pki/csr.ts), checked by OpenSSL and by @peculiar/x509,
 * and requests made by OpenSSL read by the device code. OpenSSL is required: without it these
 * tests fail, they are not skipped.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { x509 } from '../../cloud/pki/x509.js';
import { equal, toHex, utf8Encode } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { certificateVerifier } from '../../src/pki/certificate.js';
import { makeCsr, parseCsr } from '../../src/pki/csr.js';
import { bitString, contextConstructed, integer, oid, sequence, setOf, utf8String } from '../../src/pki/der.js';
import { ecdsaSha256AlgorithmIdentifier, ecdsaSignatureToDer } from '../../src/pki/ecdsa-signature.js';
import { commonNameSubject } from '../../src/pki/name.js';
import { OID } from '../../src/pki/oids.js';
import { p256PublicKeyInfo } from '../../src/pki/spki.js';
import { makePki, type Pki } from '../fixtures/pki.js';
import { providers } from '../providers.js';

let dir: string;
let pki: Pki;

before(async () => {
  const probe = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      '!!! openssl is not on PATH: the device CSR interoperability tests need it (apt-get install openssl) !!!',
    );
  }
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-device-csr-'));
  pki = await makePki({ deviceIds: [] });
});
after(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function pemFile(der: Uint8Array, label = 'CERTIFICATE REQUEST'): string {
  const path = join(dir, `file-${files++}.pem`);
  writeFileSync(path, x509.PemConverter.encode(der, label));
  return path;
}

function openssl(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** openssl's colon-separated hex dump of the public key, as one lowercase hex string. */
function opensslPub(text: string): string {
  const m = /pub:\s*\n((?:\s+[0-9a-f:]+\n)+)/.exec(text);
  assert.ok(m, `no public key in:\n${text}`);
  return m[1]!.replace(/[\s:]/g, '');
}

function refusesCsr(crypto: CryptoProvider, der: Uint8Array, message: RegExp): void {
  assert.throws(
    () => parseCsr(crypto, der),
    (e: unknown) => {
      assert.ok(e instanceof CoseError, `expected a CoseError, got ${String(e)}`);
      assert.equal(e.reason, 'bad-certificate');
      assert.match(e.message, message);
      return true;
    },
  );
}

/** A CSR built directly with the DER writer (to make requests makeCsr refuses to make). */
function handMadeCsr(crypto: CryptoProvider, subject: Uint8Array, spki?: Uint8Array): Uint8Array {
  const key = crypto.p256Generate();
  const info = sequence(
    integer(Uint8Array.of(0)),
    subject,
    spki ?? p256PublicKeyInfo(key.publicKey),
    contextConstructed(0),
  );
  const signature = ecdsaSignatureToDer(crypto.ecdsaP256Sign(key, info));
  return sequence(info, ecdsaSha256AlgorithmIdentifier(), bitString(signature));
}

for (const crypto of providers) {
  describe(`makeCsr (${crypto.name})`, () => {
    test('openssl verifies the request and shows the CN and the P-256 key', () => {
      for (const deviceId of ['dev-1', 'A.b_c-9', 'x'.repeat(64)]) {
        const key = crypto.p256Generate();
        const csr = makeCsr(crypto, key, deviceId);
        const file = pemFile(csr);
        const verified = openssl(['req', '-verify', '-noout', '-in', file]);
        assert.equal(verified.status, 0, verified.out);
        assert.match(verified.out, /verify OK/);
        const text = openssl(['req', '-text', '-noout', '-in', file]);
        assert.equal(text.status, 0, text.out);
        assert.match(text.out, new RegExp(`Subject: CN ?= ?${deviceId.replace(/\./g, '\\.')}\\n`));
        assert.match(text.out, /Public Key Algorithm: id-ecPublicKey/);
        assert.match(text.out, /ASN1 OID: prime256v1/);
        assert.match(text.out, /NIST CURVE: P-256/);
        assert.match(text.out, /Signature Algorithm: ecdsa-with-SHA256/);
        assert.equal(opensslPub(text.out), toHex(key.publicKey));
      }
    });

    test('@peculiar/x509 verifies the request; subject and key match', async () => {
      const key = crypto.p256Generate();
      const csr = new x509.Pkcs10CertificateRequest(makeCsr(crypto, key, 'dev-42'));
      assert.equal(await csr.verify(), true);
      assert.equal(csr.subject, 'CN=dev-42');
      assert.deepEqual(csr.subjectName.getField('CN'), ['dev-42']);
      assert.deepEqual(csr.signatureAlgorithm, { name: 'ECDSA', hash: { name: 'SHA-256' } });
      assert.equal(csr.attributes.length, 0);
      const publicKey = await csr.publicKey.export({ name: 'ECDSA', namedCurve: 'P-256' }, ['verify']);
      const raw = new Uint8Array(await webcrypto.subtle.exportKey('raw', publicKey as webcrypto.CryptoKey));
      assert.ok(equal(raw, key.publicKey));
    });

    test('parseCsr reads it back and checks the self-signature', () => {
      const key = crypto.p256Generate();
      const csr = makeCsr(crypto, key, 'dev-7');
      const parsed = parseCsr(crypto, csr);
      assert.equal(parsed.deviceId, 'dev-7');
      assert.ok(equal(parsed.publicKey, key.publicKey));
      assert.equal(parsed.signatureValid, true);
      assert.equal(csr[1], 0x81); // a one-byte long-form length: the info starts at offset 3
      assert.ok(equal(parsed.info, csr.subarray(3, 3 + parsed.info.length)));
      // every provider checks every provider's request
      for (const other of providers) assert.equal(parseCsr(other, csr).signatureValid, true);
    });

    test('a tampered byte fails openssl verify and signatureValid', async () => {
      const key = crypto.p256Generate();
      const csr = makeCsr(crypto, key, 'dev-1');
      const cn = utf8Encode('dev-1');
      const at = csr.findIndex((_, i) => equal(csr.subarray(i, i + cn.length), cn)) + cn.length - 1;
      const otherId = csr.slice();
      otherId[at] = '2'.charCodeAt(0); // the request now claims dev-2
      const lastSigByte = csr.slice();
      lastSigByte[csr.length - 1] = lastSigByte[csr.length - 1]! ^ 0x01;
      const pointByte = csr.slice();
      const point = csr.findIndex((_, i) => equal(csr.subarray(i, i + 65), key.publicKey));
      pointByte[point + 40] = pointByte[point + 40]! ^ 0x80;
      for (const tampered of [otherId, lastSigByte, pointByte]) {
        // OpenSSL 3.0 exits 0 even when the self-signature fails, so its message is what tells;
        // with the point changed it cannot even load the key (not on the curve)
        const verified = openssl(['req', '-verify', '-noout', '-in', pemFile(tampered)]);
        assert.match(verified.out, tampered === pointByte ? /decode error|verify failure/ : /verify failure/);
        assert.doesNotMatch(verified.out, /verify OK/);
        assert.equal(parseCsr(crypto, tampered).signatureValid, false);
        // @peculiar/x509 returns false, or throws when the key cannot be imported
        const peculiar = await new x509.Pkcs10CertificateRequest(tampered).verify().catch(() => 'threw');
        assert.equal(peculiar, tampered === pointByte ? 'threw' : false);
      }
      assert.equal(parseCsr(crypto, otherId).deviceId, 'dev-2');
    });

    test('invalid device ids are refused', () => {
      const key = crypto.p256Generate();
      for (const id of ['', '.', '..', 'dev/1', 'dev 1', 'dev+1', 'dev#', 'dév', 'x'.repeat(65), 'a\u0000']) {
        assert.throws(() => makeCsr(crypto, key, id), RangeError, JSON.stringify(id));
      }
      assert.throws(() => makeCsr(crypto, key, 7 as unknown as string), TypeError);
      assert.throws(() => makeCsr(crypto, undefined as unknown as typeof key, 'dev-1'), TypeError);
    });
  });
}

describe('parseCsr refuses (bad-certificate)', () => {
  const crypto = providers[0]!;

  test('garbage, empty, truncated, trailing bytes', () => {
    const csr = makeCsr(crypto, crypto.p256Generate(), 'dev-1');
    refusesCsr(crypto, new Uint8Array(0), /empty/);
    refusesCsr(crypto, crypto.randomBytes(200), /certification request: /);
    refusesCsr(crypto, csr.subarray(0, csr.length - 1), /truncated/);
    const trailing = new Uint8Array(csr.length + 1);
    trailing.set(csr);
    refusesCsr(crypto, trailing, /1 byte\(s\) after the DER value/);
    refusesCsr(crypto, 'csr' as unknown as Uint8Array, /not a byte string/);
  });

  test('a subject CN that is not a device id, no CN, two CNs', () => {
    refusesCsr(crypto, handMadeCsr(crypto, commonNameSubject('dev/1')), /CN "dev\/1" is not a valid device id/);
    refusesCsr(crypto, handMadeCsr(crypto, sequence()), /0 common names/);
    const rdn = (cn: string) => setOf(sequence(oid(OID.commonName), utf8String(cn)));
    const name = sequence(rdn('dev-a'), rdn('dev-b'));
    refusesCsr(crypto, handMadeCsr(crypto, name), /2 common names/);
  });

  test('a request made by openssl is read; a P-384 one is refused', () => {
    const run = (args: string) => execFileSync('openssl', args.split(' '), { cwd: dir, stdio: 'pipe' });
    run('ecparam -name prime256v1 -genkey -noout -out p256.key');
    run('req -new -key p256.key -subj /CN=ossl-dev.1 -outform DER -out p256.csr');
    const parsed = parseCsr(crypto, new Uint8Array(readFileSync(join(dir, 'p256.csr'))));
    assert.equal(parsed.deviceId, 'ossl-dev.1');
    assert.equal(parsed.signatureValid, true);
    const pub = execFileSync('openssl', ['ec', '-in', 'p256.key', '-pubout', '-outform', 'DER'], {
      cwd: dir,
      stdio: 'pipe',
    });
    assert.ok(equal(p256PublicKeyInfo(parsed.publicKey), new Uint8Array(pub)));
    run('ecparam -name secp384r1 -genkey -noout -out p384.key');
    run('req -new -key p384.key -subj /CN=ossl-dev.2 -sha256 -outform DER -out p384.csr');
    refusesCsr(crypto, new Uint8Array(readFileSync(join(dir, 'p384.csr'))), /subject key is EC P-384, not EC P-256/);
  });
});

describe('enrollment round trip', () => {
  test('openssl issues a certificate for a device CSR; device and host verifiers accept it', () => {
    for (const crypto of providers) {
      const key = crypto.p256Generate();
      const csr = pemFile(makeCsr(crypto, key, `enrolled-${crypto.name}`));
      const caPem = join(dir, 'enroll-ca.pem');
      const caKey = join(dir, 'enroll-ca.key');
      const ext = join(dir, 'enroll.ext');
      const out = join(dir, `enrolled-${crypto.name}.pem`);
      writeFileSync(caPem, pki.caPem);
      writeFileSync(caKey, pki.ca.keyPem);
      writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n');
      const issued = openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        caPem,
        '-CAkey',
        caKey,
        '-set_serial',
        '0x1234',
        '-sha256',
        '-days',
        '30',
        '-extfile',
        ext,
        '-out',
        out,
      ]);
      assert.equal(issued.status, 0, issued.out);
      const der = x509.PemConverter.decodeFirst(readFileSync(out, 'utf8'));
      const cert = new Uint8Array(der);
      const device = certificateVerifier({ crypto, trustAnchors: [pki.caDer] })(cert);
      const host = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] })(cert);
      assert.equal(device.deviceId, `enrolled-${crypto.name}`);
      assert.deepEqual(device, host);
      assert.ok(equal(device.publicKey, key.publicKey));
    }
  });
});
