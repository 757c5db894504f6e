/**
 * Certificates read and checked on the device (src/pki/certificate.ts), against the host's view
 * (cloud/pki, @peculiar/x509): the same fields, and the same certificates accepted and refused.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ecdsaSha256Signature, parseCertificate as hostParseCertificate } from '../../cloud/pki/certificate.js';
import { parseCertificates } from '../../cloud/pki/files.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { x509 } from '../../cloud/pki/x509.js';
import { equal, utf8Encode } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import {
  type Certificate,
  certificateVerifier,
  KeyUsage,
  parseCertificate,
  verifyCloudCertificate,
  verifyIssuedBy,
} from '../../src/pki/certificate.js';
import { makeCsr, parseCsr } from '../../src/pki/csr.js';
import { DerError, readDer } from '../../src/pki/der.js';
import type { CertifiedDevice } from '../../src/profile/key-message.js';
import { makeCa, makePki, type Pki, type TestCa } from '../fixtures/pki.js';
import { providers } from '../providers.js';

const crypto = providers[0]!;
const DAY = 24 * 3600_000;
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

let pki: Pki;
let dir: string;

before(async () => {
  pki = await makePki({ deviceIds: ['dev-1', 'dev-2'] });
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-device-cert-'));
});
after(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function isBadCertificate(e: unknown, message?: RegExp): true {
  assert.ok(e instanceof CoseError, `expected a CoseError, got ${String(e)}`);
  assert.equal(e.reason, 'bad-certificate');
  if (message !== undefined) assert.match(e.message, message);
  return true;
}

function refuses(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => isBadCertificate(e, message));
}

/** A CA certificate that is a CA (cA=true) but whose keyUsage lacks keyCertSign. */
async function caWithoutKeyCertSign(): Promise<Uint8Array> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as unknown as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=no keyCertSign',
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + DAY),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  return new Uint8Array(cert.rawData);
}

function checkSameAsHost(der: Uint8Array): Certificate {
  const mine = parseCertificate(der);
  const host = hostParseCertificate(der);
  assert.ok(equal(mine.der, der));
  assert.ok(equal(mine.tbs, host.tbs), 'tbsCertificate bytes');
  assert.equal(mine.serialHex, host.serialHex);
  assert.ok(equal(mine.subject.der, host.subjectDer), 'subject DER');
  assert.ok(equal(mine.issuer.der, host.issuerDer), 'issuer DER');
  assert.equal(mine.subject.text, host.subject);
  assert.equal(mine.issuer.text, host.issuer);
  assert.deepEqual(mine.subject.commonNames, host.commonNames);
  assert.deepEqual(mine.issuer.commonNames, host.x509.issuerName.getField('CN'));
  assert.equal(mine.notBefore, host.notBefore.getTime());
  assert.equal(mine.notAfter, host.notAfter.getTime());
  assert.ok(host.p256PublicKey !== undefined && equal(mine.publicKey, host.p256PublicKey), 'public key');
  assert.ok(equal(mine.signature, ecdsaSha256Signature(host)), 'signature r ‖ s');
  const bc = host.x509.getExtension(x509.BasicConstraintsExtension);
  assert.equal(mine.basicConstraints?.cA, bc?.ca);
  assert.equal(mine.basicConstraints?.pathLength, bc?.pathLength);
  assert.equal(mine.keyUsage, host.x509.getExtension(x509.KeyUsagesExtension)?.usages);
  assert.deepEqual(
    mine.extensions.map((e) => [e.oid, e.critical]),
    Array.from(host.x509.extensions, (e) => [e.type, e.critical]),
  );
  assert.equal(mine.version, 3);
  return mine;
}

