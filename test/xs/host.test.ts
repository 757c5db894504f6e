/**
 * The XS test host itself (native/xs-host): its globals, the promise job loop, modules, and how
 * it reports failures (exit status, message and stack on stderr).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { projectRoot } from '../vectors.js';
import { ensureXsHost, runSourceInXs, xsHostPath } from './run.js';

const quietly = { keepBundle: false } as const;

test('the build script is a no-op when the host is up to date', () => {
  ensureXsHost();
  const result = spawnSync(process.execPath, ['scripts/build-xs-host.js'], { cwd: projectRoot, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  // Its own word that it compiled nothing (a time bound would fail on a loaded machine).
  assert.match(result.stdout, /is up to date/);
  assert.doesNotMatch(result.stdout, /compiling|^ {2}cc /m);
});

test('print writes its arguments, space-separated, one line per call; scriptArgs are the arguments', async () => {
  const run = await runSourceInXs("print('a', 1, true, null, [1, 2], scriptArgs.join('|')); print();", {
    args: ['x', 'y z'],
  });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'a 1 true null 1,2 x|y z\n\n');
  assert.equal(run.stderr, '');
});

test('promise jobs run until the queue is empty', async () => {
  const run = await runSourceInXs(`
    const order = [];
    Promise.resolve().then(() => order.push(2)).then(() => Promise.resolve().then(() => order.push(4)));
    (async () => { await null; order.push(3); for (let i = 0; i < 100; i++) await i; order.push(5); })();
    order.push(1);
    (async () => { await new Promise((resolve) => Promise.resolve().then(resolve)); await null; print(order.join(',')); })();
  `);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, '1,2,3,4\n');
  const later = await runSourceInXs(
    'let n = 0; const step = () => (++n < 1000 ? Promise.resolve().then(step) : print(n)); step();',
  );
  assert.equal(later.stdout, '1000\n');
});

test('a module file runs as an ES module, with top-level await', async () => {
  const run = await runSourceInXs('const v = await Promise.resolve(41); print(v + 1, typeof this);', {
    format: 'esm',
  });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, '42 undefined\n');
});

test('an uncaught exception exits 1 with its message and stack (file:line) on stderr', async () => {
  const run = await runSourceInXs(
    "print('before');\nfunction inner() { throw new TypeError('boom'); }\nfunction outer() { inner(); }\nouter();\nprint('after');",
    quietly,
  );
  assert.equal(run.code, 1);
  assert.equal(run.stdout, 'before\n');
  assert.match(
    run.stderr,
    /^uncaught exception: TypeError: boom\n at inner \(.*source-\d+-\d+\.js:2\)\n at outer \(.*:3\)/,
  );
  const thrown = await runSourceInXs("throw 'a string'", quietly);
  assert.equal(thrown.code, 1);
  assert.equal(thrown.stderr, 'uncaught exception: a string\n');
});

test('an exception in a module, also after an await, exits 1', async () => {
  const run = await runSourceInXs("await null;\nthrow new RangeError('late');", { ...quietly, format: 'esm' });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^uncaught exception: RangeError: late\n at .*\.mjs:2\)/);
});

test('an unhandled promise rejection exits 1 after the other jobs ran', async () => {
  const run = await runSourceInXs(
    "Promise.reject(new Error('nobody listens'));\nPromise.resolve().then(() => print('still ran'));",
    quietly,
  );
  assert.equal(run.code, 1);
  assert.equal(run.stdout, 'still ran\n');
  assert.match(run.stderr, /^unhandled promise rejection: Error: nobody listens\n/);
  const handled = await runSourceInXs("Promise.reject(new Error('x')).catch(() => print('handled'));");
  assert.equal(handled.code, 0, handled.stderr);
});

test('a syntax error exits 1 and names the file and line', async () => {
  const run = await runSourceInXs('print(1);\nlet = ;\n', quietly);
  assert.equal(run.code, 1);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /source-\d+-\d+\.js:2: syntax error: /);
});

test('a stack overflow aborts with exit 3 and the innermost frames', async () => {
  const run = await runSourceInXs('function deep(n) { return deep(n + 1) + 1; }\ndeep(0);', quietly);
  assert.equal(run.code, 3);
  assert.match(run.stderr, /^xs-host: XS aborted: stack overflow/);
  assert.match(run.stderr, /\n at deep \(.*:1\)\n/);
  const bigger = await runSourceInXs('function deep(n) { return n === 0 ? 0 : deep(n - 1) + 1; }\nprint(deep(300));', {
    stackSlots: 8192,
  });
  assert.equal(bigger.code, 0, bigger.stderr);
});

test('an abort frees the script it interrupted (LeakSanitizer in the sanitized host)', async () => {
  const leakCheck = { ...quietly, sanitized: true, env: { ASAN_OPTIONS: 'detect_leaks=1' } };
  const overflow = 'function deep(n) { return deep(n + 1) + 1; }\ndeep(0);';
  for (const format of ['iife', 'esm'] as const) {
    const run = await runSourceInXs(overflow, { ...leakCheck, format });
    assert.doesNotMatch(run.stderr, /LeakSanitizer/, `${format}: ${run.stderr.slice(-2000)}`);
    assert.equal(run.code, 3, `${format}: ${run.stderr.slice(-2000)}`);
    assert.match(run.stderr, /^xs-host: XS aborted: stack overflow/);
  }
  // The same run without an abort, for comparison: nothing leaks either.
  const clean = await runSourceInXs(
    'function deep(n) { return n ? deep(n - 1) + 1 : 0; }\nprint(deep(50));',
    leakCheck,
  );
  assert.equal(clean.code, 0, clean.stderr);
  assert.equal(clean.stdout, '50\n');
});

test('crypto.getRandomValues fills integer typed arrays from the kernel and checks its argument', async () => {
  const run = await runSourceInXs(`
    const a = new Uint8Array(4096);
    print(crypto.getRandomValues(a) === a, a.some((b) => b !== 0));
    const counts = new Array(256).fill(0);
    for (const b of a) counts[b]++;
    print(Math.max(...counts) < 64);
    const b = new Uint8Array(4096); crypto.getRandomValues(b);
    print(a.every((v, i) => v === b[i]));
    const whole = new Uint8Array(32); crypto.getRandomValues(whole.subarray(8, 24));
    print(whole.subarray(0, 8).every((v) => v === 0), whole.subarray(24).every((v) => v === 0), whole.subarray(8, 24).some((v) => v !== 0));
    for (const T of [Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array]) {
      const t = new T(8); crypto.getRandomValues(t); print(T.name, t.some((v) => v != 0));
    }
    for (const bad of [new Float32Array(2), new Float64Array(2), new DataView(new ArrayBuffer(4)), new ArrayBuffer(4), [1, 2], 'x', undefined]) {
      try { crypto.getRandomValues(bad); print('accepted', bad); } catch (e) { print(e.name); }
    }
    crypto.getRandomValues(new Uint8Array(65536));
    try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { print(e.name); }
  `);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.trim().split('\n'), [
    'true true',
    'true',
    'false',
    'true true true',
    'Int8Array true',
    'Uint8ClampedArray true',
    'Int16Array true',
    'Uint16Array true',
    'Int32Array true',
    'Uint32Array true',
    'BigInt64Array true',
    'BigUint64Array true',
    ...Array(7).fill('TypeError'),
    'RangeError',
  ]);
});

test('native(name) finds host functions in the C table and refuses unknown names', async () => {
  const run = await runSourceInXs(`
    const fill = native('xs_cf_get_random_values');
    print(typeof fill, fill.length, fill(new Uint8Array(16)).length);
    for (const name of ['xs_nope', '', 42]) { try { native(name); print('found', name); } catch (e) { print(e.name); } }
  `);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'function 1 16\nReferenceError\nReferenceError\nTypeError\n');
});

test('Native(name) makes a class of host objects with that destructor, as xsc does', async () => {
  const run = await runSourceInXs(`
    const Base = Native('xs_cf_p256_key_destructor');
    print(typeof Base, Base.length, Object.getPrototypeOf(Base.prototype) === Object.prototype);
    try { Base(); print('called'); } catch (e) { print(e.name); }
    const make = native('xs_cf_p256_key_generate');
    class Key extends Base {
      #publicKey;
      constructor() { super(); this.#publicKey = new Uint8Array(make.call(this)); }
      get publicKey() { return this.#publicKey; }
    }
    const key = new Key();
    print(key instanceof Key, key instanceof Base, key.publicKey.length, key.publicKey[0]);
    try { make.call(key); } catch (e) { print(e.name); }
    try { make.call({}); } catch (e) { print(e.name); }
    for (const name of ['xs_nope', 42]) { try { Native(name); print('found', name); } catch (e) { print(e.name); } }
    let keys = []; for (let i = 0; i < 500; i++) keys.push(new Key());
    gc(); const full = heapUsed(); keys = null; gc();
    print(heapUsed() < full);
  `);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(
    run.stdout,
    'function 0 true\nTypeError\ntrue true 65 4\nTypeError\nTypeError\nReferenceError\nTypeError\ntrue\n',
  );
});

test('heapUsed() after gc() follows what the program keeps', async () => {
  const run = await runSourceInXs(`
    gc(); const base = heapUsed();
    let kept = []; for (let i = 0; i < 20000; i++) kept.push({ i, s: 'item ' + i });
    gc(); const full = heapUsed();
    kept = null; gc(); const after = heapUsed();
    print(full - base > 20000 * 32, after - base < 4096, typeof TextEncoder, typeof TextDecoder);
  `);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'true true function function\n');
});

test('a bad command line or an unreadable file exits 2', () => {
  ensureXsHost();
  for (const args of [[], ['--stack', '5', 'x.js'], ['--bogus', 'x.js'], ['/nonexistent/file.js']]) {
    const result = spawnSync(xsHostPath, args, { encoding: 'utf8' });
    assert.equal(result.status, 2, `xs-host ${args.join(' ')}: ${result.stderr}`);
    assert.notEqual(result.stderr, '');
  }
});
