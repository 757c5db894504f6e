/** Device-certificate verification on the host (cloud/pki) against throwaway PKIs. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { certificateP256PublicKey, parseCertificate } from '../../cloud/pki/certificate.js';
import {
  certificatesToPem,
  loadP256PrivateKey,
  p256PrivateScalar,
  parseCertificates,
  readCertificates,
  readP256PrivateKey,
} from '../../cloud/pki/files.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { x509 } from '../../cloud/pki/x509.js';
import { equal } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import type { CryptoProvider } from '../../src/crypto/provider.js';
import { makeCa, makePki, type Pki } from '../fixtures/pki.js';
import { providers } from '../providers.js';

const crypto = providers[0]!;
const DAY = 24 * 3600_000;

function refuses(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoseError, `expected a CoseError, got ${String(e)}`);
    assert.equal(e.reason, 'bad-certificate');
    assert.match(e.message, message);
    return true;
  });
}

/** A provider that counts ECDSA verifications (to observe the cache). */
function counting(base: CryptoProvider): { crypto: CryptoProvider; verifies: () => number } {
  let n = 0;
  const wrapped = Object.assign(Object.create(base) as CryptoProvider, {
    ecdsaP256Verify: (k: Uint8Array, m: Uint8Array, s: Uint8Array) => {
      n++;
      return base.ecdsaP256Verify(k, m, s);
    },
  });
  return { crypto: wrapped, verifies: () => n };
}

let pki: Pki;
let dir: string;

before(async () => {
  pki = await makePki({ deviceIds: ['dev-1', 'dev-2'] });
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-pki-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('deviceCertificateVerifier accepts', () => {
  for (const provider of providers) {
    test(`a device certificate of the trust anchor (${provider.name})`, () => {
      const verify = deviceCertificateVerifier({ crypto: provider, trustAnchors: [pki.caDer] });
      const dev = pki.devices.get('dev-1')!;
      const result = verify(dev.der);
      assert.equal(result.deviceId, 'dev-1');
      assert.equal(result.publicKey.length, 65);
      assert.ok(equal(result.publicKey, dev.publicKey));
      assert.equal(verify(pki.devices.get('dev-2')!.der).deviceId, 'dev-2');
    });
  }

  test('a certificate of the second of two trust anchors', async () => {
    const other = await makePki({ caName: 'second CA', deviceIds: ['dev-9'] });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer, other.caDer] });
    assert.equal(verify(other.devices.get('dev-9')!.der).deviceId, 'dev-9');
    assert.equal(verify(pki.devices.get('dev-1')!.der).deviceId, 'dev-1');
  });

  test('a certificate without keyUsage, and one valid exactly now', async () => {
    const at = new Date(Math.floor(Date.now() / 1000) * 1000);
    const cert = await pki.issue({ commonName: 'dev-ku', keyUsage: null, notBefore: at });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer], now: () => at });
    assert.equal(verify(cert.der).deviceId, 'dev-ku');
  });

  test('certificates made by the openssl command line', () => {
    const sub = mkdtempSync(join(dir, 'openssl-made-'));
    const o = (name: string) => join(sub, name);
    const run = (command: string) => execFileSync('openssl', command.split(' '), { cwd: sub, stdio: 'pipe' });
    writeFileSync(o('dev.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n');
    run('ecparam -name prime256v1 -genkey -noout -out ca.key');
    run(
      'req -new -x509 -key ca.key -sha256 -days 30 -subj /CN=openssl-CA -out ca.pem ' +
        '-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign',
    );
    run('ecparam -name prime256v1 -genkey -noout -out dev.key');
    run('req -new -key dev.key -subj /CN=ossl-dev.7 -out dev.csr');
    run(
      'x509 -req -in dev.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 10 -extfile dev.ext -out dev.pem',
    );
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: readCertificates(o('ca.pem')) });
    const [devDer] = readCertificates(o('dev.pem'));
    const result = verify(devDer!);
    assert.equal(result.deviceId, 'ossl-dev.7');
    // the SEC1 "EC PRIVATE KEY" file of that device loads, and matches the certificate
    const key = readP256PrivateKey(crypto, o('dev.key'));
    assert.ok(equal(key.publicKey, result.publicKey));
  });
});