describe('parseCertificate reads what @peculiar/x509 reads', () => {
  test('the fixture CA, cloud and device certificates', () => {
    const ca = checkSameAsHost(pki.caDer);
    assert.equal(ca.basicConstraints?.cA, true);
    assert.equal(ca.keyUsage, KeyUsage.keyCertSign | KeyUsage.cRLSign);
    const cloud = checkSameAsHost(pki.cloud.der);
    assert.equal(cloud.keyUsage, KeyUsage.keyAgreement);
    for (const [id, dev] of pki.devices) {
      const cert = checkSameAsHost(dev.der);
      assert.deepEqual(cert.subject.commonNames, [id]);
      assert.equal(cert.subject.text, `CN=${id}`);
      assert.equal(cert.issuer.text, `CN=${pki.ca.name}`);
      assert.equal(cert.keyUsage, KeyUsage.digitalSignature);
      assert.deepEqual(cert.basicConstraints, { cA: false, pathLength: undefined });
      assert.ok(equal(cert.publicKey, dev.publicKey));
      assert.equal(cert.extensions.find((e) => e.oid === '2.5.29.15')?.critical, true);
    }
  });

  test('serials, GeneralizedTime, no keyUsage, more extensions, other name attributes', async () => {
    for (const serialHex of ['01', '7f', '0080', '00ff', '1234567890abcdef', `7f${'ff'.repeat(19)}`]) {
      const cert = checkSameAsHost((await pki.issue({ commonName: 'dev-s', serialHex })).der);
      assert.equal(cert.serialHex, serialHex.replace(/^00/, ''));
    }
    const far = await pki.issue({ commonName: 'dev-far', notAfter: new Date(Date.UTC(2060, 0, 2, 3, 4, 5)) });
    const generalized = utf8Encode('20600102030405Z');
    assert.ok(
      far.der.some((_, i) => equal(far.der.subarray(i, i + 15), generalized)),
      'a GeneralizedTime',
    );
    assert.equal(checkSameAsHost(far.der).notAfter, Date.UTC(2060, 0, 2, 3, 4, 5));
    assert.equal(checkSameAsHost((await pki.issue({ commonName: 'dev-n', keyUsage: null })).der).keyUsage, undefined);
    const all =
      KeyUsage.digitalSignature |
      KeyUsage.nonRepudiation |
      KeyUsage.keyEncipherment |
      KeyUsage.dataEncipherment |
      KeyUsage.keyAgreement |
      KeyUsage.decipherOnly;
    assert.equal(checkSameAsHost((await pki.issue({ commonName: 'dev-k', keyUsage: all })).der).keyUsage, all);
    const extended = await pki.issue({
      commonName: 'dev-x',
      extensions: [
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'dev-x.example' }]),
        new x509.Extension('1.3.6.1.4.1.99999.2', false, Uint8Array.of(0x05, 0x00)),
      ],
    });
    assert.equal(checkSameAsHost(extended.der).extensions.length, 7);
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as unknown as webcrypto.CryptoKeyPair;
    const named = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '05',
      name: 'C=DE, O=Acme Ltd., CN=named-1',
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    const cert = checkSameAsHost(new Uint8Array(named.rawData));
    assert.deepEqual(cert.subject.commonNames, ['named-1']);
    assert.equal(cert.extensions.length, 0);
  });

  test('certificates made by the openssl command line', () => {
    const files = openSslChain();
    const ca = checkSameAsHost(files.ca);
    const dev = checkSameAsHost(files.dev);
    verifyIssuedBy(crypto, dev, ca);
    assert.deepEqual(dev.subject.commonNames, ['ossl-dev.7']);
  });
});

