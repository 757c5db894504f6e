/**
 * PEM (RFC 7468) for the device: certificates given in configuration, and the certification
 * request a device prints for offline provisioning. Runtime-neutral (XS has no atob/btoa).
 *
 *   pemDecode('-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----', 'CERTIFICATE') // DER
 *   pemDecode('MIIB…', 'CERTIFICATE')           // the base64 body alone is read the same way
 *   pemEncode(der, 'CERTIFICATE REQUEST')       // 64-column PEM text, ending in a newline
 *
 * Whitespace anywhere in the base64 is ignored (so a PEM fits on one line of a manifest's JSON,
 * with or without `\n`). Anything else — another label, two blocks, text around the block,
 * characters outside the standard base64 alphabet, bad padding — is refused with a RangeError
 * that says what was wrong.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
    out += i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63]! : '=';
    out += i + 2 < bytes.length ? ALPHABET[n & 63]! : '=';
  }
  return out;
}

/** Standard base64 with padding; whitespace is skipped. RangeError for anything else. */
export function fromBase64(text: string): Uint8Array {
  let clean = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
    if (c !== '=' && ALPHABET.indexOf(c) < 0) throw new RangeError(`not base64: ${JSON.stringify(c)} at offset ${i}`);
    clean += c;
  }
  if (clean.length === 0) throw new RangeError('no base64 data');
  if (clean.length % 4 !== 0) throw new RangeError(`base64 length ${clean.length} is not a multiple of 4`);
  const padding = clean.endsWith('==') ? 2 : clean.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((clean.length / 4) * 3 - padding);
  let at = 0;
  for (let i = 0; i < clean.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = clean[i + j]!;
      const pad = c === '=' && i + 4 === clean.length && j >= 4 - padding;
      const v = pad ? 0 : ALPHABET.indexOf(c);
      if (v < 0 || (c === '=' && !pad)) throw new RangeError(`not base64: ${JSON.stringify(c)} at offset ${i + j}`);
      n = (n << 6) | v;
    }
    if (at < out.length) out[at++] = n >> 16;
    if (at < out.length) out[at++] = (n >> 8) & 255;
    if (at < out.length) out[at++] = n & 255;
  }
  if (toBase64(out) !== clean) throw new RangeError('not canonical base64 (bits set after the last byte)');
  return out;
}

/** PEM text of `der` under `label` (e.g. "CERTIFICATE", "CERTIFICATE REQUEST"), 64 columns. */
export function pemEncode(der: Uint8Array, label: string): string {
  const body = toBase64(der);
  let lines = '';
  for (let i = 0; i < body.length; i += 64) lines += `${body.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${lines}-----END ${label}-----\n`;
}

/**
 * The DER inside one PEM block labelled `label`, or the DER of a bare base64 body. Surrounding
 * whitespace is allowed; other text, another label or a second block are not.
 */
export function pemDecode(text: string, label: string): Uint8Array {
  const trimmed = text.trim();
  if (!trimmed.startsWith('-----')) {
    if (trimmed.includes('-')) throw new RangeError(`neither PEM nor base64: it contains "-" outside a PEM header`);
    return fromBase64(trimmed);
  }
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  if (!trimmed.startsWith(begin)) {
    const header = trimmed.slice(0, trimmed.indexOf('-----', 5) + 5);
    throw new RangeError(`expected a PEM "${label}" block, found ${JSON.stringify(header)}`);
  }
  const stop = trimmed.indexOf(end);
  if (stop < 0) throw new RangeError(`the PEM "${label}" block has no "${end}" line`);
  if (stop + end.length !== trimmed.length) throw new RangeError(`text after the PEM "${label}" block`);
  const body = trimmed.slice(begin.length, stop);
  if (body.includes('-')) throw new RangeError(`the PEM "${label}" block holds a header or another block`);
  return fromBase64(body);
}
