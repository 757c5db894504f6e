/** The host CA library (cloud/pki/authority.ts): CA creation, issuing, loading, key pairs. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type CertificateAuthority,
  createCa,
  DEFAULT_CA_NAME,
  generateKeyPair,
  issueCertificate,
  loadCa,
} from '../../cloud/pki/authority.js';
import { parseCertificate } from '../../cloud/pki/certificate.js';
import { loadP256PrivateKey, p256PrivateScalar } from '../../cloud/pki/files.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { x509 } from '../../cloud/pki/x509.js';
import { equal, toHex } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import { providers } from '../providers.js';

const crypto = providers[0]!;
const DAY = 24 * 3600_000;

let dir: string;
let ca: CertificateAuthority;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-ca-'));
  ca = await createCa({ name: 'authority test CA' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, `${fileCount++}-${name}`);
  writeFileSync(path, content);
  return path;
}

/** `openssl verify -x509_strict -CAfile CA CERT`: its exit status and output. */
function opensslVerify(caPem: string, certPem: string): { ok: boolean; output: string } {
  const r = spawnSync(
    'openssl',
    ['verify', '-x509_strict', '-CAfile', file('ca.pem', caPem), file('cert.pem', certPem)],
    {
      encoding: 'utf8',
    },
  );
  if (r.error) throw r.error;
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

function opensslText(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text', '-in', file('text.pem', pem)], { encoding: 'utf8' });
}

async function issueDevice(authority: CertificateAuthority, id: string) {
  const keys = generateKeyPair();
  return {
    keys,
    cert: await issueCertificate(authority, { commonName: id, publicKey: keys.publicKey, keyUsage: 'device' }),
  };
}

describe('createCa', () => {
  test('a self-signed P-256 CA with the CA extensions, its key as PKCS#8 PEM', async () => {
    const cert = ca.certificate;
    assert.equal(cert.subject, 'CN=authority test CA');
    assert.equal(cert.issuer, cert.subject);
    assert.equal(ca.name, 'authority test CA');
    assert.ok(await cert.verify({ publicKey: cert.publicKey, signatureOnly: true }), 'self-signed');
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    assert.ok(bc.ca && bc.critical);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.ok(ku.critical);
    assert.ok(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    const parsed = parseCertificate(ca.der);
    assert.ok(equal(parsed.p256PublicKey!, ca.publicKey));
    assert.equal(ca.pem, x509.PemConverter.encode(ca.der, 'CERTIFICATE'));
    // the key file: PKCS#8, P-256, the CA's key
    assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(createPrivateKey(ca.keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(equal(loadP256PrivateKey(crypto, ca.keyPem).publicKey, ca.publicKey));
    // default validity: backdated an hour, ten years
    const days = (cert.notAfter.getTime() - Date.now()) / DAY;
    assert.ok(days > 3649 && days <= 3650, `${days} days`);
    assert.ok(cert.notBefore.getTime() <= Date.now() - 3500_000);
    // and a trust anchor the verifier accepts
    deviceCertificateVerifier({ crypto, trustAnchors: [ca.der] });
  });

  test('defaults, validityDays, and refusals of its options', async () => {
    const plain = await createCa({ validityDays: 30 });
    assert.equal(plain.name, DEFAULT_CA_NAME);
    const days = (plain.certificate.notAfter.getTime() - Date.now()) / DAY;
    assert.ok(days > 29 && days <= 30, `${days} days`);
    assert.notEqual(toHex(plain.publicKey), toHex(ca.publicKey));
    await assert.rejects(createCa({ name: '' }), /CA name must be/);
    await assert.rejects(createCa({ name: 'x'.repeat(65) }), /CA name must be/);
    await assert.rejects(createCa({ validityDays: 0 }), /validityDays must be an integer/);
    await assert.rejects(createCa({ validityDays: 1.5 }), /validityDays must be an integer/);
    const now = new Date();
    await assert.rejects(createCa({ notBefore: now, notAfter: now }), /is not after notBefore/);
  });

  test('openssl reads it and accepts it as a strict trust anchor', () => {
    const text = opensslText(ca.pem);
    assert.match(text, /Subject: CN ?= ?authority test CA/);
    assert.match(text, /CA:TRUE/);
    assert.match(text, /Certificate Sign, CRL Sign/);
    const self = opensslVerify(ca.pem, ca.pem);
    assert.ok(self.ok, self.output);
  });
});

describe('issueCertificate', () => {
  test('a device certificate is, up to its signature, the one @peculiar/x509 makes for the profile', async () => {
    // issueCertificate writes device certificates with src/pki's DER writer (the enrollment
    // service's hot path); the CA and cloud certificates are still @peculiar/x509's.
    const subtle = globalThis.crypto.subtle;
    const provider = globalThis.crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0];
    const ski = ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension)!;
    let n = 0;
    for (const id of ['dev-1', 'sensor_0042.lab', 'A'.repeat(64)]) {
      for (const days of [1, 365, 40_000]) {
        const { publicKey } = generateKeyPair();
        const serialHex = `${(0x10 + n++).toString(16)}${'5a'.repeat(15)}`;
        const notBefore = new Date(Date.now() - 3600_000 + 123);
        const notAfter = new Date(Date.now() + days * DAY + 456); // GeneralizedTime past 2049
        const mine = await issueCertificate(ca, {
          commonName: id,
          publicKey,
          keyUsage: 'device',
          serialHex,
          notBefore,
          notAfter,
        });
        const key = await subtle.importKey('raw', publicKey, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
        const theirs = await x509.X509CertificateGenerator.create(
          {
            serialNumber: serialHex,
            subject: [{ CN: [id] }],
            issuer: ca.certificate.subjectName,
            notBefore,
            notAfter,
            signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
            publicKey: key,
            signingKey: ca.keys.privateKey,
            extensions: [
              new x509.BasicConstraintsExtension(false, undefined, true),
              new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
              await x509.SubjectKeyIdentifierExtension.create(key, false, provider),
              new x509.AuthorityKeyIdentifierExtension(ski.keyId, false),
            ],
          },
          provider,
        );
        const parsed = parseCertificate(mine.der);
        assert.equal(
          toHex(parsed.tbs),
          toHex(parseCertificate(new Uint8Array(theirs.rawData)).tbs),
          `${id}, ${days} days`,
        );
        assert.equal(
          await mine.certificate.verify({ publicKey: ca.keys.publicKey, signatureOnly: true }, provider),
          true,
        );
        assert.equal(mine.serialHex, parsed.serialHex);
        assert.equal(mine.notBefore.getTime(), parsed.notBefore.getTime());
        assert.equal(mine.notAfter.getTime(), parsed.notAfter.getTime());
        assert.equal(mine.pem, parsed.x509.toString('pem'));
      }
    }
  });

  test('device certificates verify with deviceCertificateVerifier and openssl verify -x509_strict', async () => {
    for (const id of ['dev-1', 'sensor_0042.lab', 'A'.repeat(64)]) {
      const { keys, cert } = await issueDevice(ca, id);
      for (const provider of providers) {
        const result = deviceCertificateVerifier({ crypto: provider, trustAnchors: [ca.der] })(cert.der);
        assert.equal(result.deviceId, id);
        assert.ok(equal(result.publicKey, keys.publicKey));
      }
      const strict = opensslVerify(ca.pem, cert.pem);
      assert.ok(strict.ok, strict.output);
      assert.equal(cert.commonName, id);
      assert.equal(cert.keyUsage, 'device');
    }
  });

  test('the device profile: extensions, serial, validity, openssl -text', async () => {
    const { cert } = await issueDevice(ca, 'dev-profile');
    const c = cert.certificate;
    assert.equal(c.subject, 'CN=dev-profile');
    assert.equal(c.issuer, ca.certificate.subject);
    assert.equal(parseCertificate(cert.der).issuer, ca.certificate.subject);
    const bc = c.getExtension(x509.BasicConstraintsExtension)!;
    assert.ok(!bc.ca && bc.critical && bc.pathLength === undefined);
    const ku = c.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
    assert.ok(ku.critical);
    assert.ok(c.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    const aki = c.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    assert.equal(aki.keyId, ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    assert.equal(c.extensions.length, 4);
    // serial: 16 bytes, positive, as the verifier reports it
    assert.match(cert.serialHex, /^[1-7][0-9a-f]{31}$|^0[1-9a-f][0-9a-f]{30}$/);
    assert.equal(cert.serialHex, parseCertificate(cert.der).serialHex);
    const other = await issueDevice(ca, 'dev-profile');
    assert.notEqual(other.cert.serialHex, cert.serialHex);
    // validity: backdated an hour, a year
    const days = (cert.notAfter.getTime() - Date.now()) / DAY;
    assert.ok(days > 364 && days <= 365, `${days} days`);
    assert.ok(cert.notBefore.getTime() < Date.now() && cert.notBefore >= ca.certificate.notBefore);
    const text = opensslText(cert.pem);
    assert.match(text, /Subject: CN ?= ?dev-profile/);
    assert.match(text, /Digital Signature/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /ecdsa-with-SHA256/);
    assert.match(text, /NIST CURVE: P-256/);
  });

  test('cloud certificates: keyAgreement, strict-valid, and no device certificate', async () => {
    const keys = generateKeyPair();
    const cert = await issueCertificate(ca, {
      commonName: 'cose-flow cloud',
      publicKey: keys.publicKey,
      keyUsage: 'cloud',
    });
    const ku = cert.certificate.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(ku.usages, x509.KeyUsageFlags.keyAgreement);
    assert.ok(equal(parseCertificate(cert.der).p256PublicKey!, keys.publicKey));
    const strict = opensslVerify(ca.pem, cert.pem);
    assert.ok(strict.ok, strict.output);
    assert.match(opensslText(cert.pem), /Key Agreement/);
    const verify = deviceCertificateVerifier({ crypto, trustAnchors: [ca.der] });
    assert.throws(
      () => verify(cert.der),
      (e: unknown) => e instanceof CoseError && e.reason === 'bad-certificate' && /digitalSignature/.test(e.message),
    );
    await assert.rejects(
      issueCertificate(ca, { commonName: '', publicKey: keys.publicKey, keyUsage: 'cloud' }),
      /cloud certificate common name/,
    );
  });

  test('a device certificate CN must be a valid device id', async () => {
    const { publicKey } = generateKeyPair();
    for (const id of ['', 'dev/1', 'dev 1', 'dev+', 'dev#', '.', '..', 'x'.repeat(65), 'dév-1', 'dev-1\n']) {
      await assert.rejects(
        issueCertificate(ca, { commonName: id, publicKey, keyUsage: 'device' }),
        (e: unknown) => e instanceof RangeError && /invalid device id/.test(e.message),
        JSON.stringify(id),
      );
    }
  });

  test('bad public keys, serials, key usages and validity', async () => {
    const { publicKey } = generateKeyPair();
    const device = { commonName: 'dev-1', keyUsage: 'device' as const };
    const offCurve = publicKey.slice();
    offCurve[64] = offCurve[64]! ^ 1;
    await assert.rejects(issueCertificate(ca, { ...device, publicKey: offCurve }), /not a point on P-256/);
    await assert.rejects(issueCertificate(ca, { ...device, publicKey: publicKey.subarray(0, 33) }), /65-byte/);
    const compressed = Uint8Array.of(0x02, ...publicKey.subarray(1, 33));
    await assert.rejects(issueCertificate(ca, { ...device, publicKey: compressed }), /65-byte uncompressed/);
    for (const serialHex of ['', '0', '00', 'xyz', '-1', 'ff'.repeat(20)]) {
      await assert.rejects(issueCertificate(ca, { ...device, publicKey, serialHex }), /serial/, serialHex);
    }
    const given = await issueCertificate(ca, { ...device, publicKey, serialHex: '00ABCDEF' });
    assert.equal(given.serialHex, 'abcdef');
    const twenty = await issueCertificate(ca, { ...device, publicKey, serialHex: `7f${'ff'.repeat(19)}` });
    assert.equal(twenty.serialHex, `7f${'ff'.repeat(19)}`);
    await assert.rejects(
      issueCertificate(ca, { ...device, publicKey, keyUsage: 'server' as 'device' }),
      /keyUsage must be 'device' or 'cloud'/,
    );
    await assert.rejects(issueCertificate(ca, { ...device, publicKey, validityDays: 0 }), /validityDays/);
    const short = await issueCertificate(ca, { ...device, publicKey, validityDays: 7 });
    const days = (short.notAfter.getTime() - Date.now()) / DAY;
    assert.ok(days > 6 && days <= 7, `${days} days`);
  });

  test('validity is clamped to the CA; an expired CA cannot issue; explicit bounds are taken as given', async () => {
    const { publicKey } = generateKeyPair();
    const device = { commonName: 'dev-1', keyUsage: 'device' as const, publicKey };
    const shortCa = await createCa({ validityDays: 10 });
    const clamped = await issueCertificate(shortCa, device);
    assert.equal(clamped.notAfter.getTime(), shortCa.certificate.notAfter.getTime());
    assert.equal(deviceCertificateVerifier({ crypto, trustAnchors: [shortCa.der] })(clamped.der).deviceId, 'dev-1');

    const expired = await createCa({
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    await assert.rejects(issueCertificate(expired, device), /a certificate issued now would never be valid/);

    const notBefore = new Date(Date.now() - 10 * DAY);
    const notAfter = new Date(Date.now() - DAY);
    const old = await issueCertificate(ca, { ...device, notBefore, notAfter });
    assert.equal(old.notAfter.getTime(), Math.floor(notAfter.getTime() / 1000) * 1000);
    assert.throws(
      () => deviceCertificateVerifier({ crypto, trustAnchors: [ca.der] })(old.der),
      /has expired/,
      'the verifier refuses it',
    );
  });

  test('a certificate that is not a CA cannot issue', async () => {
    const { keys, cert } = await issueDevice(ca, 'dev-1');
    const notCa = await loadCa(ca.pem, ca.keyPem);
    // the device certificate and key, dressed up as a CA
    const fake: CertificateAuthority = { ...notCa, certificate: cert.certificate, der: cert.der, pem: cert.pem };
    await assert.rejects(
      issueCertificate(fake, { commonName: 'dev-2', publicKey: keys.publicKey, keyUsage: 'device' }),
      /cannot issue certificates: basicConstraints cA is false/,
    );
  });
});

describe('loadCa', () => {
  test('round-trips createCa: PEM or DER, PKCS#8 or SEC1', async () => {
    const sec1 = createPrivateKey(ca.keyPem).export({ format: 'pem', type: 'sec1' }) as string;
    const pkcs8Der = new Uint8Array(createPrivateKey(ca.keyPem).export({ format: 'der', type: 'pkcs8' }));
    for (const [certificate, key] of [
      [ca.pem, ca.keyPem],
      [ca.der, sec1],
      [readFileSync(file('ca.pem', ca.pem)), pkcs8Der],
    ] as const) {
      const loaded = await loadCa(certificate, key);
      assert.equal(loaded.name, ca.name);
      assert.ok(equal(loaded.der, ca.der));
      assert.equal(loaded.pem, ca.pem);
      assert.ok(equal(loaded.publicKey, ca.publicKey));
      assert.ok(equal(p256PrivateScalar(loaded.keyPem), p256PrivateScalar(ca.keyPem)));
      assert.match(loaded.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
      const { keys, cert } = await issueDevice(loaded, 'dev-loaded');
      const result = deviceCertificateVerifier({ crypto, trustAnchors: [ca.der] })(cert.der);
      assert.equal(result.deviceId, 'dev-loaded');
      assert.ok(equal(result.publicKey, keys.publicKey));
      const strict = opensslVerify(ca.pem, cert.pem);
      assert.ok(strict.ok, strict.output);
    }
  });

  test('refuses a key of another CA, a non-CA certificate, several certificates, no key', async () => {
    const other = await createCa({ name: 'other CA' });
    await assert.rejects(loadCa(ca.pem, other.keyPem), /does not belong to the CA certificate/);
    const { keys, cert } = await issueDevice(ca, 'dev-1');
    await assert.rejects(
      loadCa(cert.pem, keys.privateKeyPem),
      /cannot issue certificates: basicConstraints cA is false/,
    );
    await assert.rejects(loadCa(`${ca.pem}\n${other.pem}`, ca.keyPem), /holds 2 certificates, expected exactly one/);
    await assert.rejects(loadCa(ca.pem, ca.pem), /private key/);
    await assert.rejects(loadCa('not a certificate', ca.keyPem), /no PEM certificate/);
  });

  test('a CA made by the openssl command line (PrintableString names, SEC1 key)', async () => {
    const sub = mkdtempSync(join(dir, 'openssl-ca-'));
    const o = (name: string) => join(sub, name);
    writeFileSync(o('req.cnf'), '[req]\ndistinguished_name=dn\nstring_mask=default\n[dn]\n');
    const run = (command: string) => execFileSync('openssl', command.split(' '), { cwd: sub, stdio: 'pipe' });
    run('ecparam -name prime256v1 -genkey -noout -out ca.key');
    run(
      'req -config req.cnf -new -x509 -key ca.key -sha256 -days 30 -subj /CN=openssl-CA -out ca.pem ' +
        '-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign',
    );
    const caPem = readFileSync(o('ca.pem'), 'utf8');
    const loaded = await loadCa(caPem, readFileSync(o('ca.key')));
    assert.equal(loaded.name, 'openssl-CA');
    const { cert } = await issueDevice(loaded, 'ossl-dev.8');
    // the issuer Name is the CA's subject byte for byte (the verifier compares DER)
    assert.ok(equal(parseCertificate(cert.der).issuerDer, parseCertificate(loaded.der).subjectDer));
    assert.equal(deviceCertificateVerifier({ crypto, trustAnchors: [loaded.der] })(cert.der).deviceId, 'ossl-dev.8');
    const strict = opensslVerify(caPem, cert.pem);
    assert.ok(strict.ok, strict.output);
    assert.ok(cert.notAfter <= loaded.certificate.notAfter, 'clamped to the 30-day CA');
  });
});

describe('generateKeyPair', () => {
  test('PKCS#8 PEM, the point and the scalar of one P-256 key, new every time', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    assert.notEqual(toHex(a.publicKey), toHex(b.publicKey));
    assert.equal(a.publicKey.length, 65);
    assert.equal(a.publicKey[0], 0x04);
    assert.equal(a.privateScalar.length, 32);
    assert.match(a.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    for (const provider of providers) {
      assert.ok(equal(provider.p256Import(a.privateScalar).publicKey, a.publicKey));
      assert.ok(equal(loadP256PrivateKey(provider, a.privateKeyPem).publicKey, a.publicKey));
    }
    assert.ok(equal(p256PrivateScalar(a.privateKeyPem), a.privateScalar));
  });
});
