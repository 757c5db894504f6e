/**
 * The fuzz targets: every decoder of the protocol core, the cloud's enrollment admission, the
 * device's control-message reader and the cloud's receiver (key and data messages through a real
 * SQLite store). Each has its valid messages (seeds, which the engine mutates) and a `run` that
 * feeds one input and checks what the decoder promises:
 *
 * - crash: it threw something other than its documented error type (`allowed`), or a function
 *   documented "never throws" threw, or the receiver reported an `internal-error`;
 * - forgery: the input was accepted (verified, decrypted, admitted, stored) and is not
 *   byte-identical to one of the valid messages. Where the accepted content is the valid one's
 *   but the bytes differ (a header outside the protected bucket, ECDSA's high-S twin), that is
 *   counted as `malleable`, and also a finding unless the target documents it;
 * - hang: watched by the runner (a per-input time bound, test/fuzz/runner.ts).
 *
 * `run` returns 'accepted' or 'refused' and throws `Finding` for the above.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createEnroller } from '../../cloud/enroll/enroller.js';
import { allowDevices, batchDeviceKey, createBatch } from '../../cloud/enroll/policy.js';
import type { InboundMessage } from '../../cloud/mqtt/consumer.js';
import { cloudKeyLookup, currentCloudCertificates, loadCloudKeys } from '../../cloud/pki/cloud-keys.js';
import { openDataDir } from '../../cloud/pki/data-dir.js';
import { readCertificates } from '../../cloud/pki/files.js';
import { revocationChecker } from '../../cloud/pki/revocation.js';
import { deviceCertificateVerifier } from '../../cloud/pki/verify.js';
import { SessionSealer } from '../../cloud/service/at-rest.js';
import { CommitQueue } from '../../cloud/service/commit-queue.js';
import type { PendingData } from '../../cloud/service/data-path.js';
import { createLogger } from '../../cloud/service/log.js';
import { ServiceMetrics } from '../../cloud/service/metrics.js';
import { PendingBuffer } from '../../cloud/service/pending-buffer.js';
import { Receiver } from '../../cloud/service/receiver.js';
import { RekeyRequester } from '../../cloud/service/rekey.js';
import { SessionTable } from '../../cloud/service/session-table.js';
import { openStore } from '../../cloud/store/index.js';
import { equal, toHex, utf8Encode } from '../../src/bytes.js';
import { CborError, decode, encode, encodeAsGiven, Tag } from '../../src/cbor/index.js';
import {
  CoseError,
  decodeEncrypt,
  decodeEncrypt0,
  decodeMac0,
  decodeSign1,
  decodeSymmetricKey,
  decryptEncrypt0,
  decryptEncryptContent,
  makeEcdhEsA128kwRecipient,
  makeEncrypt,
  makeEncrypt0,
  makeMac0,
  makeSign1,
  symmetricKeyMap,
  unwrapEcdhEsA128kw,
  verifyMac0,
  verifySign1,
} from '../../src/cose/index.js';
import { makeCsr } from '../../src/pki/csr.js';
import { makeControlMessage, receiveControlMessage } from '../../src/profile/control.js';
import {
  makeEnrollRequest,
  makeEnrollResult,
  openData,
  openKeyMessage,
  parseDataMessage,
  parseEnrollRequest,
  parseEnrollResult,
  topic,
  verifyEnrollRequest,
} from '../../src/profile/index.js';
import { crypto, makeCloudDataDir, makeDevice } from '../cloud/service-fixture.js';

export type Verdict = 'accepted' | 'refused';

export class Finding extends Error {
  constructor(
    readonly kind: 'crash' | 'forgery' | 'malleable' | 'hang',
    message: string,
  ) {
    super(`${kind}: ${message}`);
  }
}

export interface FuzzTarget {
  name: string;
  /** What it may throw, as documented (shown in the report). */
  allowed: string;
  /** Valid messages: what the engine mutates, and what an accepted input must be. */
  seeds: Uint8Array[];
  run(input: Uint8Array): Verdict | Promise<Verdict>;
  close?(): Promise<void>;
}