/** A CA and a device certificate made with the openssl CLI (as the host tests do). */
function openSslChain(): { ca: Uint8Array; dev: Uint8Array } {
  const sub = mkdtempSync(join(dir, 'openssl-'));
  // Bounded: a synchronous call blocks this file's event loop, so the runner's per-test timeout
  // could not end a hung openssl; this bound fails the test with the command instead.
  const timeout = 120_000;
  const run = (args: string[]) => {
    try {
      return execFileSync('openssl', args, { cwd: sub, stdio: 'pipe', timeout });
    } catch (e) {
      throw new Error(`openssl ${args.join(' ')}: ${(e as Error).message}`);
    }
  };
  const probe = spawnSync('openssl', ['version'], { timeout });
  if (probe.error !== undefined || probe.status !== 0) {
    const why = (probe.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ? 'is not on PATH' : 'failed';
    throw new Error(`!!! openssl ${why}: \`openssl version\`: ${probe.error?.message ?? `exit ${probe.status}`} !!!`);
  }
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  run(
    (
      'req -new -x509 -key ca.key -sha256 -days 30 -subj /CN=openssl-CA -out ca.pem ' +
      '-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign'
    ).split(' '),
  );
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'dev.key']);
  run('req -new -key dev.key -subj /CN=ossl-dev.7 -out dev.csr'.split(' '));
  writeFileSync(join(sub, 'dev.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n');
  run(
    'x509 -req -in dev.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 10 -extfile dev.ext -out dev.pem'.split(
      ' ',
    ),
  );
  const read = (name: string) => parseCertificates(readFileSync(join(sub, name), 'utf8'))[0]!;
  return { ca: read('ca.pem'), dev: read('dev.pem') };
}

/** Runs the host and the device verifier on `der`: both accept with the same result, or both refuse. */
function bothVerifiers(
  der: Uint8Array,
  anchors: Uint8Array[] = [pki.caDer],
  now?: number,
): { device: CertifiedDevice | CoseError; host: CertifiedDevice | CoseError } {
  const run = (verify: (d: Uint8Array) => CertifiedDevice): CertifiedDevice | CoseError => {
    try {
      return verify(der);
    } catch (e) {
      isBadCertificate(e);
      return e as CoseError;
    }
  };
  const device = run(
    certificateVerifier({ crypto, trustAnchors: anchors, ...(now === undefined ? {} : { now: () => now }) }),
  );
  const host = run(
    deviceCertificateVerifier({
      crypto,
      trustAnchors: anchors,
      cacheSize: 0,
      ...(now === undefined ? {} : { now: () => new Date(now) }),
    }),
  );
  return { device, host };
}

function bothAccept(der: Uint8Array, deviceId: string, anchors?: Uint8Array[], now?: number): void {
  const { device, host } = bothVerifiers(der, anchors, now);
  assert.ok(!(device instanceof CoseError), `the device verifier refused: ${String(device)}`);
  assert.ok(!(host instanceof CoseError), `the host verifier refused: ${String(host)}`);
  assert.equal(device.deviceId, deviceId);
  assert.deepEqual(device, host);
}

function bothRefuse(der: Uint8Array, deviceMessage: RegExp, anchors?: Uint8Array[], now?: number): void {
  const { device, host } = bothVerifiers(der, anchors, now);
  assert.ok(host instanceof CoseError, 'the host verifier accepted it');
  assert.ok(device instanceof CoseError, 'the device verifier accepted it');
  assert.match(device.message, deviceMessage);
}

describe('certificateVerifier accepts what the host accepts', () => {
  for (const provider of providers) {
    test(`device certificates of the trust anchor (${provider.name})`, () => {
      const verify = certificateVerifier({ crypto: provider, trustAnchors: [pki.caDer] });
      for (const [id, dev] of pki.devices) {
        const result = verify(dev.der);
        assert.equal(result.deviceId, id);
        assert.ok(equal(result.publicKey, dev.publicKey));
        result.publicKey.fill(0); // a copy
        assert.ok(equal(verify(dev.der).publicKey, dev.publicKey));
        bothAccept(dev.der, id);
      }
    });
  }

  test('the second of two anchors, no keyUsage, extKeyUsage, openssl-made', async () => {
    const other = await makePki({ caName: 'second CA', deviceIds: ['dev-9'] });
    bothAccept(other.devices.get('dev-9')!.der, 'dev-9', [pki.caDer, other.caDer]);
    bothAccept(pki.devices.get('dev-1')!.der, 'dev-1', [other.caDer, pki.caDer]);
    bothAccept((await pki.issue({ commonName: 'dev-ku', keyUsage: null })).der, 'dev-ku');
    const eku = await pki.issue({
      commonName: 'dev-eku',
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], true)],
    });
    bothAccept(eku.der, 'dev-eku');
    const files = openSslChain();
    bothAccept(files.dev, 'ossl-dev.7', [files.ca]);
  });
});

