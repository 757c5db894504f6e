/**
 * The work behind `cose-flow inspect`: classify a message of the profile, check and open it with
 * whatever keys were given, and describe it. Library calls only (src/profile, cloud/pki); every
 * refusal is reported with the library's `CoseError.reason`. Never throws for bad input.
 */

import { type CertificateSummary, parseCertificate, summarizeCertificate } from '../cloud/pki/certificate.js';
import { equal, toHex } from '../src/bytes.js';
import { type CborItem, diagnostic, parseItem } from '../src/cbor/diagnostic.js';
import { CborError } from '../src/cbor/index.js';
import { decodeEncrypt } from '../src/cose/encrypt.js';
import { CoseError, isCoseError } from '../src/cose/errors.js';
import { Header } from '../src/cose/headers.js';
import { decodeSign1 } from '../src/cose/sign1.js';
import type { CryptoProvider, P256PrivateKey } from '../src/crypto/provider.js';
import { decodeKid } from '../src/profile/counter.js';
import { openData, parseDataMessage } from '../src/profile/data-message.js';
import { type CertifiedDevice, type DeviceCertificateVerifier, openKeyMessage } from '../src/profile/key-message.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../src/profile/limits.js';
import { cloudKeyId, type SessionKey } from '../src/profile/session.js';
import { coseAnnotator } from './cose-annotate.js';

export type MessageType = 'session' | 'data' | 'unknown';

/** One message's result: the JSON line of `inspect --json` (and the data of its text form). */
export interface InspectResult {
  /** The file name as given ("-" for standard input). */
  file: string;
  type: MessageType;
  /** The profile's structure holds and every check the given keys allow passed. */
  valid: boolean;
  /** `CoseError.reason` of the first refusal (when not valid). */
  reason?: string;
  /** Its message. */
  error?: string;
  /** Authenticity was checked with a key: key message — certificate against --ca and signature; data message — decrypted. */
  verified: boolean;
  /** Decrypted: the session key of a key message, the payload of a data message. */
  opened: boolean;
  /** What was checked, in order, for a valid message. */
  checked: string[];
  bytes: number;
  /** Key message: the device id of the certificate verified against --ca. */
  deviceId?: string;
  /** Session kid, hex. */
  kid?: string;
  /** The kid's counter value: a number, or a decimal string beyond 2^53 − 1. */
  kidCounter?: number | string;
  /** Data message: sequence number (Partial IV). */
  seq?: number;
  /** Key message: the cloud key id the recipient names, hex. */
  cloudKid?: string;
  /** Key message: the certificate it carries (whether or not it was verified). */
  certificate?: CertificateSummary;
  /** Data message: where its session key came from (a key message file, or "--session-key"). */
  sessionFrom?: string;
  payloadHex?: string;
  /** The payload in CBOR diagnostic notation, when it is CBOR. */
  payloadDiagnostic?: string;
  /** With `revealKeys`: the session key and Base IV (hex) learned from a key message or used for a data message. */
  sessionKey?: string;
  baseIv?: string;
  /** The whole message in CBOR diagnostic notation with COSE names (not in JSON output). */
  diagnostic?: string;
}

export interface InspectorOptions {
  crypto: CryptoProvider;
  /** Verifies key-message certificates (from --ca). Without it the certificate is only read, not trusted. */
  verifyCertificate?: DeviceCertificateVerifier;
  /** Cloud private keys (from --cloud-key) to unwrap key messages. */
  cloudKeys?: P256PrivateKey[];
  /** A session key and Base IV for data messages (from --session-key/--base-iv). */
  sessionKey?: { key: Uint8Array; baseIv: Uint8Array };
  maxBytes?: number;
  /** Put session keys and Base IVs into results. */
  revealKeys?: boolean;
  /** Produce `diagnostic` (text output); default true. */
  diagnostic?: boolean;
}

interface LearnedSession {
  session: SessionKey;
  from: string;
}

/**
 * Inspects messages one after the other. A key message that opens teaches its session to the
 * inspector, so data messages later in the same run open without --session-key.
 */
export class Inspector {
  private readonly crypto: CryptoProvider;
  private readonly maxBytes: number;
  /** Sessions from key messages, by device (when known) and kid hex, most recent first. */
  private readonly learned = new Map<string, LearnedSession[]>();
  private readonly cloudKeys: { kid: Uint8Array; key: P256PrivateKey }[];

  constructor(private readonly options: InspectorOptions) {
    this.crypto = options.crypto;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.cloudKeys = (options.cloudKeys ?? []).map((key) => ({ kid: cloudKeyId(this.crypto, key.publicKey), key }));
  }