/** The documented error types: anything else escaping a decoder is a crash. */
const coseOnly = (e: unknown) => e instanceof CoseError;
const cborOnly = (e: unknown) => e instanceof CborError;

function refusedOr(e: unknown, allowed: (e: unknown) => boolean, what: string): Verdict {
  if (e instanceof Finding) throw e;
  if (allowed(e)) return 'refused';
  throw new Finding('crash', `${what} threw ${(e as Error)?.stack ?? String(e)}`);
}

/** n of P-256: ECDSA accepts (r, s) and (r, n − s) alike (docs/PROTOCOL.md §6.2: no low-S rule). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function bigFrom(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${toHex(b)}`);
}

/**
 * Whether `input` differs from `valid` only where docs/PROTOCOL.md §2.3 and §6.2 say anyone may
 * change a message without invalidating it: the unprotected buckets (of the message and of a
 * COSE_Encrypt's recipients; labels the profile does not name are ignored) and, for a COSE_Sign1,
 * the signature's s ↔ n − s.
 */
export function onlyDocumentedMalleability(input: Uint8Array, valid: Uint8Array): boolean {
  let a: unknown;
  let b: unknown;
  try {
    a = decode(input, { allowTags: 'any', maxDepth: 32 });
    b = decode(valid, { allowTags: 'any', maxDepth: 32 });
  } catch {
    return false;
  }
  if (!(a instanceof Tag) || !(b instanceof Tag) || a.tag !== b.tag) return false;
  const fa = a.value as unknown[];
  const fb = b.value as unknown[];
  if (!Array.isArray(fa) || !Array.isArray(fb) || fa.length !== fb.length) return false;
  const fields = [...fa];
  fields[1] = fb[1]; // the unprotected bucket
  if (a.tag === 96 && Array.isArray(fa[3]) && Array.isArray(fb[3]) && fa[3].length === fb[3].length) {
    // A COSE_Encrypt's recipients have unprotected buckets too (the cloud key id is a hint; a
    // different ephemeral key would not unwrap).
    fields[3] = (fa[3] as unknown[]).map((r, i) => {
      const vr = (fb[3] as unknown[])[i];
      return Array.isArray(r) && Array.isArray(vr) && r.length === vr.length ? [r[0], vr[1], ...r.slice(2)] : r;
    });
  }
  if (a.tag === 18) {
    const sa = fa[3];
    const sb = fb[3];
    if (sa instanceof Uint8Array && sb instanceof Uint8Array && sa.length === 64 && sb.length === 64) {
      const twin = bigFrom(sb.subarray(32)) === (P256_N - bigFrom(sa.subarray(32))) % P256_N;
      if (twin && equal(sa.subarray(0, 32), sb.subarray(0, 32))) fields[3] = sb;
    }
  }
  try {
    return equal(encodeAsGiven(new Tag(fields, a.tag)), valid);
  } catch {
    return false;
  }
}

/**
 * Accepted: byte-identical to a valid message; or differing only by documented malleability
 * (counted as `malleable`, not a failure); anything else is a forgery.
 */
function acceptedAs(input: Uint8Array, valid: readonly Uint8Array[], sameContent: boolean, what: string): Verdict {
  if (valid.some((v) => equal(v, input))) return 'accepted';
  if (sameContent && valid.some((v) => onlyDocumentedMalleability(input, v)))
    throw new Finding('malleable', `${what}: accepted, the same message but for its unprotected bucket / ECDSA s`);
  throw new Finding(
    'forgery',
    `${what}: accepted and not byte-identical to a valid message (authenticated content ${sameContent ? 'the same' : 'DIFFERENT'})`,
  );
}

const SESSION_KID = 1;

