/**
 * Names for the diagnostic printer: COSE message structures, header labels, algorithms and
 * COSE_Key parameters as cose-flow/1 uses them, e.g. `1 /alg/: -7 /ES256/`. Protected buckets and
 * a payload that is itself a COSE message are shown decoded as `<< … >>`.
 */
import type { Annotate, Annotation, CborItem } from '../src/cbor/diagnostic.js';
import { decodeKid, decodePartialIv } from '../src/profile/counter.js';

const HEADER_NAMES: Record<number, string> = {
  1: 'alg',
  2: 'crit',
  3: 'content type',
  4: 'kid',
  5: 'IV',
  6: 'Partial IV',
  7: 'counter signature',
  32: 'x5bag',
  33: 'x5chain',
  34: 'x5t',
  35: 'x5u',
  [-1]: 'ephemeral key',
  [-2]: 'static key',
  [-3]: 'static key id',
};

const ALG_NAMES: Record<number, string> = {
  [-7]: 'ES256',
  [-35]: 'ES384',
  [-36]: 'ES512',
  [-8]: 'EdDSA',
  1: 'A128GCM',
  2: 'A192GCM',
  3: 'A256GCM',
  [-3]: 'A128KW',
  [-4]: 'A192KW',
  [-5]: 'A256KW',
  [-25]: 'ECDH-ES + HKDF-256',
  [-29]: 'ECDH-ES + A128KW',
  [-30]: 'ECDH-ES + A192KW',
  [-31]: 'ECDH-ES + A256KW',
  5: 'HMAC 256/256',
  [-6]: 'direct',
};

/** CoAP content formats that name COSE structures (RFC 9052 §11.2). */
const CONTENT_TYPES: Record<number, string> = {
  96: 'COSE_Encrypt',
  16: 'COSE_Encrypt0',
  18: 'COSE_Sign1',
  98: 'COSE_Sign',
  97: 'COSE_Mac',
  17: 'COSE_Mac0',
  101: 'COSE_Key',
  60: 'application/cbor',
  50: 'application/json',
  0: 'text/plain',
};

const KTY_NAMES: Record<number, string> = { 1: 'OKP', 2: 'EC2', 4: 'Symmetric' };

const COSE_TAGS: Record<number, string> = {
  16: 'COSE_Encrypt0',
  17: 'COSE_Mac0',
  18: 'COSE_Sign1',
  96: 'COSE_Encrypt',
  97: 'COSE_Mac',
  98: 'COSE_Sign',
};

function intOf(item: CborItem): number | undefined {
  return (item.kind === 'uint' || item.kind === 'nint') && typeof item.value === 'number' ? item.value : undefined;
}

function bytesOf(item: CborItem): Uint8Array | undefined {
  return item.kind === 'bytes' ? item.value : undefined;
}

const comment =
  (text: string | undefined): Annotate =>
  () =>
    text === undefined ? undefined : { comment: text };

const labelled =
  (label: string, more: Annotation = {}): Annotate =>
  () => ({ label, ...more });

export interface CoseAnnotateOptions {
  /** A one-line description of a certificate (x5chain), e.g. its subject and issuer. */
  describeCertificate?: (der: Uint8Array) => string | undefined;
}

