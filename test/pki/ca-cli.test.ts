/**
 * `cose-flow ca …` and `cose-flow cloud keygen` run in this process through `main`, in a temporary
 * data directory (the first `ca init` and the first `cloud keygen` run the launcher as a child
 * process: one smoke test of each command); what they write is checked with OpenSSL and with the
 * project's verifiers. OpenSSL is required: without it these tests fail, they are not skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../cli/main.js';
import { parseCertificate } from '../../cloud/pki/certificate.js';
import { loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { readCertificates } from '../../cloud/pki/files.js';
import { revocationChecker } from '../../cloud/pki/revocation.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { x509 } from '../../cloud/pki/x509.js';
import { nodeCrypto } from '../../node/crypto.js';
import { equal, fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import { CoseError } from '../../src/cose/errors.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import type { P256PrivateKey } from '../../src/crypto/provider.js';
import { certificateVerifier } from '../../src/pki/certificate.js';
import { makeCsr } from '../../src/pki/csr.js';
import { enrollmentKey } from '../../src/profile/enrollment.js';
import { cloudKeyId } from '../../src/profile/session.js';
import { type CliRun, capturingIo, runCli, spawnCli } from '../fixtures/cli-io.js';

const device = nobleCrypto(); // the device's crypto: CSRs are made as the firmware makes them
const host = nodeCrypto();

let tmp: string;
let data: string;

type Run = CliRun;

/** `cose-flow ARGS… --data-dir DATA` in this process. */
function cli(...args: string[]): Promise<Run> {
  return runCli([...args, '--data-dir', data]);
}

/** `node bin/cose-flow.js ARGS… --data-dir DATA`: the launcher as a child process. */
function spawned(...args: string[]): Run {
  return spawnCli([...args, '--data-dir', data], { cwd: tmp });
}

function ok(run: Run, what: string): Run {
  assert.equal(run.status, 0, `${what}: exit ${run.status}\n${run.stderr}`);
  return run;
}

/** Exit 1 with `cose-flow … CODE: …` matching `message` on stderr. */
function refused(run: Run, code: string, message: RegExp): void {
  assert.equal(run.status, 1, `expected a refusal, got exit ${run.status}\n${run.stdout}${run.stderr}`);
  assert.match(run.stderr, new RegExp(`^cose-flow ca issue: ${code}: `));
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
}