export interface TargetSet {
  targets: FuzzTarget[];
  close(): Promise<void>;
}

/** Builds every target (a CA data directory, devices, a SQLite file in a temp directory). */
export async function makeTargets(): Promise<TargetSet> {
  const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-fuzz-'));
  const fixture = await makeCloudDataDir(join(tmp, 'data'), 'fuzz CA');
  const device = await makeDevice(fixture, 'fz-1');
  const other = await makeDevice(fixture, 'fz-2');
  const keys = loadCloudKeys(crypto, fixture.dataDir);
  const cloudKey = [...keys.values()].find((k) => k.current)!.key;
  const caDer = readCertificates(openDataDir(fixture.dataDir).caCertificate)[0]!;
  const verifyCertificate = deviceCertificateVerifier({ crypto, trustAnchors: [caDer] });
  const keyOptions = { cloudKey: cloudKeyLookup(keys), verifyCertificate, topicDeviceId: device.id };

  const session = device.session(SESSION_KID);
  const keyMessages = [device.keyMessage(SESSION_KID), device.keyMessage(2)];
  const payloadOf = (seq: number) => encode(new Map<string, unknown>([['seq', seq]]));
  const dataMessages = [1, 2, 255, 256, 65_536].map((seq) => device.data(SESSION_KID, seq));

  // Generic COSE layers, each made with a known key.
  const aes = crypto.randomBytes(16);
  const iv = crypto.randomBytes(12);
  const plain = utf8Encode('fuzzed plaintext');
  const aad = utf8Encode('fuzz aad');
  const encrypt0 = makeEncrypt0(crypto, {
    protected: new Map<number, unknown>([[1, 1]]),
    unprotected: new Map<number, unknown>([[5, iv]]),
    plaintext: plain,
    key: aes,
    nonce: iv,
    externalAad: aad,
  });
  const signer = crypto.p256Generate();
  const sign1 = makeSign1(crypto, signer, {
    protected: new Map<number, unknown>([[1, -7]]),
    payload: plain,
    externalAad: aad,
  });
  const macKey = crypto.randomBytes(32);
  const mac0 = makeMac0(crypto, macKey, {
    protected: new Map<number, unknown>([[1, 5]]),
    payload: plain,
    externalAad: aad,
  });
  const recipientKey = crypto.p256Generate();
  const cek = crypto.randomBytes(16);
  const encrypt = makeEncrypt(crypto, {
    protected: new Map<number, unknown>([[1, 1]]),
    unprotected: new Map<number, unknown>([[5, iv]]),
    plaintext: plain,
    cek,
    nonce: iv,
    recipients: [
      makeEcdhEsA128kwRecipient(crypto, {
        cek,
        recipientPublicKey: recipientKey.publicKey,
        recipientKid: crypto.randomBytes(8),
      }),
    ],
    externalAad: aad,
  });
  const symmetricKey = encode(symmetricKeyMap({ kid: session.kid, alg: 1, k: session.key, baseIv: session.baseIv }));

  // Enrollment: a batch credential and an allow-listed device.
  createBatch(crypto, fixture.dataDir, 'fuzz');
  allowDevices(fixture.dataDir, ['fz-allowed']);
  const enrollKey = batchDeviceKey(crypto, fixture.dataDir, 'fuzz', 'fz-3');
  const enrollDeviceKey = crypto.p256Generate();
  const enrollCredentialed = makeEnrollRequest(crypto, {
    deviceId: 'fz-3',
    csr: makeCsr(crypto, enrollDeviceKey, 'fz-3'),
    requestId: crypto.randomBytes(12),
    credential: { batchId: 'fuzz', key: enrollKey },
  });
  const enrollPlain = makeEnrollRequest(crypto, {
    deviceId: 'fz-allowed',
    csr: makeCsr(crypto, enrollDeviceKey, 'fz-allowed'),
    requestId: crypto.randomBytes(8),
  });
  const enrollResult = makeEnrollResult({
    status: 'issued',
    requestId: crypto.randomBytes(8),
    deviceCertificate: device.certificate,
    caCertificate: caDer,
    cloudCertificates: currentCloudCertificates(fixture.dataDir),
  });
  const enroller = createEnroller({ dataDir: fixture.dataDir, crypto });

  // Control messages to fz-1 under its session kid.
  const cloudCertificate = currentCloudCertificates(fixture.dataDir)[0]!;
  const issuedAt = Math.floor(Date.now() / 1000);
  const controls = [
    makeControlMessage(crypto, cloudKey, { deviceId: device.id, request: 'rekey', kid: session.kid, issuedAt }),
    makeControlMessage(crypto, cloudKey, {
      deviceId: device.id,
      request: 'cloud-certificate',
      kid: session.kid,
      issuedAt,
      cloudCertificate,
    }),
  ];

  const receiver = await cloudReceiver(tmp, fixture.dataDir, device, other, keyMessages);

  const targets: FuzzTarget[] = [
    {
      name: 'cbor',
      allowed: 'CborError',
      seeds: [...keyMessages, ...dataMessages, encrypt0, sign1, mac0, encrypt, symmetricKey, enrollCredentialed],
      run(input) {
        try {
          decode(input, { allowTags: input.length % 2 === 0 ? 'any' : [16, 17, 18, 96], maxDepth: 16 });
          return 'accepted';
        } catch (e) {
          return refusedOr(e, cborOnly, 'decode');
        }
      },
    },
    {
      name: 'cose-sign1',
      allowed: 'CoseError',
      seeds: [sign1],
      run(input) {
        let m: ReturnType<typeof decodeSign1>;
        try {
          m = decodeSign1(input, { requireTag: true });
          verifySign1(crypto, m, signer.publicKey, { externalAad: aad });
        } catch (e) {
          return refusedOr(e, coseOnly, 'decodeSign1/verifySign1');
        }
        const valid = decodeSign1(sign1);
        return acceptedAs(
          input,
          [sign1],
          equal(m.protectedBytes, valid.protectedBytes) && equal(m.payload!, valid.payload!),
          'COSE_Sign1',
        );
      },
    },
    {
      name: 'cose-encrypt0',
      allowed: 'CoseError',
      seeds: [encrypt0],
      run(input) {
        let out: Uint8Array;
        let m: ReturnType<typeof decodeEncrypt0>;
        try {
          m = decodeEncrypt0(input, { requireTag: true });
          out = decryptEncrypt0(crypto, m, aes, { externalAad: aad });
        } catch (e) {
          return refusedOr(e, coseOnly, 'decodeEncrypt0/decryptEncrypt0');
        }
        return acceptedAs(
          input,
          [encrypt0],
          equal(out, plain) && equal(m.protectedBytes, decodeEncrypt0(encrypt0).protectedBytes),
          'COSE_Encrypt0',
        );
      },
    },
    {
      name: 'cose-encrypt',
      allowed: 'CoseError',
      seeds: [encrypt],
      run(input) {
        let out: Uint8Array;
        try {
          const m = decodeEncrypt(input, { requireTag: true });
          if (m.recipients.length !== 1) throw new CoseError('bad-structure', 'one recipient expected');
          const cek = unwrapEcdhEsA128kw(crypto, m.recipients[0]!, recipientKey);
          out = decryptEncryptContent(crypto, m, cek, { externalAad: aad });
        } catch (e) {
          return refusedOr(e, coseOnly, 'decodeEncrypt/unwrap/decrypt');
        }
        return acceptedAs(input, [encrypt], equal(out, plain), 'COSE_Encrypt');
      },
    },
    {
      name: 'cose-mac0',
      allowed: 'CoseError',
      seeds: [mac0],
      run(input) {
        let m: ReturnType<typeof decodeMac0>;
        try {
          m = decodeMac0(input, { requireTag: true });
          verifyMac0(crypto, m, macKey, aad);
        } catch (e) {
          return refusedOr(e, coseOnly, 'decodeMac0/verifyMac0');
        }
        const valid = decodeMac0(mac0);
        return acceptedAs(
          input,
          [mac0],
          equal(m.protectedBytes, valid.protectedBytes) && equal(m.payload, valid.payload),
          'COSE_Mac0',
        );
      },
    },
    {
      name: 'cose-key',
      allowed: 'CoseError',
      seeds: [symmetricKey],
      run(input) {
        try {
          decodeSymmetricKey(input);
          return 'accepted';
        } catch (e) {
          return refusedOr(e, coseOnly, 'decodeSymmetricKey');
        }
      },
    },
    {
      name: 'key-message',
      allowed: 'CoseError',
      seeds: keyMessages,
      run(input) {
        let opened: ReturnType<typeof openKeyMessage>;
        try {
          opened = openKeyMessage(crypto, input, keyOptions);
        } catch (e) {
          return refusedOr(e, coseOnly, 'openKeyMessage');
        }
        const kid = opened.session.kid;
        const match = [1, 2].map((k) => device.session(k)).find((s) => equal(s.kid, kid));
        const same =
          match !== undefined && equal(match.key, opened.session.key) && equal(match.baseIv, opened.session.baseIv);
        return acceptedAs(input, keyMessages, same, 'key message');
      },
    },
    {
      name: 'data-message',
      allowed: 'CoseError',
      seeds: dataMessages,
      run(input) {
        let out: Uint8Array;
        let seq: number;
        try {
          const parsed = parseDataMessage(input);
          seq = parsed.seq;
          out = openData(crypto, parsed, session);
        } catch (e) {
          return refusedOr(e, coseOnly, 'parseDataMessage/openData');
        }
        return acceptedAs(input, dataMessages, equal(out, payloadOf(seq)), 'data message');
      },
    },
    {
      name: 'enroll-request',
      allowed: 'CoseError',
      seeds: [enrollCredentialed, enrollPlain],
      run(input) {
        let request: ReturnType<typeof parseEnrollRequest>;
        try {
          request = parseEnrollRequest(input);
          if (request.mac === undefined) return 'accepted'; // no credential: parsed, nothing to verify
          verifyEnrollRequest(crypto, request, enrollKey, 'fz-3');
        } catch (e) {
          return refusedOr(e, coseOnly, 'parseEnrollRequest/verifyEnrollRequest');
        }
        const valid = parseEnrollRequest(enrollCredentialed);
        return acceptedAs(
          input,
          [enrollCredentialed],
          equal(request.csr, valid.csr) && equal(request.requestId, valid.requestId),
          'enroll request',
        );
      },
    },
    {
      name: 'enroll-result',
      allowed: 'CoseError',
      seeds: [enrollResult],
      run(input) {
        try {
          parseEnrollResult(input);
          return 'accepted';
        } catch (e) {
          return refusedOr(e, coseOnly, 'parseEnrollResult');
        }
      },
    },
    {
      name: 'enroll-admission',
      allowed: 'nothing (never throws)',
      seeds: [enrollCredentialed, enrollPlain],
      run(input) {
        // Half on the credentialed device's topic, half on the allow-listed one's.
        const deviceId = input.length % 2 === 0 ? 'fz-3' : 'fz-allowed';
        let admission: ReturnType<typeof enroller.admit>;
        try {
          admission = enroller.admit(deviceId, input);
        } catch (e) {
          throw new Finding('crash', `enroller.admit threw ${(e as Error)?.stack ?? String(e)}`);
        }
        if (admission.kind === 'unauthenticated') {
          if (admission.decision.code === 'unavailable')
            throw new Finding('crash', `enroller.admit: ${admission.decision.reason}`);
          return 'refused';
        }
        if (admission.request.mac === undefined) return 'accepted'; // allow-listed: nothing authenticated
        const valid = parseEnrollRequest(enrollCredentialed);
        return acceptedAs(
          input,
          [enrollCredentialed],
          equal(admission.request.csr, valid.csr) && equal(admission.request.requestId, valid.requestId),
          'admitted enroll request',
        );
      },
    },
    {
      name: 'control',
      allowed: 'nothing (never throws; refusals are values)',
      seeds: controls,
      run(input) {
        let received: ReturnType<typeof receiveControlMessage>;
        try {
          received = receiveControlMessage(crypto, input, {
            cloudPublicKeys: [fixture.cloudPublicKey],
            deviceId: device.id,
            caCertificate: caDer,
            now: Date.now(),
            admit: (claimed) =>
              equal(claimed.kid, session.kid) ? undefined : { request: claimed.request, reason: 'not the current kid' },
          });
        } catch (e) {
          throw new Finding('crash', `receiveControlMessage threw ${(e as Error)?.stack ?? String(e)}`);
        }
        if (!received.ok) return 'refused';
        const m = received.message;
        const same =
          equal(m.kid, session.kid) &&
          m.issuedAt === issuedAt &&
          (m.request === 'rekey'
            ? m.cloudCertificate === undefined
            : m.cloudCertificate !== undefined && equal(m.cloudCertificate, cloudCertificate));
        return acceptedAs(input, controls, same, 'control message');
      },
    },
    {
      name: 'cloud-receiver',
      allowed: 'nothing (handle never throws; no internal-error refusal)',
      seeds: [...keyMessages, ...dataMessages, device.data(2, 1), other.keyMessage(1), other.data(1, 1)],
      run: (input) => receiver.run(input),
      close: () => receiver.close(),
    },
  ];
  return {
    targets,
    async close() {
      for (const t of targets) await t.close?.();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

type TestDevice = Awaited<ReturnType<typeof makeDevice>>;

/**
 * The receiver of the cloud service with a real SQLite store (a file in `tmp`), as
 * test/cloud/session-lifetime.test.ts builds it. The valid key messages are fed first; after that,
 * every delivered payload and every stored session must come from an input byte-identical to a
 * valid message of that device and kid, and nothing may be refused as `internal-error`.
 */
async function cloudReceiver(
  tmp: string,
  dataDir: string,
  device: TestDevice,
  other: TestDevice,
  keyMessages: Uint8Array[],
) {
  const clock = { t: Date.now() };
  const now = () => clock.t;
  const store = await openStore(`sqlite:${join(tmp, 'fuzz.db')}`, { now });
  const sealer = new SessionSealer(crypto.randomBytes(32));
  const sessions = new SessionTable(store, sealer);
  const pending = new PendingBuffer<PendingData>({ ttlMs: 1000, total: 64, perDevice: 32 });
  const metrics = new ServiceMetrics({
    sessionsCached: () => sessions.size,
    pending: () => pending.size,
    commitQueue: () => 0,
    unacked: () => 0,
    mqttConnected: () => true,
    mqttReconnects: () => 0,
    storeStats: () => store.stats(),
  });
  const keys = loadCloudKeys(crypto, dataDir);
  const isRevoked = revocationChecker(dataDir);
  const verifyCertificate = deviceCertificateVerifier({
    crypto,
    trustAnchors: readCertificates(openDataDir(dataDir).caCertificate),
    isRevoked,
  });
  const devices = [device, other];
  let current: { topic: string; bytes: Uint8Array } | undefined;
  let finding: Finding | undefined;
  let accepted = 0;
  const note = (f: Finding) => {
    finding ??= f;
  };
  /** What the receiver accepted (a delivery, a stored session) must come from a valid message. */
  const check = (valid: Uint8Array[], what: string) => {
    const input = current?.bytes;
    if (input === undefined) note(new Finding('forgery', `${what} with no input being handled`));
    else if (valid.some((v) => equal(v, input))) return;
    else if (valid.some((v) => onlyDocumentedMalleability(input, v)))
      note(new Finding('malleable', `${what}: from a valid message with another unprotected bucket / ECDSA s`));
    else note(new Finding('forgery', `${what}: from an input that is no valid message`));
  };
  const validFor = (deviceId: string, kidHex: string, seq?: number): Uint8Array[] => {
    const d = devices.find((x) => x.id === deviceId);
    if (d === undefined) return [];
    const kid = [...d.sessions.keys()].find((k) => toHex(d.session(k).kid) === kidHex);
    if (kid === undefined) return [];
    return seq === undefined ? [d.keyMessage(kid)] : [d.data(kid, seq)];
  };
  const receiver = new Receiver({
    crypto,
    store,
    sessions,
    pending,
    commits: new CommitQueue(store),
    rekey: new RekeyRequester({
      crypto,
      cloudKey: () => [...keys.values()].find((k) => k.current)!.key,
      prefix: 'cose-flow/v1',
      publish: async () => {},
      minIntervalMs: 0,
      now,
      store,
    }),
    sealer,
    openKeyMessage: (bytes, topicDeviceId) =>
      openKeyMessage(crypto, bytes, { cloudKey: cloudKeyLookup(keys), verifyCertificate, topicDeviceId }),
    deliver: async (p) => {
      accepted++;
      check(validFor(p.deviceId, p.kidHex, p.seq), `payload delivered for ${p.deviceId} kid ${p.kidHex} seq ${p.seq}`);
    },
    metrics,
    log: createLogger({
      level: 'error',
      destination: new Writable({
        write(_c, _e, cb) {
          cb();
        },
      }),
    }),
    prefix: 'cose-flow/v1',
    maxMessageBytes: 65_536,
    retryMinMs: 10,
    observe: (e) => {
      if (e.type === 'rejected' && e.reason === 'internal-error')
        note(new Finding('crash', `the receiver refused an input as internal-error: ${e.detail}`));
      if (e.type === 'session') {
        accepted++;
        check(validFor(e.deviceId, e.kidHex), `session ${e.kidHex} stored for ${e.deviceId}`);
      }
    },
    now,
    isRevoked,
  });
  const feed = async (name: string, bytes: Uint8Array) => {
    const m: InboundMessage = { topic: name, payload: bytes, qos: 1, dup: false, receivedAt: clock.t, ack() {} };
    current = { topic: name, bytes };
    receiver.handle(m);
    await receiver.idle();
  };
  for (const bytes of keyMessages) await feed(topic('session', device.id), bytes);
  await feed(topic('session', other.id), other.keyMessage(1));
  let runs = 0;
  return {
    async run(input: Uint8Array): Promise<Verdict> {
      // The topic: a session or data topic of either device, chosen by the input's length.
      const kind = input.length > 0 && (input[0] === 0xd2 || input.length % 3 === 0) ? 'session' : 'data';
      const deviceId = input.length % 7 === 0 ? other.id : device.id;
      const before = accepted;
      finding = undefined;
      try {
        await feed(topic(kind, deviceId), input);
      } catch (e) {
        throw new Finding('crash', `receiver.handle threw ${(e as Error)?.stack ?? String(e)}`);
      }
      if (++runs % 256 === 0) {
        clock.t += 2000; // pending data expires
        await receiver.sweep();
      }
      if (finding !== undefined) throw finding;
      return accepted > before ? 'accepted' : 'refused';
    },
    async close() {
      receiver.stop();
      const stored = await store.listPayloads({ deviceId: device.id, limit: 10_000 });
      await store.close();
      for (const p of stored) {
        const valid = validFor(device.id, toHex(p.kid), p.seq);
        if (valid.length === 0)
          throw new Finding('forgery', `the store holds kid ${toHex(p.kid)} seq ${p.seq}, never sent`);
      }
    },
  };
}
