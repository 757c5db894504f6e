/**
 * `cose-flow inspect` on real key and data messages, run in this process through `main` (from the
 * temporary directory, so the file names print as given); one smoke test runs the launcher as a
 * child process with a real standard input pipe.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeCrypto } from '../../node/crypto.js';
import { toHex, utf8Encode } from '../../src/bytes.js';
import { encode } from '../../src/cbor/index.js';
import { makeKeyMessage, newSessionKey, type SessionKey, sealData } from '../../src/profile/index.js';
import { type CliRun, runCli, spawnCli } from '../fixtures/cli-io.js';
import { makePki, type Pki } from '../fixtures/pki.js';

const crypto = nodeCrypto();

interface Run extends CliRun {
  /** stdout parsed as JSON lines. */
  json: () => Record<string, unknown>[];
}

function withJson(r: CliRun): Run {
  return {
    ...r,
    json: () =>
      r.stdout
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** `cose-flow ARGS…` in this process, in `dir`. */
async function cli(args: string[], input?: Uint8Array): Promise<Run> {
  return withJson(await runCli(args, input));
}

/** `node bin/cose-flow.js ARGS…` as a child process in `dir`. */
function spawned(args: string[], input?: Uint8Array): Run {
  return withJson(spawnCli(args, { cwd: dir, ...(input === undefined ? {} : { input }) }));
}

let dir: string;
let pki: Pki;
let session: SessionKey;
let keyMessage: Uint8Array;
let data0: Uint8Array;
let data1: Uint8Array;
const payload0 = encode(
  new Map<unknown, unknown>([
    ['t', 21.5],
    ['n', 3],
  ]),
);
const payload1 = utf8Encode('hello'); // not CBOR

function file(name: string, bytes: Uint8Array | string): string {
  writeFileSync(join(dir, name), bytes);
  return name;
}

function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice();
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

const startDir = process.cwd();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cose-flow-inspect-'));
  process.chdir(dir); // the in-process runs name their files relative to it, as a user would
  pki = await makePki({ deviceIds: ['dev-1'] });
  const dev = pki.devices.get('dev-1')!;
  session = newSessionKey(crypto, 1);
  keyMessage = makeKeyMessage(crypto, {
    deviceId: 'dev-1',
    deviceKey: crypto.p256Import(dev.privateScalar),
    deviceCertificate: dev.der,
    cloudPublicKey: pki.cloud.publicKey,
    session,
  });
  data0 = sealData(crypto, session, 0, payload0);
  data1 = sealData(crypto, session, 1, payload1);
  file('ca.pem', pki.caPem);
  file('cloud-key.pem', pki.cloud.keyPem);
  file('session.cbor', keyMessage);
  file('data-0.cbor', data0);
  file('data-1.cbor', data1);
  file('data-0.hex', `${toHex(data0).replace(/(.{32})/g, '$1\n')}\n`);
  file('bad-sig.cbor', flipped(keyMessage, keyMessage.length - 1));
  file('bad-data.cbor', flipped(data0, data0.length - 1));
  file('garbage.bin', Uint8Array.from([0xff, 0xfe, 0x00, 0x41, 0x42]));
  file('text.txt', 'hello world, not a message\n');
  file('other-ca.pem', (await makePki({ caName: 'other CA', deviceIds: [] })).caPem);
});

after(() => {
  process.chdir(startDir);
  rmSync(dir, { recursive: true, force: true });
});