describe('certificateVerifier refuses what the host refuses (bad-certificate)', () => {
  test('a certificate of another CA, or of an impostor CA with the same name', async () => {
    const other = await makePki({ caName: 'evil CA', deviceIds: ['dev-1'] });
    bothRefuse(other.devices.get('dev-1')!.der, /issued by CN=evil CA, which is not a trust anchor/);
    const impostor = await makePki({ caName: pki.ca.name, deviceIds: ['dev-1'] });
    bothRefuse(impostor.devices.get('dev-1')!.der, /signature does not verify with the key of trust anchor/);
  });

  test('expired, not yet valid, issued by an expired CA', async () => {
    const old = await pki.issue({
      commonName: 'dev-old',
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    bothRefuse(old.der, /has expired: notAfter .* is before/);
    const young = await pki.issue({ commonName: 'dev-new', notBefore: new Date(Date.now() + DAY) });
    bothRefuse(young.der, /is not yet valid: notBefore .* is after/);
    const oldCa = await makeCa({ notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const oldPki = await makePki({ ca: oldCa, deviceIds: ['dev-1'] });
    bothRefuse(oldPki.devices.get('dev-1')!.der, /issuing CA .* outside its validity period/, [oldCa.der]);
  });

  test('keyCertSign only, a CA as device certificate', async () => {
    const signOnly = await pki.issue({ commonName: 'dev-ku', keyUsage: x509.KeyUsageFlags.keyCertSign });
    bothRefuse(signOnly.der, /keyUsage \(keyCertSign\) does not include digitalSignature/);
    const agreeOnly = await pki.issue({ commonName: 'dev-ka', keyUsage: x509.KeyUsageFlags.keyAgreement });
    bothRefuse(agreeOnly.der, /keyUsage \(keyAgreement\) does not include digitalSignature/);
    bothRefuse(pki.cloud.der, /does not include digitalSignature/);
    const ca = await pki.issue({
      commonName: 'dev-ca',
      isCa: true,
      keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign,
    });
    bothRefuse(ca.der, /is a CA certificate \(basicConstraints cA=true\)/);
    bothRefuse(pki.caDer, /is a CA certificate/); // the anchor itself (self-issued)
  });

  test('a CN that is not a device id, no CN', async () => {
    for (const cn of ['dev/1', 'dev 1', 'dev+#', '..', '.', 'x'.repeat(65), 'dév']) {
      bothRefuse((await pki.issue({ commonName: cn })).der, /is not a valid device id/);
    }
    bothRefuse((await pki.issue({ commonName: '', noCommonName: true })).der, /0 common names/);
  });

  test('a P-384 subject key', async () => {
    bothRefuse(
      (await pki.issue({ commonName: 'dev-384', curve: 'P-384' })).der,
      /subject key is EC P-384, not EC P-256/,
    );
  });

  test('garbage, empty, truncated, trailing and tampered bytes', () => {
    const der = pki.devices.get('dev-1')!.der;
    bothRefuse(new Uint8Array(0), /the certificate is empty/);
    bothRefuse(crypto.randomBytes(300), /not a certificate this device accepts/);
    bothRefuse(utf8Encode('-----BEGIN CERTIFICATE-----'), /not a certificate this device accepts/);
    bothRefuse(der.subarray(0, der.length - 10), /truncated DER/);
    bothRefuse(der.subarray(0, 100), /truncated DER/);
    const trailing = new Uint8Array(der.length + 1);
    trailing.set(der);
    bothRefuse(trailing, /1 byte\(s\) after the DER value/);
    const tbs = parseCertificate(der).tbs;
    assert.equal(der[1], 0x82); // tbsCertificate starts at offset 4
    const inTbs = der.slice();
    inTbs[4 + tbs.length - 1] = inTbs[4 + tbs.length - 1]! ^ 0x01; // last byte of the AKID
    bothRefuse(inTbs, /signature does not verify/);
    const inSignature = der.slice();
    inSignature[der.length - 1] = inSignature[der.length - 1]! ^ 0x01; // last byte of s
    bothRefuse(inSignature, /signature does not verify/);
    const verify = certificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    refuses(() => verify('not bytes' as unknown as Uint8Array), /not a byte string/);
  });

  test('an unknown critical extension, a duplicated or malformed extension', async () => {
    const unknown = await pki.issue({
      commonName: 'dev-x',
      extensions: [new x509.Extension('1.3.6.1.4.1.99999.1', true, Uint8Array.of(0x05, 0x00))],
    });
    bothRefuse(unknown.der, /unrecognised critical extension 1\.3\.6\.1\.4\.1\.99999\.1/);
    const duplicated = await pki.issue({
      commonName: 'dev-x',
      keyUsage: null,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    });
    bothRefuse(duplicated.der, /extension 2\.5\.29\.15 appears more than once/);
    const malformed = await pki.issue({
      commonName: 'dev-x',
      keyUsage: null,
      extensions: [new x509.Extension('2.5.29.15', true, Uint8Array.of(0x05, 0x00))],
    });
    bothRefuse(malformed.der, /keyUsage has tag 0x05, expected 0x03/);
  });
});

describe('the clock', () => {
  test('now returning undefined skips the validity periods, and nothing else', async () => {
    const unknownTime = () => undefined;
    const verify = certificateVerifier({ crypto, trustAnchors: [pki.caDer], now: unknownTime });
    const old = await pki.issue({
      commonName: 'dev-old',
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const young = await pki.issue({ commonName: 'dev-new', notBefore: new Date(Date.now() + DAY) });
    assert.equal(verify(old.der).deviceId, 'dev-old');
    assert.equal(verify(young.der).deviceId, 'dev-new');
    const oldCa = await makeCa({ notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const oldPki = await makePki({ ca: oldCa, deviceIds: ['dev-1'] });
    const verifyOld = certificateVerifier({ crypto, trustAnchors: [oldCa.der], now: unknownTime });
    assert.equal(verifyOld(oldPki.devices.get('dev-1')!.der).deviceId, 'dev-1');
    // every other rule still holds
    const other = await makePki({ caName: 'evil CA', deviceIds: ['dev-1'] });
    refuses(() => verify(other.devices.get('dev-1')!.der), /not a trust anchor/);
    refuses(() => verify(pki.cloud.der), /does not include digitalSignature/);
    // the default clock is Date.now
    refuses(() => certificateVerifier({ crypto, trustAnchors: [pki.caDer] })(old.der), /has expired/);
  });

  test('the validity period is inclusive at both ends', async () => {
    const notBefore = Math.floor(Date.now() / 1000) * 1000;
    const notAfter = notBefore + 3600_000;
    const cert = await pki.issue({ commonName: 'dev-t', notBefore: new Date(notBefore), notAfter: new Date(notAfter) });
    for (const t of [notBefore, notAfter]) bothAccept(cert.der, 'dev-t', [pki.caDer], t);
    bothRefuse(cert.der, /is not yet valid/, [pki.caDer], notBefore - 1);
    bothRefuse(cert.der, /has expired/, [pki.caDer], notAfter + 1);
  });

  test('a clock that returns something else is a plain Error', () => {
    const der = pki.devices.get('dev-1')!.der;
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, '2024', new Date()]) {
      const verify = certificateVerifier({ crypto, trustAnchors: [pki.caDer], now: () => value as unknown as number });
      assert.throws(
        () => verify(der),
        (e: unknown) => !(e instanceof CoseError) && /clock must return epoch milliseconds/.test((e as Error).message),
      );
    }
  });
});

describe('trust anchors are checked when the verifier is made (plain Error)', () => {
  test('not a CA, keyUsage without keyCertSign, garbage, none', async () => {
    const plain = (fn: () => unknown, message: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof Error && !(e instanceof CoseError) && message.test(e.message));
    const notCa = await makeCa({ name: 'not a CA', isCa: false });
    plain(
      () => certificateVerifier({ crypto, trustAnchors: [notCa.der] }),
      /is not a CA certificate: basicConstraints cA is false/,
    );
    plain(
      () => certificateVerifier({ crypto, trustAnchors: [pki.devices.get('dev-1')!.der] }),
      /is not a CA certificate/,
    );
    const noCertSign = await caWithoutKeyCertSign();
    plain(() => certificateVerifier({ crypto, trustAnchors: [noCertSign] }), /keyUsage without keyCertSign/);
    assert.throws(
      () => deviceCertificateVerifier({ crypto, trustAnchors: [noCertSign] }),
      /keyUsage without keyCertSign/,
    );
    plain(
      () => certificateVerifier({ crypto, trustAnchors: [Uint8Array.of(1, 2, 3)] }),
      /trust anchor 0: bad-certificate/,
    );
    plain(
      () => certificateVerifier({ crypto, trustAnchors: [pki.caDer, new Uint8Array(0)] }),
      /trust anchor 1: .*empty/,
    );
    plain(() => certificateVerifier({ crypto, trustAnchors: [] }), /at least one trust anchor/);
    const p384 = await pki.issue({ commonName: 'ca-384', curve: 'P-384', isCa: true, keyUsage: null });
    plain(() => certificateVerifier({ crypto, trustAnchors: [p384.der] }), /EC P-384/);
  });
});

describe('verifyIssuedBy', () => {
  test('name and signature', async () => {
    const ca = parseCertificate(pki.caDer);
    const dev = parseCertificate(pki.devices.get('dev-1')!.der);
    for (const provider of providers) verifyIssuedBy(provider, dev, ca);
    verifyIssuedBy(crypto, ca, ca); // self-signed
    refuses(() => verifyIssuedBy(crypto, ca, dev), /is issued by CN=cose-flow test CA, not by CN=dev-1/);
    const impostor = await makeCa({ name: pki.ca.name });
    refuses(() => verifyIssuedBy(crypto, dev, parseCertificate(impostor.der)), /signature does not verify/);
  });
});

describe('verifyCloudCertificate', () => {
  test('returns the cloud key of a certificate the CA issued for key agreement', async () => {
    for (const provider of providers) {
      assert.ok(equal(verifyCloudCertificate(provider, pki.cloud.der, pki.caDer, Date.now()), pki.cloud.publicKey));
      assert.ok(equal(verifyCloudCertificate(provider, pki.cloud.der, pki.caDer), pki.cloud.publicKey));
    }
    const noKu = await pki.issue({ commonName: 'cloud-2', keyUsage: null });
    assert.ok(equal(verifyCloudCertificate(crypto, noKu.der, pki.caDer, Date.now()), noKu.publicKey));
  });

  test('refuses', async () => {
    refuses(
      () => verifyCloudCertificate(crypto, pki.devices.get('dev-1')!.der, pki.caDer),
      /keyUsage \(digitalSignature\) does not include keyAgreement/,
    );
    refuses(() => verifyCloudCertificate(crypto, pki.caDer, pki.caDer), /is a CA certificate/);
    const other: TestCa = await makeCa({ name: 'evil CA' });
    const evil = await makePki({ ca: other, deviceIds: [] });
    refuses(() => verifyCloudCertificate(crypto, evil.cloud.der, pki.caDer), /issued by CN=evil CA, not by/);
    const impostor = await makePki({ caName: pki.ca.name, deviceIds: [] });
    refuses(() => verifyCloudCertificate(crypto, impostor.cloud.der, pki.caDer), /signature does not verify/);
    const old = await pki.issue({
      commonName: 'cloud-old',
      keyUsage: x509.KeyUsageFlags.keyAgreement,
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    refuses(() => verifyCloudCertificate(crypto, old.der, pki.caDer, Date.now()), /has expired/);
    assert.ok(equal(verifyCloudCertificate(crypto, old.der, pki.caDer), old.publicKey), 'time unknown: accepted');
    refuses(
      () => verifyCloudCertificate(crypto, new Uint8Array(10), pki.caDer),
      /not a certificate this device accepts/,
    );
    assert.throws(
      () => verifyCloudCertificate(crypto, pki.cloud.der, pki.cloud.der),
      (e: unknown) =>
        !(e instanceof CoseError) && /the CA certificate .* is not a CA certificate/.test((e as Error).message),
    );
  });
});

describe('property: malformed input only raises typed errors', () => {
  type Mutation = { kind: 'set' | 'xor' | 'delete' | 'insert' | 'truncate'; at: number; value: number };
  const mutation: fc.Arbitrary<Mutation> = fc.record({
    kind: fc.constantFrom('set', 'xor', 'delete', 'insert', 'truncate'),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  });

  function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
    let bytes = Array.from(input);
    for (const m of mutations) {
      const at = bytes.length === 0 ? 0 : m.at % bytes.length;
      if (m.kind === 'set') bytes[at] = m.value;
      else if (m.kind === 'xor') bytes[at] = (bytes[at] ?? 0) ^ (1 << (m.value & 7));
      else if (m.kind === 'delete') bytes.splice(at, 1);
      else if (m.kind === 'insert') bytes.splice(at, 0, m.value);
      else bytes = bytes.slice(0, at);
    }
    return Uint8Array.from(bytes);
  }

  function typed(fn: () => unknown): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof DerError) return;
      if (e instanceof CoseError && e.reason === 'bad-certificate') return;
      throw e;
    }
  }

  test('random bytes', () => {
    const verify = certificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        typed(() => readDer(bytes));
        typed(() => parseCertificate(bytes));
        typed(() => parseCsr(crypto, bytes));
        typed(() => verify(bytes));
      }),
      { numRuns: RUNS },
    );
  });

  test('mutated certificates and requests; a changed certificate is never accepted', () => {
    const verify = certificateVerifier({ crypto, trustAnchors: [pki.caDer] });
    const certificate = pki.devices.get('dev-1')!.der;
    const csr = makeCsr(crypto, crypto.p256Generate(), 'dev-1');
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (mutations, ofCertificate) => {
        const bytes = mutate(ofCertificate ? certificate : csr, mutations);
        typed(() => readDer(bytes));
        typed(() => parseCertificate(bytes));
        typed(() => parseCsr(crypto, bytes));
        if (ofCertificate && !equal(bytes, certificate)) {
          assert.throws(
            () => verify(bytes),
            (e: unknown) => isBadCertificate(e),
          );
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('DER-shaped random trees', () => {
    const node: fc.Memo<Uint8Array> = fc.memo((depth) =>
      depth <= 1
        ? fc
            .tuple(fc.integer({ min: 1, max: 0x1e }), fc.uint8Array({ maxLength: 20 }))
            .map(([tag, content]) => Uint8Array.of(tag, content.length, ...content))
        : fc
            .tuple(fc.constantFrom(0x30, 0x31, 0xa0, 0xa3), fc.array(node(depth - 1), { maxLength: 4 }))
            .map(([tag, children]) => {
              const content = children.flatMap((c) => Array.from(c)).slice(0, 255);
              return content.length < 128
                ? Uint8Array.of(tag, content.length, ...content)
                : Uint8Array.of(tag, 0x81, content.length, ...content);
            }),
    );
    fc.assert(
      fc.property(node(5), (bytes) => {
        typed(() => readDer(bytes));
        typed(() => parseCertificate(bytes));
        typed(() => parseCsr(crypto, bytes));
      }),
      { numRuns: RUNS },
    );
  });
});
