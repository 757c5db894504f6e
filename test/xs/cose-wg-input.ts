/**
 * The cose-wg examples that XS runs (test/xs/entries/protocol.ts), in the compact form of
 * protocol-input.ts, with the expectations of test/cose/cose-wg.test.ts:
 * - every COSE_Sign1 (ES256) and COSE_Encrypt0 (A128GCM) example that must pass, re-encrypted
 *   byte for byte where the example gives its random inputs and no countersignature;
 * - every such example marked `fail`, with the reason codes that fit it;
 * - every ECDH-ES + A128KW example: unwrap, decrypt, and re-encrypt from its rng_stream.
 * The three examples whose protected bucket h'A0' is disputed upstream are left out (the Node
 * test covers them).
 */
import { Buffer } from 'node:buffer';
import { toHex, utf8Encode } from '../../src/bytes.js';
import { encodeAsGiven } from '../../src/cbor/index.js';
import type { HeaderMap } from '../../src/cose/index.js';
import { listVectorFiles, readVectorJson } from '../vectors.js';
import type {
  CoseWgEcdhWrapCase,
  CoseWgEncrypt0Case,
  CoseWgSign1Case,
  ProtocolInput,
} from './entries/protocol-input.js';

interface Jwk {
  kid?: string;
  x?: string;
  y?: string;
  d?: string;
  k?: string;
}
type Headers = Record<string, unknown>;
interface Layer {
  countersign?: unknown;
  countersign0?: unknown;
  protected?: Headers;
  unprotected?: Headers;
  external?: string;
  key?: Jwk;
  recipients?: Layer[];
}
interface Example {
  fail?: boolean;
  input: {
    plaintext: string;
    sign0?: Layer;
    encrypted?: Layer;
    enveloped?: Layer;
    rng_stream?: string[];
    failures?: Record<string, unknown>;
  };
  intermediates?: { CEK_hex?: string; recipients?: { Context_hex?: string }[] };
  output: { cbor: string };
}

const DISPUTED = new Set([
  'cose-wg/sign1-tests/sign-pass-01.json',
  'cose-wg/encrypted-tests/enc-pass-01.json',
  'cose-wg/enveloped-tests/env-pass-01.json',
]);
const ALG: Record<string, number> = { ES256: -7, A128GCM: 1, 'ECDH-ES-A128KW': -29 };

const hexOf = (b64url: string) => Buffer.from(b64url, 'base64url').toString('hex');
const point = (k: Jwk) => `04${hexOf(k.x!)}${hexOf(k.y!)}`;
const lower = (hex: string | undefined) => (hex ?? '').toLowerCase();

/** The JSON header names as COSE labels, or undefined when a name is not one this test rebuilds. */
function headerMap(h: Headers | undefined): HeaderMap | undefined {
  const map: HeaderMap = new Map();
  for (const [name, value] of Object.entries(h ?? {})) {
    if (name === 'alg') map.set(1, typeof value === 'string' && value in ALG ? ALG[value] : value);
    else if (name === 'kid') map.set(4, utf8Encode(String(value)));
    else if (name === 'ctyp') map.set(3, value);
    else if (name === 'IV_hex') map.set(5, Buffer.from(String(value), 'hex'));
    else if (name === 'partialIV_hex') map.set(6, Buffer.from(String(value), 'hex'));
    else return undefined;
  }
  return map;
}

const cborHex = (map: HeaderMap) => toHex(encodeAsGiven(map));
const algOf = (layer: Layer | undefined) => layer?.protected?.alg ?? layer?.unprotected?.alg;

/** The reasons a `fail` example may be refused with (as in test/cose/cose-wg.test.ts). */
function rejectReasons(ex: Example): string[] {
  const f = ex.input.failures ?? {};
  if ('ChangeCBORTag' in f) return ['bad-tag'];
  if ('ChangeAttr' in f) return ['unsupported-alg'];
  return ['bad-signature', 'decrypt-failed'];
}

export function coseWgInput(): ProtocolInput['coseWg'] {
  const sign1: CoseWgSign1Case[] = [];
  const encrypt0: CoseWgEncrypt0Case[] = [];
  const ecdhWrap: CoseWgEcdhWrapCase[] = [];
  for (const file of listVectorFiles('cose-wg')) {
    if (DISPUTED.has(file)) continue;
    const ex = readVectorJson<Example>(file);
    const plaintext = toHex(utf8Encode(ex.input.plaintext));
    const reject = ex.fail ? { reject: rejectReasons(ex) } : {};
    const { sign0, encrypted, enveloped } = ex.input;
    if (sign0 && algOf(sign0) === 'ES256') {
      sign1.push({
        file,
        message: lower(ex.output.cbor),
        publicKey: point(sign0.key!),
        externalAad: lower(sign0.external),
        plaintext,
        ...reject,
      });
    } else if (encrypted && algOf(encrypted) === 'A128GCM') {
      const c: CoseWgEncrypt0Case = {
        file,
        message: lower(ex.output.cbor),
        key: hexOf(encrypted.recipients![0]!.key!.k!),
        externalAad: lower(encrypted.external),
        plaintext,
        ...reject,
      };
      const prot = headerMap(encrypted.protected);
      const unprot = headerMap(encrypted.unprotected);
      const iv = ex.input.rng_stream?.[0];
      if (!ex.fail && iv && prot && unprot && !encrypted.countersign && !encrypted.countersign0) {
        unprot.set(5, Buffer.from(iv, 'hex'));
        const expected = lower(ex.output.cbor);
        // The encoder always writes the tag: an untagged example is compared with its tag added.
        c.again = {
          protected: cborHex(prot),
          unprotected: cborHex(unprot),
          iv: lower(iv),
          expected: expected.startsWith('d0') ? expected : `d0${expected}`,
        };
      }
      encrypt0.push(c);
    } else if (
      enveloped &&
      !ex.fail &&
      algOf(enveloped) === 'A128GCM' &&
      algOf(enveloped.recipients?.[0]) === 'ECDH-ES-A128KW'
    ) {
      const r = enveloped.recipients![0]!;
      const c: CoseWgEcdhWrapCase = {
        file,
        message: lower(ex.output.cbor),
        recipientD: hexOf(r.key!.d!),
        cek: lower(ex.intermediates!.CEK_hex),
        externalAad: lower(enveloped.external),
        plaintext,
      };
      const context = ex.intermediates?.recipients?.[0]?.Context_hex;
      if (context) c.context = lower(context);
      const prot = headerMap(enveloped.protected);
      const unprot = headerMap(enveloped.unprotected);
      const rng = ex.input.rng_stream;
      if (rng?.length === 3 && prot && unprot) {
        c.again = {
          rng: [lower(rng[0]), lower(rng[1]), lower(rng[2])],
          recipientPublicKey: point(r.key!),
          recipientKid: toHex(utf8Encode(r.key!.kid!)),
          protected: cborHex(prot),
          unprotected: cborHex(unprot),
          expected: lower(ex.output.cbor),
        };
      }
      ecdhWrap.push(c);
    }
  }
  return { sign1, encrypt0, ecdhWrap };
}
