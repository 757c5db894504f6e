/**
 * The Project Wycheproof suites that match cose-flow/1's parameters, as checks of a
 * CryptoProvider: which files and groups apply, how each case is run, and how a run is judged.
 * Runtime-neutral (no Node APIs): test/crypto/wycheproof.test.ts runs them on Node for the noble
 * and node providers, test/native/entries/provider.ts inside XS for the native provider, and
 * test/native/cases.ts writes the same selection for the C test program.
 */
import { equal, fromHex, toHex } from '../../src/bytes.js';
import { CryptoError, type CryptoProvider, type CryptoReason } from '../../src/crypto/provider.js';

export type Result = 'valid' | 'invalid' | 'acceptable';

export interface VectorTest {
  tcId: number;
  comment: string;
  flags: string[];
  result: Result;
  [field: string]: unknown;
}

export interface VectorGroup {
  type: string;
  tests: VectorTest[];
  [field: string]: unknown;
}

export interface VectorFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: VectorGroup[];
}

/** What one case did: accepted (with the right output), rejected, or a failure to report. */
export type Verdict = { outcome: 'accepted' | 'rejected' } | { failure: string };

const ACCEPTED: Verdict = { outcome: 'accepted' };
const REJECTED: Verdict = { outcome: 'rejected' };

/** Runs `fn`; a CryptoError with one of `reasons` is a rejection, anything else thrown is a failure. */
function attempt<T>(what: string, reasons: CryptoReason[], fn: () => T): { value: T } | { rejected: true } | string {
  try {
    return { value: fn() };
  } catch (e) {
    if (e instanceof CryptoError && reasons.includes(e.reason)) return { rejected: true };
    const detail = e instanceof CryptoError ? `CryptoError('${e.reason}')` : String(e);
    return `${what} threw ${detail}; expected a result or CryptoError(${reasons.map((r) => `'${r}'`).join('|')})`;
  }
}

function hex(t: VectorTest, field: string): Uint8Array {
  const value = t[field];
  if (typeof value !== 'string') throw new Error(`tcId ${t.tcId}: field ${field} is not a hex string`);
  return fromHex(value);
}

/** A big-endian integer of any hex length as exactly 32 bytes (strip leading zeros, left-pad). */
function scalar32(hexValue: string): Uint8Array {
  let h = hexValue;
  while (h.length > 64 && h.startsWith('00')) h = h.slice(2);
  if (h.length > 64) throw new Error(`scalar longer than 32 bytes: ${hexValue}`);
  return fromHex(h.padStart(64, '0'));
}

export interface Suite {
  file: string;
  /** Which groups apply (cose-flow's parameters); the others are counted but not run. */
  select: (g: VectorGroup) => boolean;
  /** How many tests the selected groups hold, as documented in the vectors' README. */
  expectedSelected: number;
  check: (p: CryptoProvider, g: VectorGroup, t: VectorTest) => Verdict;
}