  /** The device the current message came from (its topic), when known: sessions are learned per device. */
  private scope = '';
  private topicDeviceId: string | undefined;

  /**
   * `deviceId`: the device of the message's topic, when known (a capture of the broker's traffic):
   * a key message must then be that device's, and the sessions it teaches serve only that device.
   */
  inspect(file: string, bytes: Uint8Array, deviceId?: string): InspectResult {
    this.scope = deviceId ?? '';
    this.topicDeviceId = deviceId;
    const base: InspectResult = {
      file,
      type: 'unknown',
      valid: false,
      verified: false,
      opened: false,
      checked: [],
      bytes: bytes.length,
    };
    if (bytes.length > this.maxBytes) {
      return invalid(
        { ...base, type: 'unknown' },
        new CoseError('too-large', `${bytes.length} bytes exceeds the ${this.maxBytes}-byte limit`),
      );
    }
    let item: CborItem;
    try {
      item = parseItem(bytes, { maxDepth: 64 });
    } catch (e) {
      const message = e instanceof CborError ? e.message : String(e);
      const shown = bytes.subarray(0, 64);
      const preview =
        this.options.diagnostic === false
          ? {}
          : { diagnostic: `h'${toHex(shown)}'${shown.length < bytes.length ? ` /first ${shown.length} bytes/` : ''}` };
      return invalid(
        { ...base, ...preview, type: 'unknown' },
        new CoseError('bad-cbor', `not well-formed CBOR: ${message}`),
      );
    }
    const diag = this.options.diagnostic === false ? {} : { diagnostic: this.describe(item) };
    try {
      if (item.kind === 'tag' && item.tag === 18) return this.keyMessage({ ...base, ...diag, type: 'session' }, bytes);
      if (item.kind === 'tag' && item.tag === 16) return this.dataMessage({ ...base, ...diag, type: 'data' }, bytes);
    } catch (e) {
      return invalid({ ...base, ...diag, type: item.kind === 'tag' && item.tag === 18 ? 'session' : 'data' }, e);
    }
    const what = item.kind === 'tag' ? `CBOR tag ${item.tag}` : `an untagged ${item.kind}`;
    return invalid(
      { ...base, ...diag, type: 'unknown' },
      new CoseError('bad-tag', `not a cose-flow/1 message: ${what} (a key message is tag 18, a data message tag 16)`),
    );
  }

  private describe(item: CborItem): string {
    try {
      return diagnostic(item, { annotate: coseAnnotator({ describeCertificate }) });
    } catch (e) {
      return `(no diagnostic notation: ${e instanceof Error ? e.message : String(e)})`;
    }
  }

  private keyMessage(result: InspectResult, bytes: Uint8Array): InspectResult {
    Object.assign(result, peekKeyMessage(bytes));
    const withCa = this.options.verifyCertificate !== undefined;
    const verifier = this.options.verifyCertificate ?? readCertificateUntrusted;
    let certified: CertifiedDevice | undefined;
    const verifyCertificate: DeviceCertificateVerifier = (der) => {
      certified = verifier(der);
      return certified;
    };
    try {
      const opened = openKeyMessage(this.crypto, bytes, {
        cloudKey: (kid) => this.cloudKeys.find((c) => equal(c.kid, kid))?.key,
        verifyCertificate,
        maxBytes: this.maxBytes,
        ...(this.topicDeviceId === undefined ? {} : { topicDeviceId: this.topicDeviceId }),
      });
      this.learn(opened.session, result.file);
      result.checked = [
        ...keyChecks(withCa),
        `recipient unwrapped with the cloud key for device ${opened.deviceId} (the KDF context names it)`,
        'session COSE_Key decrypted',
      ];
      return {
        ...result,
        valid: true,
        verified: withCa,
        opened: true,
        ...(withCa ? { deviceId: opened.deviceId } : {}),
        kid: toHex(opened.session.kid),
        kidCounter: kidCounterOf(opened.session.kid),
        ...(this.options.revealKeys
          ? { sessionKey: toHex(opened.session.key), baseIv: toHex(opened.session.baseIv) }
          : {}),
      };
    } catch (e) {
      if (isCoseError(e) && e.reason === 'unknown-recipient' && this.cloudKeys.length === 0) {
        // Everything before the unwrap passed; without a cloud key the session stays sealed.
        result.checked = keyChecks(withCa);
        return {
          ...result,
          valid: true,
          verified: withCa,
          opened: false,
          ...(withCa && certified !== undefined ? { deviceId: certified.deviceId } : {}),
        };
      }
      return invalid(result, e);
    }
  }

