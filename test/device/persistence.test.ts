/**
 * The records that must survive a power cut (src/device/durable.ts) and the kid allocator built
 * on them (src/device/kid-allocator.ts), on a store that erases before it writes (the ESP32's
 * Preference): a power cut is injected at every possible point, thousands of times.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErasingStore, MemoryStore } from '../../host-sim/store.js';
import { utf8Encode } from '../../src/bytes.js';
import { CredentialStore } from '../../src/device/credentials.js';
import { crc32, DurableRecord, decodeSlot, encodeSlot } from '../../src/device/durable.js';
import { KidAllocator } from '../../src/device/kid-allocator.js';

class PowerCut extends Error {}

/** A store that dies at its `cutAt`-th erase (before the write) or write (after it). */
function dyingStore(flash: MemoryStore, cutAt: number, phase: 'afterErase' | 'afterWrite') {
  let n = 0;
  let dead = false;
  const hook = (at: string) => () => {
    if (at === 'afterErase') n++;
    if (!dead && at === phase && n === cutAt) {
      dead = true;
      throw new PowerCut(at);
    }
  };
  const inner = new ErasingStore(flash, { afterErase: hook('afterErase'), afterWrite: hook('afterWrite') });
  return {
    get: (k: string) => inner.get(k),
    set: (k: string, v: Uint8Array) => {
      if (dead) throw new PowerCut('dead');
      inner.set(k, v);
    },
    delete: (k: string) => inner.delete(k),
    get dead() {
      return dead;
    },
  };
}

describe('DurableRecord', () => {
  test('slot format: version, generation, value, CRC-32', () => {
    assert.equal(crc32(utf8Encode('123456789')), 0xcbf43926, 'the CRC-32 check value');
    const slot = encodeSlot(7, Uint8Array.of(1, 2, 3));
    assert.deepEqual([...slot.subarray(0, 5)], [1, 0, 0, 0, 7]);
    assert.deepEqual(decodeSlot(slot), { generation: 7, value: Uint8Array.of(1, 2, 3) });
    for (let i = 0; i < slot.length; i++) {
      const torn = slot.slice();
      torn[i] = torn[i]! ^ 0x10;
      assert.equal(decodeSlot(torn), undefined, `a flipped byte ${i} is refused`);
    }
    assert.equal(decodeSlot(slot.subarray(0, slot.length - 1)), undefined, 'a short slot is refused');
  });

  test('writes alternate between the slots and reads take the newest', () => {
    const flash = new MemoryStore();
    const record = new DurableRecord(flash, 'r');
    assert.equal(record.read(), undefined);
    record.write(Uint8Array.of(1));
    record.write(Uint8Array.of(2));
    record.write(Uint8Array.of(3));
    assert.deepEqual(flash.keys(), ['r.a', 'r.b']);
    const again = new DurableRecord(flash, 'r').read()!;
    assert.deepEqual([...again.value], [3]);
    assert.equal(again.generation, 3);
  });

  test('a power cut inside any write leaves the previous or the new value, never less', () => {
    for (let cutAt = 1; cutAt <= 6; cutAt++) {
      for (const phase of ['afterErase', 'afterWrite'] as const) {
        const flash = new MemoryStore();
        const store = dyingStore(flash, cutAt, phase);
        const record = new DurableRecord(store, 'r');
        let completed = 0;
        try {
          for (let v = 1; v <= 6; v++) {
            record.write(Uint8Array.of(v));
            completed = v;
          }
        } catch (e) {
          assert.ok(e instanceof PowerCut);
        }
        const after = new DurableRecord(flash, 'r').read();
        const value = after?.value[0] ?? 0;
        assert.ok(
          value === completed || value === completed + 1,
          `cut ${phase} write ${cutAt}: read ${value} after ${completed}`,
        );
        assert.ok(completed === 0 || after !== undefined, 'never nothing once a write completed');
      }
    }
  });

  test('certificates are kept in one durable record', () => {
    const flash = new MemoryStore();
    const store = new CredentialStore(flash);
    assert.equal(store.load(), undefined);
    const c = {
      deviceCertificate: Uint8Array.of(1),
      caCertificate: Uint8Array.of(2),
      cloudCertificate: Uint8Array.of(3),
    };
    store.save(c);
    store.save({ ...c, cloudCertificate: Uint8Array.of(4) });
    assert.deepEqual(new CredentialStore(flash).load(), { ...c, cloudCertificate: Uint8Array.of(4) });
  });
});

describe('KidAllocator', () => {
  test('kids count 1, 2, 3 … with one store write per block', () => {
    const flash = new ErasingStore(new MemoryStore());
    const kids = new KidAllocator(flash, { block: 4 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map(() => kids.next()),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(flash.writes, 3);
    assert.equal(kids.reservation(), 12);
    // A reboot continues after the reservation: 10–12 may have been used, so they are skipped.
    const rebooted = new KidAllocator(flash, { block: 4 });
    assert.equal(rebooted.next(), 13);
  });

  test('large counters survive the record (8-byte big-endian)', () => {
    const flash = new MemoryStore();
    const kids = new KidAllocator(flash, { block: 1 });
    for (let i = 0; i < 3; i++) kids.next();
    const record = new DurableRecord(flash, 'kid');
    record.write(Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 5)); // 2^32 + 5
    assert.equal(new KidAllocator(flash).next(), 2 ** 32 + 6);
  });

  test('random power cuts (between erase and write, after a write, between sessions) never reuse a kid', () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const flash = new MemoryStore();
    const used = new Set<number>();
    let cuts = 0;
    for (let life = 0; life < 3000; life++) {
      const block = 1 + Math.floor(random() * 5);
      const store = dyingStore(flash, 1 + Math.floor(random() * 3), random() < 0.7 ? 'afterErase' : 'afterWrite');
      const kids = new KidAllocator(store, { block });
      const sessions = Math.floor(random() * 12);
      try {
        for (let s = 0; s < sessions; s++) {
          const kid = kids.next();
          assert.ok(!used.has(kid), `kid ${kid} reused in life ${life}`);
          used.add(kid);
        }
      } catch (e) {
        assert.ok(e instanceof PowerCut);
        cuts++;
      }
    }
    assert.ok(cuts > 500, `${cuts} power cuts`);
    assert.ok(used.size > 5000);
  });

  test('a failed reservation write hands out no kid', () => {
    const store = {
      get: () => undefined,
      set: () => {
        throw new Error('flash worn out');
      },
      delete: () => {},
    };
    const kids = new KidAllocator(store);
    assert.throws(() => kids.next(), /flash worn out/);
    assert.throws(() => kids.next(), /flash worn out/);
  });
});