function openssl(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { cwd: tmp, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

let files = 0;
function file(name: string, content: string | Uint8Array): string {
  const path = join(tmp, `${files++}-${name}`);
  writeFileSync(path, content);
  return path;
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function csrPem(key: P256PrivateKey, deviceId: string): string {
  return x509.PemConverter.encode(makeCsr(device, key, deviceId), 'CERTIFICATE REQUEST');
}

const at = (name: string) => join(data, name);

before(() => {
  const probe = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error('!!! openssl is not on PATH: the CA command tests need it (apt-get install openssl) !!!');
  }
  tmp = mkdtempSync(join(tmpdir(), 'cose-flow-ca-cli-'));
  data = join(tmp, 'data');
});
after(() => {
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

// The tests run in order and build on each other: init → keygen → issue → revoke.
describe('cose-flow ca / cloud keygen', () => {
  const key1 = device.p256Generate();
  let serial1 = '';

  test('ca init: CA certificate, key (0600) and an empty CRL; a second init needs --force', async () => {
    const run = ok(spawned('ca', 'init', '--name', 'cli test CA', '--days', '30'), 'ca init (the launcher)');
    const fingerprint = /SHA-256 fingerprint: ([0-9a-f]{64})/.exec(run.stdout);
    assert.ok(fingerprint, run.stdout);
    const [caDer] = readCertificates(at('ca.pem'));
    assert.equal(fingerprint[1], toHex(host.sha256(caDer!)));
    assert.equal(mode(at('ca.key')), 0o600);
    assert.equal(mode(at('ca.pem')), 0o644);
    const text = openssl('x509', '-in', at('ca.pem'), '-noout', '-text');
    assert.equal(text.status, 0, text.out);
    assert.match(text.out, /Subject: CN = cli test CA/);
    assert.match(text.out, /CA:TRUE/);
    assert.match(text.out, /Certificate Sign, CRL Sign/);
    assert.equal(openssl('pkey', '-in', at('ca.key'), '-noout').status, 0, 'openssl reads the PKCS#8 key');
    const crl = openssl('crl', '-in', at('crl.pem'), '-noout', '-text');
    assert.equal(crl.status, 0, crl.out);
    assert.match(crl.out, /No Revoked Certificates/);

    const before = readFileSync(at('ca.pem'), 'utf8');
    const again = await cli('ca', 'init');
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already has a CA .*--force/);
    assert.equal(readFileSync(at('ca.pem'), 'utf8'), before, 'the CA is left alone');
  });

  test('cloud keygen: key 0600, certificate from the CA, key id printed; --rotate keeps the old key', async () => {
    const first = ok(spawned('cloud', 'keygen'), 'cloud keygen (the launcher)');
    const kid1 = first.stdout.trim();
    assert.match(kid1, /^[0-9a-f]{16}$/);
    assert.equal(mode(at('cloud.key')), 0o600);
    const [cloudDer] = readCertificates(at('cloud.pem'));
    const cloud = parseCertificate(cloudDer!);
    assert.equal(
      toHex(cloudKeyId(host, cloud.p256PublicKey!)),
      kid1,
      'the printed id is cloudKeyId of the certificate',
    );
    const verify = openssl('verify', '-x509_strict', '-CAfile', at('ca.pem'), at('cloud.pem'));
    assert.equal(verify.status, 0, verify.out);
    assert.match(openssl('x509', '-in', at('cloud.pem'), '-noout', '-text').out, /Key Agreement/);

    const refusedAgain = await cli('cloud', 'keygen');
    assert.equal(refusedAgain.status, 1);
    assert.match(refusedAgain.stderr, /already has a cloud key .*--rotate/);

    const second = ok(await cli('cloud', 'keygen', '--rotate', '--days', '10'), 'cloud keygen --rotate');
    const kid2 = second.stdout.trim();
    assert.notEqual(kid2, kid1);
    assert.match(second.stderr, new RegExp(`retired cloud key ${kid1}`));
    assert.equal(mode(join(data, 'cloud-keys', 'retired', `${kid1}.key`)), 0o600);
    const keys = loadCloudKeys(host, data);
    assert.deepEqual([...keys.keys()].sort(), [kid1, kid2].sort());
    assert.equal(keys.get(kid2)!.current, true);
    assert.equal(keys.get(kid1)!.current, false);
    assert.ok(equal(keys.get(kid1)!.certificate, cloudDer!), 'the retired pair is the first one');
    // The retired key still works: it agrees on the same secret as its public key.
    const peer = host.p256Generate();
    assert.ok(
      equal(host.ecdhP256(keys.get(kid1)!.key, peer.publicKey), host.ecdhP256(peer, keys.get(kid1)!.publicKey)),
    );
  });

  test('ca issue: a CSR made by the device code → a certificate openssl verifies against ca.pem', async () => {
    const csrFile = file('dev-1.csr.pem', csrPem(key1, 'dev-1'));
    const req = openssl('req', '-in', csrFile, '-noout', '-verify');
    assert.equal(req.status, 0, req.out);
    assert.match(req.out, /verify OK|Certificate request self-signature verify OK/);

    const run = ok(await cli('ca', 'issue', '--csr', csrFile, '--days', '20'), 'ca issue');
    assert.match(run.stdout, /^-----BEGIN CERTIFICATE-----/);
    assert.match(run.stderr, /device dev-1: certificate issued; serial [0-9a-f]+/);
    const certFile = file('dev-1.pem', run.stdout);
    const verify = openssl('verify', '-x509_strict', '-CAfile', at('ca.pem'), certFile);
    assert.equal(verify.status, 0, verify.out);
    const text = openssl('x509', '-in', certFile, '-noout', '-text').out;
    assert.match(text, /Subject: CN = dev-1/);
    assert.match(text, /Digital Signature/);
    assert.match(text, /CA:FALSE/);

    const [der] = readCertificates(certFile);
    const cert = parseCertificate(der!);
    serial1 = cert.serialHex;
    const days = (cert.notAfter.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 19 && days <= 20, `valid for 20 days, got ${days}`);
    // Both verifiers accept it for exactly this key and device id.
    const onHost = deviceCertificateVerifier({ crypto: host, trustAnchors: readCertificates(at('ca.pem')) })(der!);
    assert.equal(onHost.deviceId, 'dev-1');
    assert.ok(equal(onHost.publicKey, key1.publicKey));
    const onDevice = certificateVerifier({ crypto: device, trustAnchors: readCertificates(at('ca.pem')) })(der!);
    assert.equal(onDevice.deviceId, 'dev-1');

    // The record and files of the data directory.
    assert.equal(readFileSync(at('devices/dev-1/cert.pem'), 'utf8').trim(), run.stdout.trim());
    assert.ok(existsSync(at('devices/dev-1/csr.pem')));
    const record = JSON.parse(readFileSync(at('devices/dev-1/record.json'), 'utf8'));
    assert.equal(record.serial, serial1);
    assert.equal(record.publicKey, toHex(key1.publicKey));
    assert.equal(record.enrollment.mode, 'offline');
    assert.equal(record.notAfter, cert.notAfter.toISOString());
  });

  test('ca issue again with the same key: the same certificate (idempotent); DER in and out', async () => {
    const derCsr = file('dev-1.csr.der', makeCsr(device, key1, 'dev-1'));
    const out = join(tmp, 'dev-1.cer');
    const run = ok(await cli('ca', 'issue', '--csr', derCsr, '--out', out, '--der'), 'ca issue --der');
    assert.match(run.stdout, /already issued for this key \(unchanged\)/);
    assert.match(run.stdout, new RegExp(`serial ${serial1}`));
    const text = openssl('x509', '-inform', 'DER', '-in', out, '-noout', '-serial', '-subject');
    assert.equal(text.status, 0, text.out);
    assert.equal(/serial=([0-9A-F]+)/.exec(text.out)![1]!.toLowerCase(), serial1);
  });

  test('ca issue refuses bad requests with a clear reason', async () => {
    const good = makeCsr(device, key1, 'dev-9');
    // A forged request: the CN changed after signing (dev-9 → dev-8), the self-signature fails.
    const forged = Uint8Array.from(good);
    const at9 = Buffer.from(forged).indexOf(Buffer.from('dev-9'));
    forged.set(utf8Encode('dev-8'), at9);
    refused(await cli('ca', 'issue', '--csr', file('forged.der', forged)), 'bad-csr', /self-signature does not verify/);

    const opensslKey = file('k256.pem', '');
    assert.equal(openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', opensslKey).status, 0);
    const req = (subject: string, key = opensslKey) => {
      const out = join(tmp, `${files++}-req.pem`);
      const r = openssl('req', '-new', '-key', key, '-subj', subject, '-out', out);
      assert.equal(r.status, 0, r.out);
      return out;
    };
    // An openssl-made P-256 request for a valid id is fine …
    assert.match(ok(await cli('ca', 'issue', '--csr', req('/CN=openssl-dev')), 'openssl CSR').stderr, /openssl-dev/);
    // … but not with another subject, no CN, an invalid device id, or a P-384 key.
    refused(
      await cli('ca', 'issue', '--csr', req('/O=acme/CN=dev-7')),
      'bad-csr',
      /exactly CN=<device id>.*2 attributes/,
    );
    refused(await cli('ca', 'issue', '--csr', req('/O=acme')), 'bad-csr', /exactly CN=<device id>.*no CN/);
    refused(await cli('ca', 'issue', '--csr', req('/CN=dev 7')), 'bad-csr', /CN "dev 7" is not a valid device id/);
    const p384 = file('k384.pem', '');
    assert.equal(openssl('ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', p384).status, 0);
    refused(await cli('ca', 'issue', '--csr', req('/CN=dev-7', p384)), 'bad-csr', /EC P-384; only EC P-256/);
    // Not a request at all.
    refused(await cli('ca', 'issue', '--csr', at('ca.pem')), 'bad-csr', /holds 0 CERTIFICATE REQUEST blocks/);
    refused(await cli('ca', 'issue', '--csr', file('garbage.der', fromHex('3003020100ff'))), 'bad-csr', /.+/);
    assert.ok(!existsSync(at('devices/dev-7')) && !existsSync(at('devices/dev-8')), 'nothing recorded');
  });

  test('ca issue: another key for an enrolled device id is a key-conflict unless --allow-rekey', async () => {
    const key2 = device.p256Generate();
    const csrFile = file('dev-1-key2.csr.pem', csrPem(key2, 'dev-1'));
    refused(await cli('ca', 'issue', '--csr', csrFile), 'key-conflict', /device dev-1 is enrolled with another key/);
    const run = ok(await cli('ca', 'issue', '--csr', csrFile, '--allow-rekey'), 'ca issue --allow-rekey');
    assert.match(run.stderr, new RegExp(`new key \\(previous certificate ${serial1} revoked as superseded\\)`));
    const [der] = readCertificates(file('dev-1-2.pem', run.stdout));
    const cert = parseCertificate(der!);
    assert.notEqual(cert.serialHex, serial1);
    assert.ok(equal(cert.p256PublicKey!, key2.publicKey));
    const revoked = JSON.parse(readFileSync(at('revoked.json'), 'utf8'));
    assert.deepEqual(
      revoked.map((e: { serial: string; reason: string }) => [e.serial, e.reason]),
      [[serial1, 'superseded']],
    );
    const record = JSON.parse(readFileSync(at('devices/dev-1/record.json'), 'utf8'));
    assert.equal(record.serial, cert.serialHex);
    assert.deepEqual(
      record.previous.map((p: { serial: string }) => p.serial),
      [serial1],
    );
    // The old key now gets nothing: its certificate is revoked.
    refused(
      await cli('ca', 'issue', '--csr', file('dev-1-key1.csr.pem', csrPem(key1, 'dev-1'))),
      'key-conflict',
      /another key/,
    );
  });

  test('ca revoke: the cloud verifier refuses the certificate, the CRL lists it, ca list shows it', async () => {
    const [der] = readCertificates(at('devices/dev-1/cert.pem'));
    const serial = parseCertificate(der!).serialHex;
    const verify = deviceCertificateVerifier({
      crypto: host,
      trustAnchors: readCertificates(at('ca.pem')),
      isRevoked: revocationChecker(data),
    });
    assert.equal(verify(der!).deviceId, 'dev-1', 'accepted before the revoke');

    const run = ok(await cli('ca', 'revoke', '--device', 'dev-1', '--reason', 'keyCompromise'), 'ca revoke');
    assert.match(run.stdout, new RegExp(`revoked serial ${serial} \\(device dev-1, keyCompromise\\)`));
    assert.throws(
      () => verify(der!),
      (e: unknown) => e instanceof CoseError && e.reason === 'bad-certificate' && /has been revoked/.test(e.message),
      'the running verifier sees the new revoked.json',
    );
    const crl = openssl('crl', '-in', at('crl.pem'), '-noout', '-text');
    assert.equal(crl.status, 0, crl.out);
    assert.match(crl.out, new RegExp(`Serial Number: ${serial.toUpperCase()}`));
    assert.match(crl.out, new RegExp(`Serial Number: ${serial1.toUpperCase()}`));
    assert.match(crl.out, /Key Compromise/);
    const certFile = file('revoked.pem', x509.PemConverter.encode(der!, 'CERTIFICATE'));
    const check = openssl('verify', '-crl_check', '-CAfile', at('ca.pem'), '-CRLfile', at('crl.pem'), certFile);
    assert.notEqual(check.status, 0);
    assert.match(check.out, /certificate revoked/);

    const again = ok(await cli('ca', 'revoke', '--serial', serial.toUpperCase()), 'revoke twice');
    assert.match(again.stdout, /was already revoked/);
    const listed = JSON.parse(ok(await cli('ca', 'list', '--json'), 'ca list').stdout) as {
      deviceId: string;
      status: string;
      serial: string;
    }[];
    const dev1 = listed.find((d) => d.deviceId === 'dev-1')!;
    assert.equal(dev1.status, 'revoked');
    assert.equal(dev1.serial, serial);
    assert.equal(listed.find((d) => d.deviceId === 'openssl-dev')!.status, 'valid');
    assert.match(ok(await cli('ca', 'list'), 'ca list').stdout, /^dev-1 +[0-9a-f]+ +\S+ +revoked \(keyCompromise\)/m);

    const unknown = await cli('ca', 'revoke', '--device', 'nobody');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no certificate was issued to device nobody/);
  });

  test('ca allow and ca batch: allow-list, batch secret (0600) and per-device keys', async () => {
    ok(await cli('ca', 'allow', 'dev-a', 'dev-b'), 'ca allow');
    ok(await cli('ca', 'allow', 'dev-b', 'dev-c'), 'ca allow again');
    const list = readFileSync(at('enroll/allow-list'), 'utf8');
    assert.deepEqual(
      list.split('\n').filter((l) => l !== '' && !l.startsWith('#')),
      ['dev-a', 'dev-b', 'dev-c'],
    );
    assert.equal((await cli('ca', 'allow', 'bad/id')).status, 2, 'an invalid device id is a usage error');

    ok(await cli('ca', 'batch', 'create', 'line-7'), 'batch create');
    const secretFile = at('enroll/batches/line-7.secret');
    assert.equal(mode(secretFile), 0o600);
    const secret = fromHex(readFileSync(secretFile, 'utf8').trim());
    assert.equal(secret.length, 32);
    assert.equal((await cli('ca', 'batch', 'create', 'line-7')).status, 1, 'a batch is never replaced');
    const key = ok(await cli('ca', 'batch', 'key', 'line-7', 'dev-a'), 'batch key').stdout.trim();
    assert.equal(key, toHex(enrollmentKey(device, secret, 'dev-a')));
    assert.equal((await cli('ca', 'batch', 'key', 'no-such-batch', 'dev-a')).status, 1);
  });

  test('usage errors exit 2 (in process)', async () => {
    const run = async (...args: string[]) => {
      const io = capturingIo();
      const status = await main([...args, '--data-dir', data], io);
      return { status, stdout: io.out, stderr: io.err };
    };
    assert.equal((await run('ca', 'issue')).status, 2);
    assert.match((await run('ca', 'issue')).stderr, /--csr FILE is required/);
    assert.equal((await run('ca', 'issue', '--csr', 'x', '--der')).status, 2);
    assert.equal((await run('ca', 'frobnicate')).status, 2);
    assert.equal((await run('ca', 'revoke')).status, 2);
    assert.equal((await run('ca', 'serve')).status, 2);
    assert.equal((await run('cloud', 'keygen', '--days', 'soon')).status, 2);
    assert.equal((await run('cloud', 'rotate')).status, 2);
    assert.match((await run('ca', '--help')).stdout, /Usage: cose-flow ca SUBCOMMAND/);
    assert.match((await run('cloud', '--help')).stdout, /Usage: cose-flow cloud keygen/);
  });
});