export const suites: Suite[] = [
  {
    file: 'ecdsa_secp256r1_sha256_p1363_test.json',
    select: (g) => g.type === 'EcdsaP1363Verify' && g.sha === 'SHA-256',
    expectedSelected: 262,
    check(p, g, t) {
      const publicKey = fromHex((g.publicKey as { uncompressed: string }).uncompressed);
      let ok: boolean;
      try {
        ok = p.ecdsaP256Verify(publicKey, hex(t, 'msg'), hex(t, 'sig'));
      } catch (e) {
        return { failure: `ecdsaP256Verify threw ${String(e)} (it must never throw)` };
      }
      if (typeof ok !== 'boolean') return { failure: `ecdsaP256Verify returned ${String(ok)}` };
      return ok ? ACCEPTED : REJECTED;
    },
  },
  {
    file: 'ecdh_secp256r1_ecpoint_test.json',
    select: (g) => g.type === 'EcdhEcpointTest' && g.curve === 'secp256r1',
    expectedSelected: 355,
    check(p, _g, t) {
      const d = scalar32(t.private as string);
      const key = attempt('p256Import', ['bad-key'], () => p.p256Import(d));
      if (typeof key === 'string') return { failure: key };
      if ('rejected' in key) return REJECTED;
      const shared = attempt('ecdhP256', ['bad-key'], () => p.ecdhP256(key.value, hex(t, 'public')));
      if (typeof shared === 'string') return { failure: shared };
      if ('rejected' in shared) return REJECTED;
      const want = hex(t, 'shared');
      if (!equal(shared.value, want)) {
        return { failure: `shared secret ${toHex(shared.value)}, expected ${toHex(want)}` };
      }
      return ACCEPTED;
    },
  },
  {
    file: 'aes_gcm_test.json',
    select: (g) => g.type === 'AeadTest' && g.keySize === 128 && g.ivSize === 96 && g.tagSize === 128,
    expectedSelected: 67,
    check(p, _g, t) {
      const key = hex(t, 'key');
      const iv = hex(t, 'iv');
      const aad = hex(t, 'aad');
      const msg = hex(t, 'msg');
      const sealed = new Uint8Array([...hex(t, 'ct'), ...hex(t, 'tag')]);
      const opened = attempt('aesGcmDecrypt', ['decrypt-failed'], () => p.aesGcmDecrypt(key, iv, sealed, aad));
      if (typeof opened === 'string') return { failure: opened };
      if (t.result === 'valid') {
        const made = attempt('aesGcmEncrypt', [], () => p.aesGcmEncrypt(key, iv, msg, aad));
        if (typeof made === 'string') return { failure: made };
        if (!('value' in made) || !equal(made.value, sealed)) {
          return {
            failure: `aesGcmEncrypt gave ${'value' in made ? toHex(made.value) : '?'}, expected ${toHex(sealed)}`,
          };
        }
      }
      if ('rejected' in opened) return REJECTED;
      if (!equal(opened.value, msg))
        return { failure: `aesGcmDecrypt gave ${toHex(opened.value)}, expected ${toHex(msg)}` };
      return ACCEPTED;
    },
  },
  {
    file: 'aes_wrap_test.json',
    select: (g) => g.type === 'KeywrapTest' && g.keySize === 128,
    expectedSelected: 42,
    check(p, _g, t) {
      const kek = hex(t, 'key');
      const msg = hex(t, 'msg');
      const ct = hex(t, 'ct');
      const wrapped = attempt('aesKeyWrap', ['bad-input'], () => p.aesKeyWrap(kek, msg));
      if (typeof wrapped === 'string') return { failure: wrapped };
      const unwrapped = attempt('aesKeyUnwrap', ['decrypt-failed'], () => p.aesKeyUnwrap(kek, ct));
      if (typeof unwrapped === 'string') return { failure: unwrapped };
      const wrapMatches = 'value' in wrapped && equal(wrapped.value, ct);
      const unwrapMatches = 'value' in unwrapped && equal(unwrapped.value, msg);
      if (t.result === 'valid') {
        if (!wrapMatches) {
          return { failure: `aesKeyWrap gave ${'value' in wrapped ? toHex(wrapped.value) : 'a rejection'}` };
        }
        if (!unwrapMatches) {
          return { failure: `aesKeyUnwrap gave ${'value' in unwrapped ? toHex(unwrapped.value) : 'a rejection'}` };
        }
        return ACCEPTED;
      }
      // Rejected means: unwrap refuses ct, and wrap either refuses msg or makes something other than ct.
      if ('value' in unwrapped || wrapMatches) return ACCEPTED;
      return REJECTED;
    },
  },
  {
    file: 'hkdf_sha256_test.json',
    select: (g) => g.type === 'HkdfTest',
    expectedSelected: 86,
    check(p, _g, t) {
      const okm = attempt('hkdfSha256', ['bad-input'], () =>
        p.hkdfSha256(hex(t, 'ikm'), hex(t, 'salt'), hex(t, 'info'), t.size as number),
      );
      if (typeof okm === 'string') return { failure: okm };
      if ('rejected' in okm) return REJECTED;
      const want = hex(t, 'okm');
      if (!equal(okm.value, want)) return { failure: `okm ${toHex(okm.value)}, expected ${toHex(want)}` };
      return ACCEPTED;
    },
  },
];

/** What running one suite on one provider gave. */
export interface SuiteRun {
  tally: { run: number; valid: number; invalid: number; acceptable: number; acceptableAccepted: number };
  /** One line per failed case, naming the file and tcId. */
  failures: string[];
}

/**
 * Runs every case of the selected groups (`groups`, already filtered by `suite.select`): a valid
 * case must be accepted with the expected output, an invalid one rejected, an acceptable one may
 * go either way but must not crash.
 */
export function runSuite(suite: Suite, groups: VectorGroup[], provider: CryptoProvider): SuiteRun {
  const tally = { run: 0, valid: 0, invalid: 0, acceptable: 0, acceptableAccepted: 0 };
  const failures: string[] = [];
  for (const group of groups) {
    for (const t of group.tests) {
      tally.run++;
      const where = `${suite.file} tcId ${t.tcId} (${t.result}${t.flags.length ? `, ${t.flags.join(',')}` : ''})`;
      let verdict: Verdict;
      try {
        verdict = suite.check(provider, group, t);
      } catch (e) {
        verdict = { failure: `crashed: ${String(e)}` };
      }
      if ('failure' in verdict) {
        failures.push(`${where}: ${verdict.failure}`);
      } else if (t.result === 'valid') {
        if (verdict.outcome === 'accepted') tally.valid++;
        else failures.push(`${where}: valid case rejected`);
      } else if (t.result === 'invalid') {
        if (verdict.outcome === 'rejected') tally.invalid++;
        else failures.push(`${where}: invalid case accepted`);
      } else {
        tally.acceptable++;
        if (verdict.outcome === 'accepted') tally.acceptableAccepted++;
      }
    }
  }
  return { tally, failures };
}

/** The one-line summary of a run, as the tests log it. */
export function describeRun(suite: Suite, provider: string, { tally, failures }: SuiteRun): string {
  return (
    `wycheproof ${suite.file} [${provider}]: ${tally.run} run, ${tally.valid} valid accepted, ` +
    `${tally.invalid} invalid rejected, ${tally.acceptable} acceptable ` +
    `(${tally.acceptableAccepted} accepted, ${tally.acceptable - tally.acceptableAccepted} rejected)` +
    (failures.length ? `, ${failures.length} FAILED` : '')
  );
}