  private dataMessage(result: InspectResult, bytes: Uint8Array): InspectResult {
    const parsed = parseDataMessage(bytes, this.maxBytes);
    const kid = toHex(parsed.kid);
    Object.assign(result, { kid, kidCounter: kidCounterOf(parsed.kid), seq: parsed.seq });
    const candidates: LearnedSession[] = [...(this.learned.get(`${this.scope}/${kid}`) ?? [])];
    if (this.options.sessionKey !== undefined) {
      candidates.push({ session: { kid: parsed.kid, ...this.options.sessionKey }, from: '--session-key' });
    }
    if (candidates.length === 0) {
      result.checked = ['structure'];
      return { ...result, valid: true };
    }
    let failure: unknown;
    for (const candidate of candidates) {
      let payload: Uint8Array;
      try {
        payload = openData(this.crypto, parsed, candidate.session);
      } catch (e) {
        failure = e;
        continue;
      }
      result.checked = ['structure', `decrypted with the session key from ${candidate.from}`];
      return {
        ...result,
        valid: true,
        verified: true,
        opened: true,
        sessionFrom: candidate.from,
        payloadHex: toHex(payload),
        ...payloadDiagnostic(payload),
        ...(this.options.revealKeys
          ? { sessionKey: toHex(candidate.session.key), baseIv: toHex(candidate.session.baseIv) }
          : {}),
      };
    }
    return invalid(result, failure);
  }

  private learn(session: SessionKey, from: string): void {
    const key = `${this.scope}/${toHex(session.kid)}`;
    const list = this.learned.get(key) ?? [];
    list.unshift({ session, from });
    this.learned.set(key, list);
  }
}

function keyChecks(withCa: boolean): string[] {
  return [
    'structure',
    withCa ? 'certificate verified against the CA' : 'certificate read but NOT verified (no --ca)',
    withCa ? 'signature verified' : 'signature consistent with the certificate key',
  ];
}

function invalid(result: InspectResult, e: unknown): InspectResult {
  const { reason, message } = isCoseError(e)
    ? { reason: e.reason, message: e.message }
    : { reason: 'internal-error', message: e instanceof Error ? e.message : String(e) };
  return { ...result, valid: false, verified: false, opened: false, checked: [], reason, error: message };
}

/** Without a CA: read the certificate's key and CN (to check the signature), trusting nothing. */
const readCertificateUntrusted: DeviceCertificateVerifier = (der) => {
  const cert = parseCertificate(der);
  if (cert.p256PublicKey === undefined) {
    throw new CoseError('bad-certificate', `the certificate's subject key is ${cert.keyType}, not EC P-256`);
  }
  return { deviceId: cert.commonNames[0] ?? '', publicKey: cert.p256PublicKey };
};

/** What can be read from a key message without keys (best effort: absent fields could not be read). */
function peekKeyMessage(bytes: Uint8Array): Partial<InspectResult> {
  const out: Partial<InspectResult> = {};
  try {
    const sign1 = decodeSign1(bytes, { maxBytes: bytes.length });
    const der = sign1.protected.get(Header.x5chain);
    if (der instanceof Uint8Array) {
      try {
        out.certificate = summarizeCertificate(parseCertificate(der));
      } catch {
        // reported by the verification itself
      }
    }
    if (sign1.payload === null) return out;
    const encrypt = decodeEncrypt(sign1.payload, { maxBytes: sign1.payload.length });
    const kid = encrypt.protected.get(Header.kid);
    if (kid instanceof Uint8Array) {
      out.kid = toHex(kid);
      try {
        out.kidCounter = kidCounterOf(kid);
      } catch {
        // not a counter: the verification reports it
      }
    }
    const cloudKid = encrypt.recipients[0]?.unprotected.get(Header.kid);
    if (cloudKid instanceof Uint8Array) out.cloudKid = toHex(cloudKid);
  } catch {
    // the verification reports what is wrong
  }
  return out;
}

function describeCertificate(der: Uint8Array): string | undefined {
  try {
    const s = summarizeCertificate(parseCertificate(der));
    return `${s.subject}, issuer ${s.issuer}, serial ${s.serialHex}, valid ${s.notBefore} … ${s.notAfter}`;
  } catch (e) {
    return `unreadable certificate: ${(e as Error).message}`;
  }
}

function payloadDiagnostic(payload: Uint8Array): { payloadDiagnostic?: string } {
  if (payload.length === 0) return {};
  try {
    return { payloadDiagnostic: diagnostic(parseItem(payload, { maxDepth: 64 }), { lineWidth: 0 }) };
  } catch {
    return {};
  }
}

/** A kid's counter for display and JSON: a number while exact, else a decimal string. */
function kidCounterOf(kid: Uint8Array): number | string {
  const n = decodeKid(kid);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}
