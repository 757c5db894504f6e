/**
 * Leak check in the XS engine: sealing data messages must not leave anything behind. The entry
 * seals 10,000 messages with each provider (noble; native, the C over PSA Crypto) and reports the
 * heap in use (chunks + slots, after a full collection) at 1,000 and at 10,000; the difference
 * must stay under a small bound. The first thousand may grow the heap (noble's precomputed
 * tables, cbor-x's buffers); after that, a steady state.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInXs } from './run.js';

const MESSAGES = 10_000;
/** Bytes the heap may grow between message 1,000 and 10,000 (fragmentation, not leaks). */
const BOUND = 16 * 1024;

for (const provider of ['noble', 'native']) {
  test(`sealing ${MESSAGES} data messages in XS with the ${provider} provider does not grow the heap`, async (t) => {
    const run = await runInXs('test/xs/entries/heap.ts', { args: [String(MESSAGES), provider] });
    assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
    const heap = new Map(
      run.stdout
        .split('\n')
        .filter((line) => line.startsWith('heap '))
        .map((line) => line.split(' ').slice(1).map(Number) as [number, number]),
    );
    assert.match(run.stdout, new RegExp(`^sealed ${MESSAGES} \\d+$`, 'm'));
    const at1k = heap.get(1000);
    const at10k = heap.get(MESSAGES);
    assert.ok(at1k !== undefined && at10k !== undefined, `no heap numbers from XS:\n${run.stdout}`);
    t.diagnostic(
      `XS heap in use after gc: start ${heap.get(0)} B, after 1,000 messages ${at1k} B, ` +
        `after ${MESSAGES} ${at10k} B (growth ${at10k - at1k} B; ${run.ms} ms)`,
    );
    assert.ok(at10k - at1k <= BOUND, `the heap grew by ${at10k - at1k} bytes from 1,000 to ${MESSAGES} messages`);
  });
}
