/**
 * The device's own SDK modules (src/moddable/sdk/clock.ts, sensor.ts, network.ts, mqtt.ts) run in
 * the XS test host, the real modules over small fakes of the SDK modules they import
 * (test/moddable/sdk-fakes.ts), since the SDK is not part of CI:
 * - uptime counts from the application's start, also where `Time.ticks` is the wall clock (the
 *   Linux simulator), and across the wrap of a 32-bit tick counter (the ESP32);
 * - a failed connection, which the SDK's mqtt/js reports as `error` with no argument, is logged
 *   with the broker's URL (without credentials) and how far the attempt got;
 * - mqtts:// takes the CA from the configuration, refuses to start without one, and a certificate
 *   that does not verify fails the connection with the TLS error instead of aborting the device.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { build, type Plugin } from 'esbuild';
import { projectRoot } from '../vectors.js';
import { runSourceInXs } from '../xs/run.js';

const fakes = join(projectRoot, 'test/moddable/sdk-fakes.ts');

/** Each SDK module the code under test imports, and the export of sdk-fakes.ts that stands in for it. */
const SDK_MODULES: Record<string, string> = {
  time: 'Time',
  timer: 'Timer',
  instrumentation: 'Instrumentation',
  'mqtt/js': '*',
  'embedded:io/socket/tcp': 'FakeTCP',
  'embedded:io/socket/udp': 'FakeUDP',
  'embedded:io/socket/tcp/tls': 'FakeTLSSocket',
  'embedded:network/dns/resolver/udp': 'FakeResolver',
  'embedded:network/mqtt/client': 'FakeMqttClient',
};

const sdkFakes: Plugin = {
  name: 'moddable-sdk-fakes',
  setup(b) {
    const filter = new RegExp(
      `^(${Object.keys(SDK_MODULES)
        .map((m) => m.replace(/[/.]/g, '\\$&'))
        .join('|')})$`,
    );
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'sdk-fake' }));
    b.onLoad({ filter: /.*/, namespace: 'sdk-fake' }, (args) => {
      const name = SDK_MODULES[args.path]!;
      const contents =
        name === '*'
          ? `export * from ${JSON.stringify(fakes)};`
          : `export { ${name} as default } from ${JSON.stringify(fakes)};`;
      return { contents, loader: 'ts', resolveDir: projectRoot };
    });
  },
};

/** Bundles `entry` with the SDK fakes and runs it in the XS host; returns its `name value` lines. */
async function runEntry(entry: string): Promise<Map<string, string>> {
  const outfile = join(projectRoot, 'native/build/xs-bundles', `moddable-${entry}-${process.pid}.mjs`);
  await build({
    entryPoints: [join(projectRoot, 'test/moddable/entries', `${entry}.ts`)],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    supported: { 'class-static-field': false },
    mainFields: ['module', 'main'],
    conditions: ['import', 'default'],
    plugins: [sdkFakes],
    // its `paths` resolve `@target/*` to the desktop simulator's files (src/moddable/sim/)
    tsconfig: join(projectRoot, 'tsconfig.moddable.json'),
    logLevel: 'silent',
    absWorkingDir: projectRoot,
  });
  const source = readFileSync(outfile, 'utf8');
  rmSync(outfile, { force: true });
  const run = await runSourceInXs(source, { format: 'esm', timeoutMs: 120_000 });
  assert.equal(
    run.code,
    0,
    `test/moddable/entries/${entry}.ts failed in XS (exit ${run.code ?? run.signal}):\n${run.stderr}`,
  );
  const lines = new Map<string, string>();
  for (const line of run.stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) lines.set(line.slice(0, space), line.slice(space + 1));
  }
  return lines;
}

test('uptime counts from the start where Time.ticks is the wall clock, and across 32-bit wraps (XS)', async () => {
  const out = await runEntry('clock');
  const number = (name: string) => Number(out.get(name));
  assert.equal(number('start-uptime-ms'), 0, 'uptime at start, not ~1.8e12 ms');
  assert.equal(number('start-reading-uptime-s'), 0, "a reading's uptime at start, not ~1.8e9 s");
  assert.equal(number('later-uptime-ms'), 5250);
  assert.equal(number('later-reading-uptime-s'), 5.25);
  assert.equal(number('set-back-uptime-ms'), 5250, 'a wall clock set back does not take uptime back');
  assert.equal(number('after-set-back-uptime-ms'), 6250, 'and uptime goes on from there');
  assert.equal(out.get('wall-clock'), 'true');
  assert.equal(out.get('esp32-int32-wrap'), '9,15,1015', 'the ESP32 counter turning negative is +1 ms, not -4.3e9');
  assert.equal(out.get('uint32-wrap'), '9,15,1015');
  assert.equal(out.get('from-boot'), '1000,61000');
});

test('a failed connection is logged with the broker and how far it got, not "undefined" (XS)', async () => {
  const out = await runEntry('link');
  const json = (name: string) => {
    const text = out.get(name);
    assert.ok(text !== undefined, `no ${name} line in:\n${[...out].join('\n')}`);
    return JSON.parse(text) as Record<string, unknown> & { reason?: string };
  };
  assert.equal(json('done'), true);

  const refused = json('tcp-refused');
  assert.equal(refused.ok, false);
  assert.equal(
    refused.reason,
    'connection to mqtt://127.0.0.1:1883 failed, stopped while connecting to 127.0.0.1:1883: ' +
      'the TCP connection was refused or failed',
  );
  assert.equal(refused.down, refused.reason, 'the same reason goes to onDown (the log line)');
  assert.doesNotMatch(JSON.stringify(refused), /secret|undefined/);

  assert.deepEqual(json('plain-connects'), { ok: true });
  assert.ok(
    (JSON.parse(out.get('plain-socket-options')!) as string[]).includes('onReadable'),
    'mqtt:// goes through the traced TCP socket',
  );

  const problem = 'mqtts:// needs the CA certificate of the broker: set brokerCa (PEM) in the configuration';
  assert.equal(json('mqtts-without-ca-problem'), problem);
  assert.deepEqual(json('mqtts-without-ca'), { ok: false, reason: problem, down: problem });

  const rejected = json('tls-rejected');
  assert.equal(rejected.ok, false);
  assert.match(
    rejected.reason!,
    /^connection to mqtts:\/\/127\.0\.0\.1:8883 failed, stopped while doing the TLS handshake: TLS: certificate: auth err \(the broker's certificate is not issued by brokerCa/,
  );
  assert.deepEqual(json('tls-rejected-escaped'), [], 'the TLS error never reaches the socket (which would abort)');
  assert.deepEqual(json('tls-certificate'), [0x30, 0x82, 0x01, 0x02, 7, 7, 7], 'the configured CA, as DER');

  assert.equal(
    json('tls-setup-fails').reason,
    'connection to mqtts://127.0.0.1:8883 failed, stopped while setting up TLS: TLS setup: date validation failed',
    'what the TLS socket throws while it is made (a CA out of date) is named too',
  );

  assert.deepEqual(json('tls-connects'), { ok: true });
  assert.deepEqual(json('tls-escaped'), []);
});
