/**
 * Where the XS test host must behave as the Moddable SDK's XS on the device, not as the XS 13.3 it
 * is built from (native/xs-host/README.md, "Like the device"):
 *
 * - a host object is bytes only when C made it a host buffer (xsSetHostBuffer): the SDK's
 *   `_xsmcGetBuffer` throws "not host buffer" and its `fxGetBufferInfo` "invalid buffer", where XS
 *   13.3 read the object's `byteLength` and used its host data (for a P-256 key: the private scalar).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInXs } from './run.js';

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