describe('deviceCertificateVerifier refuses (bad-certificate)', () => {
  test('a certificate from another CA (different name)', async () => {
    const other = await makePki({ caName: 'evil CA', deviceIds: ['dev-1'] });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    refuses(() => verify(other.devices.get('dev-1')!.der), /issued by CN=evil CA, which is not a trust anchor/);
  });

  test('a certificate from another CA with the same name (signature)', async () => {
    const impostor = await makePki({ caName: pki.ca.name, deviceIds: ['dev-1'] });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    refuses(() => verify(impostor.devices.get('dev-1')!.der), /signature does not verify/);
  });

  test('an expired certificate', async () => {
    const cert = await pki.issue({
      commonName: 'dev-old',
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    refuses(() => verify(cert.der), /has expired: notAfter .* is before/);
  });

  test('a certificate not yet valid', async () => {
    const cert = await pki.issue({ commonName: 'dev-new', notBefore: new Date(Date.now() + DAY) });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    refuses(() => verify(cert.der), /is not yet valid/);
  });

  test('a certificate whose issuing CA has expired', async () => {
    const oldCa = await makeCa({ notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const old = await makePki({ ca: oldCa, deviceIds: ['dev-1'] });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [oldCa.der] });
    refuses(() => verify(old.devices.get('dev-1')!.der), /issuing CA .* outside its validity period/);
  });

  test('a key usage without digitalSignature (keyCertSign only)', async () => {
    const cert = await pki.issue({ commonName: 'dev-ku', keyUsage: x509.KeyUsageFlags.keyCertSign });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    refuses(() => verify(cert.der), /keyUsage \(keyCertSign\) does not include digitalSignature/);
  });

  test('a device certificate that is a CA', async () => {
    const cert = await pki.issue({
      commonName: 'dev-ca',
      isCa: true,
      keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign,
    });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    refuses(() => verify(cert.der), /is a CA certificate/);
  });

  test('a revoked certificate, also when the verification is cached', () => {
    const dev = pki.devices.get('dev-1')!;
    const serial = parseCertificate(dev.der).serialHex;
    const revoked = new Set<string>();
    const queries: unknown[] = [];
    const verify = deviceCertificateVerifier({
      crypto,
      trustAnchors: [pki.caDer],
      isRevoked: (serialHex, query) => {
        queries.push(query);
        return revoked.has(serialHex);
      },
    });
    assert.equal(verify(dev.der).deviceId, 'dev-1');
    revoked.add(serial);
    refuses(() => verify(dev.der), /has been revoked/);
    assert.equal(verify(pki.devices.get('dev-2')!.der).deviceId, 'dev-2');
    const q = queries[0] as { serialHex: string; issuer: string; deviceId: string; sha256: string };
    assert.equal(q.serialHex, serial);
    assert.equal(q.deviceId, 'dev-1');
    assert.equal(q.issuer, `CN=${pki.ca.name}`);
    // The certificate's SHA-256, also on the cached call (the cache is keyed by the bytes, not the hash).
    const sha256 = createHash('sha256').update(dev.der).digest('hex');
    assert.equal(q.sha256, sha256);
    assert.equal((queries[1] as { sha256: string }).sha256, sha256);
  });

  test('a revocation check that fails (fail closed)', () => {
    const verify = deviceCertificateVerifier({
      crypto,
      trustAnchors: [pki.caDer],
      isRevoked: () => {
        throw new Error('CRL unavailable');
      },
    });
    refuses(() => verify(pki.devices.get('dev-1')!.der), /revocation check failed .*CRL unavailable/);
  });

  test('a certificate whose CN is not a valid device id, or that has no CN', async () => {
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    for (const cn of ['dev/1', 'dev 1', 'dev+#', '..', 'x'.repeat(65)]) {
      const cert = await pki.issue({ commonName: cn });
      refuses(() => verify(cert.der), /is not a valid device id/);
    }
    const none = await pki.issue({ commonName: '', noCommonName: true });
    refuses(() => verify(none.der), /0 common names/);
  });

  test('garbage, empty, truncated, trailing and tampered bytes', () => {
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    const der = pki.devices.get('dev-1')!.der;
    refuses(() => verify(new Uint8Array(0)), /empty/);
    refuses(() => verify(crypto.randomBytes(300)), /not an X\.509 certificate/);
    refuses(() => verify(new TextEncoder().encode('-----BEGIN CERTIFICATE-----')), /not an X\.509 certificate/);
    refuses(() => verify(der.subarray(0, der.length - 10)), /not an X\.509 certificate/);
    const trailing = new Uint8Array(der.length + 1);
    trailing.set(der);
    refuses(() => verify(trailing), /byte\(s\) after its DER encoding/);
    // one changed byte inside tbsCertificate (its last, in the AKID) breaks the CA signature
    const tbs = parseCertificate(der).tbs;
    assert.equal(der[1], 0x82); // a two-byte length: tbsCertificate starts at offset 4
    const at = 4 + tbs.length - 1;
    assert.equal(der[at], tbs[tbs.length - 1]);
    const tampered = der.slice();
    tampered[at] = tampered[at]! ^ 0x01;
    refuses(() => verify(tampered), /signature does not verify/);
    assert.throws(() => verify('not bytes' as unknown as Uint8Array), /not a byte string/);
  });

  test('an unknown critical extension, a duplicated or malformed extension', async () => {
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    const unknown = await pki.issue({
      commonName: 'dev-x',
      extensions: [new x509.Extension('1.3.6.1.4.1.99999.1', true, Uint8Array.of(0x05, 0x00))],
    });
    refuses(() => verify(unknown.der), /unrecognised critical extension 1\.3\.6\.1\.4\.1\.99999\.1/);
    const twice = await pki.issue({
      commonName: 'dev-x',
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
    });
    assert.equal(verify(twice.der).deviceId, 'dev-x', 'a known extension once is fine');
    const duplicated = await pki.issue({
      commonName: 'dev-x',
      keyUsage: null,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    });
    refuses(() => verify(duplicated.der), /extension 2\.5\.29\.15 more than once/);
    const malformed = await pki.issue({
      commonName: 'dev-x',
      keyUsage: null,
      extensions: [new x509.Extension('2.5.29.15', true, Uint8Array.of(0x05, 0x00))],
    });
    refuses(() => verify(malformed.der), /unreadable certificate/);
  });

  test('a P-384 subject key', async () => {
    const cert = await pki.issue({ commonName: 'dev-384', curve: 'P-384' });
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    refuses(() => verify(cert.der), /subject key is EC P-384, not EC P-256/);
  });
});

describe('trust anchors are checked when the verifier is made', () => {
  test('a non-CA trust anchor is a plain Error', async () => {
    const notCa = await makeCa({ name: 'not a CA', isCa: false });
    for (const anchor of [notCa.der, pki.devices.get('dev-1')!.der]) {
      assert.throws(
        () => deviceCertificateVerifier({ crypto, trustAnchors: [anchor] }),
        (e: unknown) => e instanceof Error && !(e instanceof CoseError) && /is not a CA certificate/.test(e.message),
      );
    }
  });

  test('no anchors, or garbage as an anchor', () => {
    assert.throws(() => deviceCertificateVerifier({ crypto, trustAnchors: [] }), /at least one trust anchor/);
    assert.throws(
      () => deviceCertificateVerifier({ crypto, trustAnchors: [new Uint8Array([1, 2, 3])] }),
      /trust anchor 0: .*not an X\.509 certificate/,
    );
  });
});

describe('cache', () => {
  test('a cache hit skips the signature check but not the clock', () => {
    const { crypto: c, verifies } = counting(crypto);
    let now = new Date();
    const verify = deviceCertificateVerifier({ crypto: c, trustAnchors: [pki.caDer], now: () => now });
    const der = pki.devices.get('dev-1')!.der;
    verify(der);
    verify(der);
    assert.equal(verifies(), 1);
    now = new Date(Date.now() + 400 * DAY);
    refuses(() => verify(der), /has expired/);
    now = new Date();
    const result = verify(der);
    result.publicKey.fill(0); // callers get copies
    assert.ok(equal(verify(der).publicKey, pki.devices.get('dev-1')!.publicKey));
    assert.equal(verifies(), 1);
  });

  test('the cache is bounded (LRU)', () => {
    const { crypto: c, verifies } = counting(crypto);
    const verify = deviceCertificateVerifier({ crypto: c, trustAnchors: [pki.caDer], cacheSize: 1 });
    const a = pki.devices.get('dev-1')!.der;
    const b = pki.devices.get('dev-2')!.der;
    verify(a);
    verify(a);
    verify(b);
    verify(a);
    assert.equal(verifies(), 3);
  });

  test('a hit needs the same bytes, wherever they lie; one changed byte is verified afresh', () => {
    const { crypto: c, verifies } = counting(crypto);
    const verify = deviceCertificateVerifier({ crypto: c, trustAnchors: [pki.caDer] });
    const der = pki.devices.get('dev-1')!.der;
    verify(der);
    const elsewhere = new Uint8Array(der.length + 7);
    elsewhere.set(der, 7);
    assert.equal(verify(elsewhere.subarray(7)).deviceId, 'dev-1');
    assert.equal(verifies(), 1);
    const changed = Uint8Array.from(der);
    changed[changed.length - 1]! ^= 1; // in the signature
    refuses(() => verify(changed), /signature/);
    assert.equal(verifies(), 2);
  });

  test('failures are not cached', () => {
    const { crypto: c, verifies } = counting(crypto);
    let revoke = true;
    const verify = deviceCertificateVerifier({ crypto: c, trustAnchors: [pki.caDer], isRevoked: () => revoke });
    const der = pki.devices.get('dev-1')!.der;
    refuses(() => verify(der), /revoked/);
    revoke = false;
    verify(der);
    assert.equal(verifies(), 1); // the signature result was kept; only the revocation check said no
  });
});

describe('files and keys', () => {
  test('PEM with several certificates (and a key block), DER, files', () => {
    const pem = `${pki.caPem}\n${pki.devices.get('dev-1')!.keyPem}\n${pki.devices.get('dev-1')!.pem}`;
    const certs = parseCertificates(pem);
    assert.equal(certs.length, 2);
    assert.ok(equal(certs[0]!, pki.caDer));
    assert.ok(equal(certs[1]!, pki.devices.get('dev-1')!.der));
    assert.deepEqual(parseCertificates(pki.caDer), [pki.caDer]);
    writeFileSync(join(dir, 'chain.pem'), certificatesToPem([pki.caDer, pki.cloud.der]));
    writeFileSync(join(dir, 'ca.der'), pki.caDer);
    assert.equal(readCertificates(join(dir, 'chain.pem')).length, 2);
    assert.ok(equal(readCertificates(join(dir, 'ca.der'))[0]!, pki.caDer));
    assert.throws(() => parseCertificates(pki.devices.get('dev-1')!.keyPem), /no CERTIFICATE block/);
    assert.throws(() => readCertificates(join(dir, 'missing.pem')), /ENOENT/);
  });

  for (const provider of providers) {
    test(`P-256 private keys load into the provider (${provider.name})`, () => {
      const dev = pki.devices.get('dev-1')!;
      const key = loadP256PrivateKey(provider, dev.keyPem);
      assert.ok(equal(key.publicKey, dev.publicKey));
      assert.ok(equal(p256PrivateScalar(dev.keyPem), dev.privateScalar));
      const sec1 = createPrivateKey(dev.keyPem).export({ format: 'pem', type: 'sec1' }) as string;
      assert.ok(equal(loadP256PrivateKey(provider, sec1).publicKey, dev.publicKey));
      const der = createPrivateKey(dev.keyPem).export({ format: 'der', type: 'pkcs8' });
      assert.ok(equal(loadP256PrivateKey(provider, new Uint8Array(der)).publicKey, dev.publicKey));
      writeFileSync(join(dir, `key-${provider.name}.pem`), dev.keyPem);
      assert.ok(equal(readP256PrivateKey(provider, join(dir, `key-${provider.name}.pem`)).publicKey, dev.publicKey));
    });
  }

  test('keys that are not P-256 are refused', async () => {
    const p384 = await pki.issue({ commonName: 'k384', curve: 'P-384' });
    assert.throws(() => loadP256PrivateKey(crypto, p384.keyPem), /not P-256/);
    assert.throws(() => loadP256PrivateKey(crypto, 'hello'), /no PEM private key|not a readable/);
    assert.throws(() => loadP256PrivateKey(crypto, pki.caPem), /not a readable unencrypted private key/);
  });

  test('the cloud public key from its certificate', () => {
    assert.ok(equal(certificateP256PublicKey(pki.cloud.der), pki.cloud.publicKey));
  });
});

describe('openssl reads the fixture certificates', () => {
  const haveOpenssl = spawnSync('which', ['openssl']).status === 0;
  if (!haveOpenssl) {
    console.warn('\n!!! openssl is not on PATH: SKIPPING the openssl interoperability check of the fixture PKI !!!\n');
  }

  test('openssl verify and x509 -text', { skip: !haveOpenssl && 'openssl not on PATH' }, () => {
    const file = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const ca = file('fx-ca.pem', pki.caPem);
    const dev = file('fx-dev.pem', pki.devices.get('dev-1')!.pem);
    const cloud = file('fx-cloud.pem', pki.cloud.pem);
    const key = file('fx-dev.key', pki.devices.get('dev-1')!.keyPem);
    const ok = execFileSync('openssl', ['verify', '-x509_strict', '-CAfile', ca, dev, cloud], { encoding: 'utf8' });
    assert.match(ok, /fx-dev\.pem: OK/);
    assert.match(ok, /fx-cloud\.pem: OK/);
    const devText = execFileSync('openssl', ['x509', '-in', dev, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(devText, /Subject: CN ?= ?dev-1/);
    assert.match(devText, /Digital Signature/);
    assert.match(devText, /ecdsa-with-SHA256/);
    assert.match(devText, /NIST CURVE: P-256|prime256v1/);
    const caText = execFileSync('openssl', ['x509', '-in', ca, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(caText, /CA:TRUE/);
    assert.match(caText, /Certificate Sign/);
    const keyText = execFileSync('openssl', ['pkey', '-in', key, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(keyText, /prime256v1|P-256/);
    // a certificate from the fixtures is refused by openssl when the CA does not match
    const other = spawnSync('openssl', ['verify', '-CAfile', dev, ca], { encoding: 'utf8' });
    assert.notEqual(other.status, 0);
    assert.ok(readFileSync(dev, 'utf8').startsWith('-----BEGIN CERTIFICATE-----'));
  });
});
