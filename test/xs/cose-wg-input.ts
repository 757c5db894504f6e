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
import { toHex, utf8Encode } from '../../src/bytes.js';
import { encodeAsGiven } from '../../src/cbor/index.js';
import type { HeaderMap } from '../../src/cose/index.js';
import { ALG, algOf, b64url, DISPUTED, type Example, failReasons, headerMap, jwkPoint } from '../cose/examples.js';
import { listVectorFiles, readVectorJson } from '../vectors.js';
import type {
  CoseWgEcdhWrapCase,
  CoseWgEncrypt0Case,
  CoseWgSign1Case,
  ProtocolInput,
} from './entries/protocol-input.js';

const hexOf = (s: string) => toHex(b64url(s));
const point = (k: Parameters<typeof jwkPoint>[0]) => toHex(jwkPoint(k));
const lower = (hex: string | undefined) => (hex ?? '').toLowerCase();

const cborHex = (map: HeaderMap) => toHex(encodeAsGiven(map));

export function coseWgInput(): ProtocolInput['coseWg'] {
  const sign1: CoseWgSign1Case[] = [];
  const encrypt0: CoseWgEncrypt0Case[] = [];
  const ecdhWrap: CoseWgEcdhWrapCase[] = [];
  for (const file of listVectorFiles('cose-wg')) {
    if (DISPUTED.has(file)) continue;
    const ex = readVectorJson<Example>(file);
    const plaintext = toHex(utf8Encode(ex.input.plaintext));
    const reject = ex.fail ? { reject: failReasons(ex) } : {};
    const { sign0, encrypted, enveloped } = ex.input;
    if (sign0 && algOf(sign0) === ALG.ES256) {
      sign1.push({
        file,
        message: lower(ex.output.cbor),
        publicKey: point(sign0.key!),
        externalAad: lower(sign0.external),
        plaintext,
        ...reject,
      });
    } else if (encrypted && algOf(encrypted) === ALG.A128GCM) {
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
      algOf(enveloped) === ALG.A128GCM &&
      algOf(enveloped.recipients?.[0]) === ALG['ECDH-ES-A128KW']
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