describe('cose-flow inspect: diagnostic notation', () => {
  test('a key message and a data message without keys: named headers, nested COSE_Encrypt decoded', async () => {
    const r = await cli(['inspect', 'session.cbor', 'data-0.cbor']);
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout;
    assert.match(out, /== session\.cbor: key message \(COSE_Sign1\)/);
    assert.match(out, /18\(\[/);
    assert.ok(out.includes('1 /alg/: -7 /ES256/'), out);
    assert.ok(out.includes('3 /content type/: 96 /COSE_Encrypt/'));
    assert.ok(out.includes("33 /x5chain/: h'"));
    assert.ok(out.includes('CN=dev-1, issuer CN=cose-flow test CA'));
    assert.ok(out.includes('/protected/ << {'));
    assert.ok(out.includes('/payload/ << /COSE_Encrypt/ 96(['), 'the COSE_Encrypt payload is decoded');
    assert.ok(out.includes('1 /alg/: 1 /A128GCM/'));
    assert.ok(out.includes("4 /kid/: h'01' /session kid, counter 1/"));
    assert.ok(out.includes('1 /alg/: -29 /ECDH-ES + A128KW/'));
    assert.ok(out.includes('-1 /ephemeral key/: {'));
    assert.ok(out.includes('1 /kty/: 2 /EC2/'));
    assert.ok(out.includes('-1 /crv/: 1 /P-256/'));
    assert.ok(out.includes("-2 /x/: h'"));
    assert.ok(out.includes('/cloud key id/'));
    assert.ok(out.includes('/wrapped CEK/'));
    assert.ok(out.includes("/signature/ h'"));
    assert.match(out, /valid: {7}yes \(not verified with a key\)/);
    assert.match(out, /certificate read but NOT verified \(no --ca\)/);
    assert.match(out, /== data-0\.cbor: data message \(COSE_Encrypt0\)/);
    assert.ok(out.includes('/COSE_Encrypt0/ 16(['));
    assert.ok(out.includes("6 /Partial IV/: h'00' /seq 0/"));
    assert.match(out, /\/ciphertext\/ h'[0-9a-f]+' \/\d+ bytes incl\. the 16-byte GCM tag\//);
    assert.doesNotMatch(out, /session key:/, 'nothing was opened');
  });

  test('text output with every key: device id, kid, payload; the session key only with --reveal-keys', async () => {
    const args = ['inspect', '--ca', 'ca.pem', '--cloud-key', 'cloud-key.pem', 'session.cbor', 'data-0.cbor'];
    const hidden = await cli(args);
    assert.equal(hidden.status, 0, hidden.stderr);
    assert.match(hidden.stdout, /device: {6}dev-1/);
    assert.match(hidden.stdout, /kid: {9}01 \(counter 1\)/);
    assert.match(hidden.stdout, /session key: \(hidden; --reveal-keys prints it\)/);
    // (cbor-x writes 21.5 as a double: `_3` marks the longer-than-needed float encoding)
    assert.match(hidden.stdout, /payload: {5}\{"n": 3, "t": 21\.5(_3)?\}/);
    assert.ok(!hidden.stdout.includes(toHex(session.key)), 'the session key is not printed');
    const shown = await cli([...args.slice(0, 1), '--reveal-keys', ...args.slice(1)]);
    assert.ok(shown.stdout.includes(`session key: ${toHex(session.key)}`));
    assert.ok(shown.stdout.includes(`Base IV:     ${toHex(session.baseIv)}`));
  });
});

describe('cose-flow inspect --json', () => {
  test('key message then data messages: the session learned from the key message opens them', async () => {
    const r = await cli([
      'inspect',
      '--json',
      '--ca',
      'ca.pem',
      '--cloud-key',
      'cloud-key.pem',
      '--reveal-keys',
      'session.cbor',
      'data-0.cbor',
      'data-1.cbor',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const [s, d0, d1, ...rest] = r.json();
    assert.equal(rest.length, 0);
    assert.equal(s!.type, 'session');
    assert.equal(s!.valid, true);
    assert.equal(s!.verified, true);
    assert.equal(s!.opened, true);
    assert.equal(s!.deviceId, 'dev-1');
    assert.equal(s!.kid, '01');
    assert.equal(s!.kidCounter, 1);
    assert.equal(s!.sessionKey, toHex(session.key));
    assert.equal(s!.baseIv, toHex(session.baseIv));
    assert.equal(s!.cloudKid, toHex(crypto.sha256(pki.cloud.publicKey).slice(0, 8)));
    assert.equal((s!.certificate as { commonName: string }).commonName, 'dev-1');
    assert.equal(s!.reason, undefined);
    assert.equal(d0!.type, 'data');
    assert.equal(d0!.valid, true);
    assert.equal(d0!.kid, '01');
    assert.equal(d0!.seq, 0);
    assert.equal(d0!.payloadHex, toHex(payload0));
    assert.match(String(d0!.payloadDiagnostic), /"t": 21\.5/);
    assert.equal(d0!.sessionFrom, 'session.cbor');
    assert.equal(d0!.sessionKey, toHex(session.key));
    assert.equal(d1!.seq, 1);
    assert.equal(d1!.payloadHex, toHex(payload1));
    assert.equal(d1!.payloadDiagnostic, undefined, 'not CBOR');
  });

  test('no session key or Base IV in the output without --reveal-keys', async () => {
    const r = await cli([
      'inspect',
      '--json',
      '--ca',
      'ca.pem',
      '--cloud-key',
      'cloud-key.pem',
      'session.cbor',
      'data-0.cbor',
    ]);
    assert.equal(r.status, 0, r.stderr);
    for (const line of r.json()) {
      assert.equal(line.valid, true);
      assert.equal(line.sessionKey, undefined);
      assert.equal(line.baseIv, undefined);
    }
    assert.ok(!r.stdout.includes(toHex(session.key)));
  });

  test('--session-key and --base-iv open a data message', async () => {
    const r = await cli([
      'inspect',
      '--json',
      '--session-key',
      toHex(session.key),
      '--base-iv',
      toHex(session.baseIv),
      'data-1.cbor',
      'data-0.hex',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const [d1, d0] = r.json();
    assert.equal(d1!.seq, 1);
    assert.equal(d1!.kid, '01');
    assert.equal(d1!.payloadHex, toHex(payload1));
    assert.equal(d1!.sessionFrom, '--session-key');
    assert.equal(d0!.seq, 0, 'hex text input');
    assert.equal(d0!.payloadHex, toHex(payload0));
  });

  test('without keys: valid structure, not verified; --require-verified makes that a failure', async () => {
    const r = await cli(['inspect', '--json', 'session.cbor', 'data-0.cbor']);
    assert.equal(r.status, 0, r.stderr);
    const [s, d] = r.json();
    assert.deepEqual(
      [s!.type, s!.valid, s!.verified, s!.opened, s!.deviceId],
      ['session', true, false, false, undefined],
    );
    assert.equal(s!.kid, '01');
    assert.deepEqual(
      [d!.type, d!.valid, d!.verified, d!.kid, d!.seq, d!.payloadHex],
      ['data', true, false, '01', 0, undefined],
    );
    assert.equal((await cli(['inspect', '--json', '--require-verified', 'data-0.cbor'])).status, 1);
    const withKey = ['--session-key', toHex(session.key), '--base-iv', toHex(session.baseIv)];
    assert.equal((await cli(['inspect', '--json', '--require-verified', ...withKey, 'data-0.cbor'])).status, 0);
  });

  test('tampered, garbage and untrusted messages: a line each, the library reason, exit 1', async () => {
    const r = await cli([
      'inspect',
      '--json',
      '--ca',
      'ca.pem',
      '--session-key',
      toHex(session.key),
      '--base-iv',
      toHex(session.baseIv),
      'bad-sig.cbor',
      'data-0.cbor',
      'bad-data.cbor',
      'garbage.bin',
      'text.txt',
    ]);
    assert.equal(r.status, 1);
    const lines = r.json();
    assert.deepEqual(
      lines.map((l) => [l.file, l.type, l.valid, l.reason]),
      [
        ['bad-sig.cbor', 'session', false, 'bad-signature'],
        ['data-0.cbor', 'data', true, undefined],
        ['bad-data.cbor', 'data', false, 'decrypt-failed'],
        ['garbage.bin', 'unknown', false, 'bad-cbor'],
        ['text.txt', 'unknown', false, 'bad-cbor'],
      ],
    );
    assert.match(String(lines[0]!.error), /signature does not verify/);
    const untrusted = await cli(['inspect', '--json', '--ca', 'other-ca.pem', 'session.cbor']);
    assert.equal(untrusted.status, 1);
    assert.equal(untrusted.json()[0]!.reason, 'bad-certificate');
    assert.match(String(untrusted.json()[0]!.error), /not a trust anchor/);
  });

  test('a well-formed CBOR item that is not a message, and --max-bytes', async () => {
    file('array.cbor', encode([1, 2, 3]));
    const r = await cli(['inspect', '--json', 'array.cbor']);
    assert.equal(r.status, 1);
    assert.equal(r.json()[0]!.reason, 'bad-tag');
    const small = await cli(['inspect', '--json', '--max-bytes', '100', 'session.cbor', 'data-0.cbor']);
    assert.equal(small.status, 1);
    assert.deepEqual(
      small.json().map((l) => [l.type, l.valid, l.reason]),
      [
        ['unknown', false, 'too-large'],
        ['data', true, undefined],
      ],
    );
  });

  test('standard input (the launcher as a child process, a real pipe)', () => {
    const r = spawned(['inspect', '--json', '--ca', 'ca.pem', '-'], keyMessage);
    assert.equal(r.status, 0, r.stderr);
    const [line] = r.json();
    assert.equal(line!.file, '-');
    assert.equal(line!.type, 'session');
    assert.equal(line!.deviceId, 'dev-1');
    assert.equal(line!.verified, true);
  });

  test('standard input in process: text output', async () => {
    const text = await cli(['inspect', '-'], data0);
    assert.equal(text.status, 0);
    assert.ok(text.stdout.includes("6 /Partial IV/: h'00' /seq 0/"));
  });
});

describe('cose-flow usage', () => {
  test('--help and the command list', async () => {
    const help = await cli(['inspect', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: cose-flow inspect/);
    assert.match(help.stdout, /--max-bytes N/);
    const top = await cli(['--help']);
    assert.equal(top.status, 0);
    assert.match(top.stdout, /inspect {2}print, verify and open/);
  });

  test('usage errors go to stderr with exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['inspect', '--bogus', 'session.cbor'], /unknown option --bogus/],
      [['inspect', 'missing.cbor'], /cannot read missing\.cbor: ENOENT/],
      [['inspect'], /no FILE given/],
      [['inspect', '--session-key', '00'.repeat(16), 'data-0.cbor'], /--session-key and --base-iv go together/],
      [['inspect', '--session-key', 'zz', '--base-iv', '00'.repeat(12), 'data-0.cbor'], /--session-key: not hex/],
      [['inspect', '--max-bytes', 'lots', 'data-0.cbor'], /--max-bytes must be a positive integer/],
      [['inspect', '--ca', 'missing-ca.pem', 'data-0.cbor'], /--ca: .*ENOENT/],
      [['inspect', '--ca', 'cloud-key.pem', 'data-0.cbor'], /--ca: .*no CERTIFICATE block/],
      [['inspect', '--cloud-key', 'ca.pem', 'data-0.cbor'], /--cloud-key: .*private key/],
      [['inspect', '-', '-'], /may be given once/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
  });
});
