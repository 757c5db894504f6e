/**
 * XS side of the heap check in test/xs/heap.test.ts: seals `scriptArgs[0]` (default 10,000) data
 * messages with the provider `scriptArgs[1]` (noble or native, default noble), each with a fresh
 * payload, as a device does, and prints the heap in use after a full collection
 * (`heap COUNT BYTES`) before the first and after 1,000, 2,000, 5,000 and the last.
 */
import { encode } from '../../../src/cbor/index.js';
import { newSessionKey, sealData } from '../../../src/profile/index.js';
import { emit, host, runMain } from './host.js';
import { readingPayload } from './protocol-input.js';
import { providerNamed } from './providers.js';

runMain(() => {
  const total = Number(host.scriptArgs[0] ?? 10000);
  const checkpoints = new Set([1000, 2000, 5000, total]);
  const crypto = providerNamed(host.scriptArgs[1]);
  const session = newSessionKey(crypto, 1);
  let bytes = 0;
  host.gc();
  emit('heap', 0, host.heapUsed());
  for (let seq = 0; seq < total; seq++) {
    bytes += sealData(crypto, session, seq, encode(readingPayload(seq))).length;
    if (checkpoints.has(seq + 1)) {
      host.gc();
      emit('heap', seq + 1, host.heapUsed());
    }
  }
  emit('sealed', total, bytes);
});
