/**
 * The ESP32 paths of native/crypto/cf_device_key.c, run on the host: scripts/build-esp-fake-test.js
 * compiles them with -DESP_PLATFORM against the fake ESP-IDF of native/test/esp-fakes/ (in-memory
 * NVS and eFuse, an RNG that records whether an entropy source was on, an HMAC peripheral, the
 * SDK's log), under ASan and UBSan, once as the original ESP32 (no HMAC peripheral: the NVS
 * secret) and once as a chip with the HMAC peripheral (the eFuse key). The fakes print every call
 * in order; the tests read that trace.
 *
 * Proves: the NVS secret is kept where the app's Preference store cannot open it, an old copy in
 * the app's domain is moved once with the identity unchanged, the secret is made only while the
 * bootloader's entropy source is on, an eFuse key block with the wrong purpose or readable by
 * software is refused with a log line, and a key block outside 0..5 does not compile.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { before, describe, test } from 'node:test';
import { fromHex, toHex } from '../../src/bytes.js';
import { projectRoot } from '../vectors.js';
import { deviceIdentityFromSecret, deviceSecret } from './reference.js';

const buildScript = join(projectRoot, 'scripts', 'build-esp-fake-test.js');
const program = (chip: 'hmac' | 'nohmac') => join(projectRoot, 'native', 'build', `device-key-esp-${chip}`);

/** The domain the app's store (src/moddable/sdk/store.ts) opens: an NVS namespace of the default partition. */
const appDomain = /constructor\(domain = '([^']+)'\)/.exec(
  readFileSync(join(projectRoot, 'src', 'moddable', 'sdk', 'store.ts'), 'utf8'),
)?.[1];
/** The partition Preference (and ECMA-419 key-value storage) open: ESP-IDF's NVS_DEFAULT_PART_NAME. */
const DEFAULT_PARTITION = 'nvs';
const EFUSE_BLK_KEY0 = 4;
const PURPOSE = { USER: 0, XTS_AES_128_KEY: 4, HMAC_DOWN_ALL: 5, HMAC_UP: 8 } as const;

interface Run {
  lines: string[];
  output: string;
  /** "identity" lines: { source, id, publicKey } or { failed } */
  identities: Array<{ source?: string; id?: string; publicKey?: string; failed?: string }>;
  /** "nvs PARTITION/NAMESPACE/KEY HEX" lines, per "dump" step, as a map. */
  dumps: Array<Map<string, string>>;
}

