/**
 * The `MqttLink` contract (test/platform/mqtt-link-contract.ts) against the Moddable adapter
 * (src/moddable/sdk/mqtt.ts) in the XS test host, over a fake of the SDK's mqtt/js
 * (test/moddable/entries/fake-mqtt-js.ts) on the scripted broker of test/platform/fake-broker.ts;
 * the socket modules network.ts imports come from test/moddable/sdk-fakes.ts. The entry,
 * test/moddable/entries/mqtt-link-contract.ts, reports one line per case.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { build, type Plugin } from 'esbuild';
import { LINK_CASES } from '../platform/mqtt-link-contract.js';
import { projectRoot } from '../vectors.js';
import { runSourceInXs } from '../xs/run.js';

const sdkFakes = join(projectRoot, 'test/moddable/sdk-fakes.ts');
const fakeMqttJs = join(projectRoot, 'test/moddable/entries/fake-mqtt-js.ts');
const SOCKETS: Record<string, string> = {
  'embedded:io/socket/tcp': 'FakeTCP',
  'embedded:io/socket/udp': 'FakeUDP',
  'embedded:io/socket/tcp/tls': 'FakeTLSSocket',
  'embedded:network/dns/resolver/udp': 'FakeResolver',
  'embedded:network/mqtt/client': 'FakeMqttClient',
};

const fakes: Plugin = {
  name: 'mqtt-link-fakes',
  setup(b) {
    b.onResolve({ filter: /^mqtt\/js$/ }, () => ({ path: fakeMqttJs }));
    b.onResolve({ filter: /^embedded:/ }, (args) => ({ path: args.path, namespace: 'sdk-fake' }));
    b.onLoad({ filter: /.*/, namespace: 'sdk-fake' }, (args) => {
      const name = SOCKETS[args.path];
      if (name === undefined) return { errors: [{ text: `no fake for ${args.path}` }] };
      return { contents: `export { ${name} as default } from ${JSON.stringify(sdkFakes)};`, resolveDir: projectRoot };
    });
  },
};

describe('MqttLink contract: ModdableMqttLink (mqtt/js) in XS', () => {
  const results = new Map<string, string | undefined>();
  const lines = new Map<string, string>();
  before(async () => {
    const outfile = join(projectRoot, 'native/build/xs-bundles', `moddable-mqtt-link-${process.pid}.mjs`);
    await build({
      entryPoints: [join(projectRoot, 'test/moddable/entries/mqtt-link-contract.ts')],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      target: 'es2022',
      supported: { 'class-static-field': false },
      mainFields: ['module', 'main'],
      conditions: ['import', 'default'],
      plugins: [fakes],
      logLevel: 'silent',
      absWorkingDir: projectRoot,
    });
    const source = readFileSync(outfile, 'utf8');
    rmSync(outfile, { force: true });
    const run = await runSourceInXs(source, { format: 'esm', timeoutMs: 120_000 });
    assert.equal(run.code, 0, `the contract entry failed in XS (exit ${run.code ?? run.signal}):\n${run.stderr}`);
    for (const line of run.stdout.split('\n')) {
      const space = line.indexOf(' ');
      if (space < 0) continue;
      const [name, value] = [line.slice(0, space), line.slice(space + 1)];
      if (name === 'case') {
        const c = JSON.parse(value) as { name: string; error?: string };
        results.set(c.name, c.error);
      } else lines.set(name, value);
    }
    assert.equal(lines.get('done'), 'true', `the entry did not finish:\n${run.stdout}`);
  });

  for (const c of LINK_CASES) {
    test(c.name, () => {
      assert.ok(results.has(c.name), 'the case ran');
      assert.equal(results.get(c.name), undefined);
    });
  }

  test('a refused subscription rejects and is not made again (and every case ran)', () => {
    assert.equal(results.size, LINK_CASES.length + 1);
    for (const [name, error] of results) assert.equal(error, undefined, name);
  });

  test("a failed attempt's reason names the broker without credentials and how far it got", () => {
    assert.equal(
      JSON.parse(lines.get('refused-reason')!),
      'connection to mqtt://127.0.0.1:1883 failed, stopped while resolving the broker host name',
    );
  });
});
