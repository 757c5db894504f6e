/**
 * Where the XS test host must behave as the Moddable SDK's XS on the device, not as the XS 13.3 it
 * is built from (native/xs-host/README.md, "Like the device"):
 *
 * - a host object is bytes only when C made it a host buffer (xsSetHostBuffer): the SDK's
 *   `_xsmcGetBuffer` throws "not host buffer" and its `fxGetBufferInfo` "invalid buffer", where XS
 *   13.3 read the object's `byteLength` and used its host data (for a P-256 key: the private scalar);
 * - the built-ins are frozen as the SDK's linker (xsl, `fxFreezeBuiltIns`) freezes them after the
 *   preload, so an assignment to a built-in property throws in strict code, as on the device.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInXs, runSourceInXs } from './run.js';

/** A P-256 scalar to import: the test looks for it in everything that comes back. */
const D = 'c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721';

test("a native P-256 key where bytes are expected is refused, as by the SDK's XS", async () => {
  const run = await runInXs('test/xs/entries/host-key-as-bytes.ts', { inputs: { XS_INPUT: { d: D } } });
  assert.equal(run.code, 0, `the XS run failed (exit ${run.code ?? run.signal}):\n${run.stderr}`);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.at(-1), 'done 15', run.stdout);

  // Genuine buffers still work in every consumer ("hi" = 68 69).
  const controls = lines.filter((l) => l.startsWith('control '));
  assert.deepEqual(controls, [
    'control TextDecoder.decode 00680069',
    'control TextEncoder.encodeInto {"read":2,"written":2}',
    'control new-Uint8Array 6869',
    'control new-DataView 6869',
    // SHA-256("hi")
    'control native-xs_cf_sha256 8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4',
  ]);

  // Host functions' names vary with the bundle (`@anonymous-531: `): left out.
  const cases = lines.filter((l) => l.startsWith('case ')).map((l) => l.replace(/@anonymous-\d+: /, ''));
  const accepted = cases.filter((l) => / accepted /.test(l));
  assert.deepEqual(accepted, [], `host objects accepted as bytes:\n${accepted.join('\n')}`);
  const plain = 'case key';
  const claiming = 'case key+byteLength';
  const posing = 'case key+byteLength+Uint8Array.prototype';
  assert.deepEqual(cases, [
    // The engine's refusals, with the SDK's messages: "not host buffer" (_xsmcGetBuffer) …
    `${plain} TextDecoder.decode refused TypeError not host buffer`,
    `${claiming} TextDecoder.decode refused TypeError not host buffer`,
    `${posing} TextDecoder.decode refused TypeError not host buffer`,
    // (the SDK module's own check comes first, unless the key poses as a Uint8Array)
    `${plain} TextEncoder.encodeInto refused Error Uint8Array only`,
    `${claiming} TextEncoder.encodeInto refused Error Uint8Array only`,
    `${posing} TextEncoder.encodeInto refused TypeError not host buffer`,
    // … and "invalid buffer" (fxGetBufferInfo)
    `${plain} new-Uint8Array refused TypeError Uint8Array: invalid buffer`,
    `${claiming} new-Uint8Array refused TypeError Uint8Array: invalid buffer`,
    `${posing} new-Uint8Array refused TypeError Uint8Array: invalid buffer`,
    `${plain} new-DataView refused TypeError DataView: invalid buffer`,
    `${claiming} new-DataView refused TypeError DataView: invalid buffer`,
    `${posing} new-DataView refused TypeError DataView: invalid buffer`,
    // The binding's own type check, then the engine's for a key that passes it.
    `${plain} native-xs_cf_sha256 refused TypeError sha256: data must be an ArrayBuffer or a Uint8Array`,
    `${claiming} native-xs_cf_sha256 refused TypeError sha256: data must be an ArrayBuffer or a Uint8Array`,
    `${posing} native-xs_cf_sha256 refused TypeError not host buffer`,
  ]);
  assert.ok(!run.stdout.includes(D), 'the private scalar leaked into the output');
});

/**
 * What the SDK's fxFreezeBuiltIns (xs/tools/xsl.c, 8.2.3) passes to Object.freeze, as far as
 * JavaScript can reach it: Atomics, JSON, Math, Reflect, the prototypes of the built-in classes,
 * iterators and function kinds, every typed array's prototype, Array.prototype[Symbol.unscopables].
 */