/** The annotator for a message of the profile (or any COSE message with these structures). */
export function coseAnnotator(options: CoseAnnotateOptions = {}): Annotate {
  type Where = 'message' | 'recipient';

  const coseKey: Annotate = (item) => {
    if (item.kind !== 'map') return undefined;
    const kty = item.entries.find(([k]) => intOf(k) === 1)?.[1];
    const symmetric = kty !== undefined && intOf(kty) === 4;
    const names: Record<number, string> = symmetric
      ? { 1: 'kty', 2: 'kid', 3: 'alg', 5: 'Base IV', [-1]: 'k' }
      : { 1: 'kty', 2: 'kid', 3: 'alg', [-1]: 'crv', [-2]: 'x', [-3]: 'y', [-4]: 'd' };
    return {
      entry: (key) => {
        const label = intOf(key);
        if (label === undefined || names[label] === undefined) return undefined;
        const value: Annotate | undefined =
          label === 1
            ? (v) => {
                const name = KTY_NAMES[intOf(v) ?? 0];
                return name === undefined ? undefined : { comment: name };
              }
            : label === -1 && !symmetric
              ? (v) => (intOf(v) === 1 ? { comment: 'P-256' } : undefined)
              : label === 3
                ? (v) => ({ comment: ALG_NAMES[intOf(v) ?? 0] ?? 'unknown alg' })
                : undefined;
        return { key: comment(names[label]), ...(value === undefined ? {} : { value }) };
      },
    };
  };

  const headerValue = (label: number, where: Where): Annotate | undefined => {
    switch (label) {
      case 1:
        return (v) => ({ comment: ALG_NAMES[intOf(v) ?? 0] ?? 'unknown alg' });
      case 3:
        return (v) => {
          const name = CONTENT_TYPES[intOf(v) ?? -1];
          return name === undefined ? undefined : { comment: name };
        };
      case 4:
        return (v) => {
          const bytes = bytesOf(v);
          if (bytes === undefined) return undefined;
          if (where === 'recipient') return { comment: 'cloud key id' };
          try {
            return { comment: `session kid, counter ${decodeKid(bytes)}` };
          } catch {
            return { comment: 'not a minimal counter' };
          }
        };
      case 5:
        return (v) => ({ comment: `IV, ${bytesOf(v)?.length ?? '?'} bytes` });
      case 6:
        return (v) => {
          const bytes = bytesOf(v);
          if (bytes === undefined) return undefined;
          try {
            return { comment: `seq ${decodePartialIv(bytes)}` };
          } catch {
            return { comment: 'not a minimal sequence number' };
          }
        };
      case 33:
        return (v) => {
          const der = bytesOf(v);
          if (der === undefined || options.describeCertificate === undefined) return undefined;
          const text = options.describeCertificate(der);
          return text === undefined ? undefined : { comment: text };
        };
      case -1:
        return coseKey;
      default:
        return undefined;
    }
  };

  const headerMap =
    (where: Where): Annotate =>
    (item) => {
      if (item.kind !== 'map') return undefined;
      return {
        entry: (key) => {
          const label = intOf(key);
          if (label === undefined) return undefined;
          const name = HEADER_NAMES[label];
          const value = headerValue(label, where);
          return { ...(name === undefined ? {} : { key: comment(name) }), ...(value === undefined ? {} : { value }) };
        },
      };
    };

  const protectedBucket =
    (where: Where): Annotate =>
    () => ({ label: 'protected', embedded: headerMap(where) });
  const unprotectedBucket =
    (where: Where): Annotate =>
    (item) => ({ label: 'unprotected', ...headerMap(where)(item) });

  const ciphertext: Annotate = (item) => {
    const n = bytesOf(item)?.length;
    return { label: 'ciphertext', ...(n === undefined ? {} : { comment: `${n} bytes incl. the 16-byte GCM tag` }) };
  };

  const recipient: Annotate = () => ({
    item: (i) => [protectedBucket('recipient'), unprotectedBucket('recipient'), labelled('wrapped CEK')][i],
  });

  const messageArray = (tag: number): Annotate | undefined => {
    switch (tag) {
      case 18:
        return () => ({
          item: (i) =>
            [
              protectedBucket('message'),
              unprotectedBucket('message'),
              (item: CborItem) => ({ label: 'payload', ...(looksLikeCose(item) ? { embedded: top } : {}) }),
              labelled('signature'),
            ][i],
        });
      case 16:
        return () => ({ item: (i) => [protectedBucket('message'), unprotectedBucket('message'), ciphertext][i] });
      case 96:
        return () => ({
          item: (i) =>
            [
              protectedBucket('message'),
              unprotectedBucket('message'),
              ciphertext,
              labelled('recipients', { item: () => recipient }),
            ][i],
        });
      default:
        return undefined;
    }
  };

  const top: Annotate = (item) => {
    if (item.kind !== 'tag' || typeof item.tag !== 'number') return undefined;
    const name = COSE_TAGS[item.tag];
    const content = messageArray(item.tag);
    return { ...(name === undefined ? {} : { label: name }), ...(content === undefined ? {} : { content }) };
  };
  return top;
}

/** A byte string that starts with a COSE message tag (16, 17, 18, 96, 97, 98). */
function looksLikeCose(item: CborItem): boolean {
  const b = bytesOf(item);
  if (b === undefined || b.length < 2) return false;
  return (b[0]! >= 0xd0 && b[0]! <= 0xd2) || (b[0] === 0xd8 && b[1]! >= 96 && b[1]! <= 98);
}