function run(chip: 'hmac' | 'nohmac', steps: string[]): Run {
  const result = spawnSync(program(chip), steps, {
    encoding: 'utf8',
    env: { ...process.env, ASAN_OPTIONS: 'abort_on_error=1:detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
  });
  const output = `${result.stdout}${result.stderr}`;
  assert.doesNotMatch(output, /AddressSanitizer|LeakSanitizer|runtime error:/, output);
  assert.equal(result.status, 0, `device-key-esp-${chip} exited ${result.status ?? result.signal}:\n${output}`);
  const lines = result.stdout.split('\n').filter(Boolean);
  const identities: Run['identities'] = [];
  const dumps: Run['dumps'] = [];
  let dump: Map<string, string> | undefined;
  const startDump = () => {
    dump = new Map();
    dumps.push(dump);
    return dump;
  };
  for (const line of lines) {
    const words = line.split(' ');
    if (words[0] !== 'nvs') dump = undefined;
    if (words[0] === 'identity')
      identities.push(
        words[1] === 'failed' ? { failed: words[2]! } : { source: words[1]!, id: words[2]!, publicKey: words[3]! },
      );
    else if (words[0] === 'nvs') (dump ?? startDump()).set(words[1]!, words[2]!);
    else if (words[0] === 'mark' && words[1] === 'dump') startDump();
  }
  return { lines, output, identities, dumps };
}

/** The identity the derivation of cf_device_key.h gives for a 32-byte HUK. */
function expectedIdentity(huk: Uint8Array): { id: string; publicKey: string } {
  const identity = deviceIdentityFromSecret(deviceSecret(huk));
  return { id: toHex(identity.id), publicKey: toHex(identity.publicKey) };
}

/** The trace lines between "mark FROM" and the next mark (or the end). */
function segment(lines: string[], from: string): string[] {
  const start = lines.indexOf(`mark ${from}`);
  assert.ok(start >= 0, `no mark ${from}`);
  const end = lines.findIndex((line, i) => i > start && line.startsWith('mark '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

const HUK = fromHex('00112233445566778899aabbccddeeff102132435465768798a9bacbdcedfe0f');
// "mark dump" before "dump" makes an empty dump show as an empty map.
const DUMP = ['mark', 'dump', 'dump'];

before(() => {
  const build = spawnSync(process.execPath, [buildScript, '--quiet'], { encoding: 'utf8' });
  assert.equal(build.status, 0, `scripts/build-esp-fake-test.js failed:\n${build.stdout}${build.stderr}`);
  assert.ok(appDomain, "src/moddable/sdk/store.ts: no default domain found (constructor(domain = '…'))");
});

describe('the original ESP32: the device secret in NVS', () => {
  test("is made on first start and kept outside the default NVS partition, which the app's Preference store opens", () => {
    const { identities, dumps, lines } = run('nohmac', ['identity', ...DUMP]);
    assert.equal(identities.length, 1);
    const [identity] = identities;
    assert.equal(identity?.source, 'nvs', JSON.stringify(identity));
    const stored = dumps.at(-1)!;
    const inDefault = [...stored.keys()].filter((k) => k.startsWith(`${DEFAULT_PARTITION}/`));
    assert.deepEqual(
      inDefault,
      [],
      `the secret is in the default NVS partition (Preference can open it): ${inDefault}`,
    );
    assert.ok(!stored.has(`${DEFAULT_PARTITION}/${appDomain}/huk`), `the secret is in the app's domain ${appDomain}`);
    // Nothing was written through a handle on the default partition.
    assert.deepEqual(
      lines.filter((l) => /^call nvs_(set_blob|erase_key) nvs\//.test(l)),
      [],
      'wrote to the default partition',
    );
    // The one secret there is, and the identity is the derivation of it.
    const secrets = [...stored.entries()].filter(([k]) => k.endsWith('/huk'));
    assert.equal(secrets.length, 1, `one stored secret: ${[...stored.keys()]}`);
    const [, hex] = secrets[0]!;
    assert.equal(hex.length, 64);
    assert.deepEqual({ id: identity?.id, publicKey: identity?.publicKey }, expectedIdentity(fromHex(hex)));
  });

  test('the secret is drawn only while bootloader_random_enable() has an entropy source on', () => {
    const { lines } = run('nohmac', ['identity']);
    const draws = lines.filter((l) => l.startsWith('call esp_fill_random'));
    assert.ok(draws.length >= 1, 'no esp_fill_random call');
    assert.deepEqual(
      draws.filter((l) => !l.endsWith(' entropy=1')),
      [],
      `esp_fill_random without the entropy source:\n${lines.join('\n')}`,
    );
    // enable → draws → disable, and the source is off again afterwards.
    const enable = lines.indexOf('call bootloader_random_enable radio=0');
    const disable = lines.indexOf('call bootloader_random_disable');
    assert.ok(enable >= 0 && disable > enable, `not bracketed:\n${lines.join('\n')}`);
    const firstDraw = lines.findIndex((l) => l.startsWith('call esp_fill_random'));
    const lastDraw = lines.length - 1 - [...lines].reverse().findIndex((l) => l.startsWith('call esp_fill_random'));
    assert.ok(enable < firstDraw && lastDraw < disable);
    assert.equal(lines.filter((l) => l.startsWith('call bootloader_random_enable')).length, 1);
    assert.equal(lines.filter((l) => l === 'call bootloader_random_disable').length, 1);
    assert.match(lines.at(-1)!, /^random calls=\d+ without-entropy=0 unsafe-enables=0$/);
  });

  test('with the radio on (Wi-Fi started before main), the secret is drawn without touching the ADC source', () => {
    for (const mode of ['1', '2', '3']) {
      const { identities, lines } = run('nohmac', ['wifi', mode, 'identity']);
      assert.equal(identities[0]?.source, 'nvs', lines.join('\n'));
      assert.deepEqual(
        lines.filter((l) => l.startsWith('call bootloader_random')),
        [],
        `bootloader_random_enable() while Wi-Fi runs (mode ${mode}) is unsafe:\n${lines.join('\n')}`,
      );
      assert.ok(lines.some((l) => l.startsWith('call esp_fill_random')));
      assert.match(lines.at(-1)!, /^random calls=\d+ without-entropy=0 unsafe-enables=0$/);
    }
    // Initialised but in WIFI_MODE_NULL: no radio, so the bootloader's source is used.
    const { lines } = run('nohmac', ['wifi', '0', 'identity']);
    assert.ok(lines.includes('call bootloader_random_enable radio=0'), lines.join('\n'));
    assert.match(lines.at(-1)!, /^random calls=\d+ without-entropy=0 unsafe-enables=0$/);
  });

  test('is the same at every start, and no new one is made', () => {
    const { identities, lines } = run('nohmac', ['identity', 'mark', 'second', 'identity']);
    assert.equal(identities.length, 2);
    assert.deepEqual(identities[1], identities[0]);
    const second = segment(lines, 'second');
    assert.deepEqual(
      second.filter((l) => /^call (esp_fill_random|nvs_set_blob|bootloader_random)/.test(l)),
      [],
      second.join('\n'),
    );
  });

  test(`an old secret in the app's domain (nvs/${appDomain}/huk) is moved once; the identity stays`, () => {
    const steps = [
      ...['put', DEFAULT_PARTITION, appDomain!, 'huk', toHex(HUK)],
      ...['put', DEFAULT_PARTITION, appDomain!, 'kid', '0102'], // the app's own data there
      ...['identity', ...DUMP],
      ...['mark', 'second', 'identity', ...DUMP],
    ];
    const { identities, dumps, lines } = run('nohmac', steps);
    const expected = expectedIdentity(HUK);
    assert.equal(identities.length, 2);
    for (const identity of identities) {
      assert.equal(identity.source, 'nvs');
      assert.deepEqual({ id: identity.id, publicKey: identity.publicKey }, expected, 'the identity changed');
    }
    for (const stored of dumps) {
      assert.ok(!stored.has(`${DEFAULT_PARTITION}/${appDomain}/huk`), 'the old copy is still in the app domain');
      assert.equal(stored.get(`${DEFAULT_PARTITION}/${appDomain}/kid`), '0102', "the app's own data was touched");
      const moved = [...stored.entries()].filter(([k]) => k.endsWith('/huk'));
      assert.deepEqual(
        moved.map(([, v]) => v),
        [toHex(HUK)],
        `the secret was not moved: ${[...stored.keys()]}`,
      );
      assert.ok(!moved[0]![0].startsWith(`${DEFAULT_PARTITION}/`));
    }
    // Copied, read back, then erased; no random secret was made.
    const first = lines.slice(0, lines.indexOf('mark dump'));
    const set = first.findIndex((l) => /^call nvs_set_blob (?!nvs\/).*\/huk -> 0$/.test(l));
    const readBack = first.findIndex((l, i) => i > set && /^call nvs_get_blob (?!nvs\/).*\/huk -> 0$/.test(l));
    const erase = first.indexOf(`call nvs_erase_key nvs/${appDomain}/huk -> 0`);
    assert.ok(set >= 0 && readBack > set && erase > readBack, `copy, verify, erase:\n${first.join('\n')}`);
    assert.ok(!lines.some((l) => l.startsWith('call esp_fill_random')), 'a new secret was made');
    // Once: the second start writes and erases nothing.
    const second = segment(lines, 'second');
    assert.deepEqual(
      second.filter((l) => /^call nvs_(set_blob|erase_key)/.test(l)),
      [],
      `second start:\n${second.join('\n')}`,
    );
  });

  test('a copy that fails keeps the old secret, and the next start moves it', () => {
    const steps = [
      ...['put', DEFAULT_PARTITION, appDomain!, 'huk', toHex(HUK)],
      ...['failset', '1', 'identity', ...DUMP],
      ...['mark', 'second', 'identity', ...DUMP],
    ];
    const { identities, dumps, lines } = run('nohmac', steps);
    assert.deepEqual(identities[0], { failed: 'unavailable' });
    assert.equal(dumps[0]!.get(`${DEFAULT_PARTITION}/${appDomain}/huk`), toHex(HUK), 'the old copy was lost');
    assert.ok(lines.some((l) => /^log cose-flow: device key refused: .*could not be written/.test(l)));
    const expected = expectedIdentity(HUK);
    assert.deepEqual({ id: identities[1]!.id, publicKey: identities[1]!.publicKey }, expected);
    assert.ok(!dumps[1]!.has(`${DEFAULT_PARTITION}/${appDomain}/huk`));
  });

  test('the app writing "huk" into its own domain later changes nothing', () => {
    const other = fromHex('ff'.repeat(32));
    const steps = [
      ...['identity', 'put', DEFAULT_PARTITION, appDomain!, 'huk', toHex(other)],
      ...['mark', 'second', 'identity', ...DUMP],
    ];
    const { identities, dumps } = run('nohmac', steps);
    assert.equal(identities[0]?.source, 'nvs');
    assert.deepEqual(identities[1], identities[0]);
    // Not adopted, not erased: it is the app's data now.
    assert.equal(dumps[0]!.get(`${DEFAULT_PARTITION}/${appDomain}/huk`), toHex(other));
  });

  test('without its partition in the partition table: refused with a log line, nothing written elsewhere', () => {
    const { identities, lines } = run('nohmac', ['nopartition', 'cf_huk', 'identity', ...DUMP]);
    assert.deepEqual(identities, [{ failed: 'unavailable' }]);
    assert.ok(
      lines.some((l) => l.startsWith('log cose-flow: device key refused: no NVS partition "cf_huk"')),
      lines.join('\n'),
    );
    assert.ok(!lines.some((l) => /^call (nvs_set_blob|esp_fill_random)/.test(l)), lines.join('\n'));
  });
});

describe('a chip with the HMAC peripheral: the eFuse key block', () => {
  const block = EFUSE_BLK_KEY0 + 4; // the manifest's default, BLOCK_KEY4
  const hukOfKey4 = new Uint8Array(32).fill(0xa0 + 4); // the fake's HUK of key block 4

  test('a read-protected HMAC_UP block gives the identity of its HUK', () => {
    const { identities, lines } = run('hmac', ['efuse', '4', String(PURPOSE.HMAC_UP), '1', 'identity']);
    assert.equal(identities[0]?.source, 'efuse-hmac');
    assert.deepEqual({ id: identities[0]!.id, publicKey: identities[0]!.publicKey }, expectedIdentity(hukOfKey4));
    assert.ok(lines.includes('call esp_hmac_calculate key=4'));
    assert.ok(!lines.some((l) => l.startsWith('log ')), lines.join('\n'));
  });

  for (const [name, purpose] of Object.entries(PURPOSE).filter(([name]) => name !== 'HMAC_UP')) {
    test(`a block whose purpose is ${name} is refused with a log line, before the HMAC peripheral is asked`, () => {
      const { identities, lines } = run('hmac', ['efuse', '4', String(purpose), '1', 'identity']);
      assert.deepEqual(identities, [{ failed: 'unavailable' }]);
      assert.ok(lines.includes(`call esp_efuse_get_key_purpose block=${block}`), lines.join('\n'));
      assert.ok(
        lines.includes(
          'log cose-flow: device key refused: eFuse BLOCK_KEY4 does not have the purpose HMAC_UP (not provisioned, or another key)',
        ),
        lines.join('\n'),
      );
      assert.ok(!lines.some((l) => l.startsWith('call esp_hmac_calculate')), lines.join('\n'));
    });
  }

  test('an HMAC_UP block that software can read is refused with a log line', () => {
    const { identities, lines } = run('hmac', ['efuse', '4', String(PURPOSE.HMAC_UP), '0', 'identity']);
    assert.deepEqual(identities, [{ failed: 'unavailable' }]);
    assert.ok(lines.includes(`call esp_efuse_get_key_dis_read block=${block}`), lines.join('\n'));
    assert.ok(
      lines.includes(
        'log cose-flow: device key refused: eFuse BLOCK_KEY4 is readable by software (read protection not set): the HUK is not secret',
      ),
      lines.join('\n'),
    );
    assert.ok(!lines.some((l) => l.startsWith('call esp_hmac_calculate')), lines.join('\n'));
  });
});

describe('MODDEF_CF_HUK_HMAC_KEY is an eFuse key block 0..5 at compile time', () => {
  const check = (value: string) =>
    spawnSync(process.execPath, [buildScript, '--check', 'hmac', '--define', `MODDEF_CF_HUK_HMAC_KEY=${value}`], {
      encoding: 'utf8',
    });

  for (const value of ['0', '5']) {
    test(`${value} compiles`, () => {
      const result = check(value);
      assert.equal(result.status, 0, result.stderr);
    });
  }
  for (const value of ['6', '-1', '(HMAC_KEY_MAX)']) {
    test(`${value} does not compile`, () => {
      const result = check(value);
      assert.notEqual(result.status, 0, `compiled with MODDEF_CF_HUK_HMAC_KEY=${value}`);
      assert.match(result.stderr, /static assertion failed: "manifest define cf\.huk\.hmac_key/);
    });
  }

  // The same through the ESP32 compile-check kit (the SDK's compile line, ESP-IDF v6.0 headers).
  const kitDir = resolve(process.env.COSE_FLOW_ESP32_KIT ?? join(projectRoot, '..', 'shared', 'esp32'));
  const kit = join(kitDir, 'compile-check');
  const missing = existsSync(kit) ? false : `the ESP32 compile-check kit is not at ${kit} (COSE_FLOW_ESP32_KIT)`;
  if (missing && process.env.CI === 'true') throw new Error(`CI needs the kit: ${missing}`);
  if (missing) console.error(`\n!!! SKIPPED (kit): ${missing}\n`);
  test('6 does not compile for esp32s3 with the kit', { skip: missing }, () => {
    const file = join('native', 'crypto', 'cf_device_key.c');
    const kitRun = (define: string[]) =>
      spawnSync(kit, ['--target', 'esp32s3', '--host-only', ...define, file], {
        cwd: projectRoot,
        encoding: 'utf8',
        timeout: 120_000,
      });
    const good = kitRun([]);
    assert.equal(good.status, 0, `${good.stdout}${good.stderr}`);
    const bad = kitRun(['--define', 'MODDEF_CF_HUK_HMAC_KEY=6']);
    assert.notEqual(bad.status, 0, `${bad.stdout}${bad.stderr}`);
    assert.match(`${bad.stdout}${bad.stderr}`, /FAIL\s+esp32s3\s+native\/crypto\/cf_device_key\.c/);
  });
});

describe("the device secret's NVS partition is in the ESP32 build's partition table", () => {
  const nativeDir = join(projectRoot, 'native');
  const manifest = JSON.parse(readFileSync(join(nativeDir, 'manifest.json'), 'utf8')) as {
    platforms: { esp32: { build?: Record<string, string> } };
  };
  const label = /#define CF_NVS_PARTITION "([^"]+)"/.exec(
    readFileSync(join(nativeDir, 'crypto', 'cf_device_key.c'), 'utf8'),
  )?.[1];
  const file = manifest.platforms.esp32.build?.PARTITIONS_FILE;
  const parse = (value: string) => (value.startsWith('0x') ? Number.parseInt(value, 16) : Number(value));
  const rows = file
    ? readFileSync(join(nativeDir, file), 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line && !line.startsWith('#'))
        .map((line) => line.split(',').map((cell) => cell.trim()))
        .map(([name, type, subtype, offset, size, flags]) => ({
          name: name!,
          type: type!,
          subtype: subtype!,
          offset: parse(offset!),
          size: parse(size!),
          flags: flags ?? '',
        }))
    : [];

  test('native/manifest.json gives mcconfig the project partition table, with the partition cf_device_key.c opens', () => {
    assert.equal(file, './partitions.csv');
    assert.ok(label, 'no CF_NVS_PARTITION in cf_device_key.c');
    const partition = rows.find((row) => row.name === label);
    assert.ok(partition, `no partition ${label} in native/partitions.csv`);
    assert.deepEqual([partition.type, partition.subtype], ['data', 'nvs']);
    assert.ok(partition.size >= 0x3000, 'NVS needs at least 3 pages');
  });

  test("the default NVS partition keeps the SDK's offset and size, so an existing device keeps its old secret to move", () => {
    const nvs = rows.find((row) => row.name === 'nvs');
    assert.deepEqual(nvs && [nvs.type, nvs.subtype, nvs.offset, nvs.size], ['data', 'nvs', 0x9000, 0x6000]);
  });

  test('partitions are aligned, do not overlap and fit in 4 MB; nvs_keys is encrypted', () => {
    const sorted = [...rows].sort((a, b) => a.offset - b.offset);
    for (const [i, row] of sorted.entries()) {
      assert.equal(row.offset % (row.type === 'app' ? 0x10000 : 0x1000), 0, `${row.name} is not aligned`);
      if (i > 0) assert.ok(sorted[i - 1]!.offset + sorted[i - 1]!.size <= row.offset, `${row.name} overlaps`);
    }
    const last = sorted.at(-1)!;
    assert.ok(last.offset + last.size <= 0x400000);
    assert.equal(rows.find((row) => row.subtype === 'nvs_keys')?.flags, 'encrypted');
  });
});