const frozenOnTheDevice = `
  const proto = Object.getPrototypeOf;
  const asyncGeneratorFunction = proto(async function* () {});
  const frozen = {
    Atomics, JSON, Math, Reflect,
    AggregateError: AggregateError.prototype, ArrayBuffer: ArrayBuffer.prototype, Array: Array.prototype,
    ArrayIterator: proto([][Symbol.iterator]()), AsyncFunction: proto(async function () {}),
    AsyncGeneratorFunction: asyncGeneratorFunction, AsyncGenerator: asyncGeneratorFunction.prototype,
    AsyncIterator: proto(asyncGeneratorFunction.prototype), BigInt: BigInt.prototype, Boolean: Boolean.prototype,
    Compartment: Compartment.prototype, DataView: DataView.prototype, Date: Date.prototype, Error: Error.prototype,
    EvalError: EvalError.prototype, FinalizationRegistry: FinalizationRegistry.prototype,
    Function: Function.prototype, GeneratorFunction: proto(function* () {}),
    Generator: proto(function* () {}).prototype, Iterator: proto(proto([][Symbol.iterator]())),
    MapIterator: proto(new Map()[Symbol.iterator]()), Map: Map.prototype, Number: Number.prototype,
    Object: Object.prototype, Promise: Promise.prototype, RangeError: RangeError.prototype,
    ReferenceError: ReferenceError.prototype, RegExp: RegExp.prototype,
    RegExpStringIterator: proto('a'.matchAll(/a/g)), SetIterator: proto(new Set()[Symbol.iterator]()),
    Set: Set.prototype, SharedArrayBuffer: SharedArrayBuffer.prototype,
    StringIterator: proto(''[Symbol.iterator]()), String: String.prototype, Symbol: Symbol.prototype,
    SyntaxError: SyntaxError.prototype, TypedArray: proto(Uint8Array.prototype), TypeError: TypeError.prototype,
    URIError: URIError.prototype, WeakMap: WeakMap.prototype, WeakRef: WeakRef.prototype, WeakSet: WeakSet.prototype,
    unscopables: Array.prototype[Symbol.unscopables],
  };
  for (const T of [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array]) frozen[T.name] = T.prototype;
`;

test('the built-ins are frozen as the SDK freezes them, so assigning to them throws', async () => {
  const run = await runSourceInXs(
    `${frozenOnTheDevice}
    print('not-frozen', Object.entries(frozen).filter(([, o]) => !Object.isFrozen(o)).map(([n]) => n).join(' ') || '-');
    // Each assigns the value a property already has: harmless where it succeeds, a TypeError where frozen.
    const attempts = {
      'Error.prototype.name': () => { Error.prototype.name = 'Error'; },
      'Object.prototype.polluted': () => { Object.prototype.polluted = 1; },
      'Array.prototype.includes': () => { Array.prototype.includes = Array.prototype.includes; },
      'JSON.parse': () => { JSON.parse = JSON.parse; },
      'Math.random': () => { Math.random = Math.random; },
      'String.prototype.trim': () => { String.prototype.trim = String.prototype.trim; },
      'Promise.prototype.then': () => { Promise.prototype.then = Promise.prototype.then; },
      'Uint8Array.prototype.fill': () => { Uint8Array.prototype.fill = Uint8Array.prototype.fill; },
      // Inherited non-writable properties cannot be shadowed by assignment (the Error.name bug).
      'subclass this.name': () => { class AppError extends Error { constructor() { super('m'); this.name = 'AppError'; } } new AppError(); },
      'plain object toString': () => { const o = {}; o.toString = () => 'o'; },
    };
    for (const [name, attempt] of Object.entries(attempts)) {
      try { attempt(); print('assign', name, 'succeeded'); } catch (e) { print('assign', name, 'threw', e.name); }
    }
    // Left open, as by the SDK: the global object and the constructors themselves.
    globalThis.appState = 1;
    print('open', appState, Object.isFrozen(globalThis), Object.isFrozen(Error), Object.isFrozen(Object));
    // Defining (not assigning) an own property still shadows a frozen one.
    class DefinedError extends Error { constructor() { super('m'); Object.defineProperty(this, 'name', { value: 'DefinedError' }); } }
    print('defined', new DefinedError().name);`,
    { format: 'esm' },
  );
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.deepEqual(lines, [
    'not-frozen -',
    'assign Error.prototype.name threw TypeError',
    'assign Object.prototype.polluted threw TypeError',
    'assign Array.prototype.includes threw TypeError',
    'assign JSON.parse threw TypeError',
    'assign Math.random threw TypeError',
    'assign String.prototype.trim threw TypeError',
    'assign Promise.prototype.then threw TypeError',
    'assign Uint8Array.prototype.fill threw TypeError',
    'assign subclass this.name threw TypeError',
    'assign plain object toString threw TypeError',
    'open 1 false false false',
    'defined DefinedError',
  ]);
});

test('frozenBuiltIns: false leaves the built-ins as XS makes them (the opt-out)', async () => {
  const run = await runSourceInXs(
    `${frozenOnTheDevice}
    print(Object.entries(frozen).filter(([, o]) => Object.isFrozen(o)).map(([n]) => n).join(' ') || '-');
    Error.prototype.name = 'E'; print(new Error('x').name);`,
    { format: 'esm', frozenBuiltIns: false },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, '-\nE\n');
});
