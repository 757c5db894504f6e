/** The crypto providers every protocol test runs against, and a deterministic wrapper for vectors. */
import { nodeCrypto } from '../node/crypto.js';
import { nobleCrypto } from '../src/crypto/noble.js';
import type { CryptoProvider, P256PrivateKey } from '../src/crypto/provider.js';

export const providers: CryptoProvider[] = [nobleCrypto(), nodeCrypto()];

/**
 * A provider whose randomness is a fixed stream of chunks (as the cose-wg `rng_stream` gives it):
 * each `randomBytes(n)` takes the next chunk and insists it is `n` bytes; `p256Generate` imports the
 * next 32-byte chunk as the private scalar. Throws when the stream runs out or a length differs.
 */
export function withRandomStream(base: CryptoProvider, chunks: Uint8Array[]): CryptoProvider {
  const queue = [...chunks];
  const next = (n: number, what: string): Uint8Array => {
    const chunk = queue.shift();
    if (chunk === undefined) throw new Error(`random stream exhausted (wanted ${n} bytes for ${what})`);
    if (chunk.length !== n) throw new Error(`random stream chunk is ${chunk.length} bytes, ${what} wanted ${n}`);
    return chunk;
  };
  return Object.assign(Object.create(base) as CryptoProvider, {
    randomBytes: (n: number) => next(n, 'randomBytes'),
    p256Generate: (): P256PrivateKey => base.p256Import(next(32, 'p256Generate')),
  });
}
