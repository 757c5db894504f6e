#!/usr/bin/env node
// Builds the project's XS test host, native/build/xs-host, from the XS engine's C sources that
// the npm package @agoric/xsnap ships (moddable/xs/sources, its install script is never needed),
// the host's own C in native/xs-host, and the project's native modules: the XS bindings in
// native/moddable and the crypto C in native/crypto, linked with Mbed TLS's PSA Crypto
// (-lmbedcrypto, Debian's libmbedtls-dev). Objects go to native/build/xs-host-obj; only what is
// out of date is compiled (a no-op when nothing changed), two compilers at a time.
//
//   node scripts/build-xs-host.js [--jobs N] [--force] [--quiet] [--sanitize]
//
// Two engine files are compiled from copies with the Moddable SDK 8.2.3's code in place of XS
// 13.3's where a host object is used as bytes (see `engineChanges` below); node_modules is never
// written to.
//
// --sanitize builds native/build/xs-host-asan instead: the same engine objects, with the host's
// and the native modules' C compiled with AddressSanitizer and UndefinedBehaviorSanitizer (any
// finding aborts), for tests of the bindings' memory handling.
//
// Exit status 0 when the host is built and up to date. Needs `cc` (gcc or clang) on Linux.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const hostDir = join(root, 'native', 'xs-host');
const modulesDir = join(root, 'native', 'moddable');
const cryptoDir = join(root, 'native', 'crypto');
const buildDir = join(root, 'native', 'build');
const objDir = join(buildDir, 'xs-host-obj');

const args = process.argv.slice(2);
const force = args.includes('--force');
const quiet = args.includes('--quiet');
const sanitize = args.includes('--sanitize');
const output = join(buildDir, sanitize ? 'xs-host-asan' : 'xs-host');
/** Objects of the project's own C: beside the engine's, or apart when they are sanitized. */
const hostObjDir = sanitize ? join(buildDir, 'xs-host-asan-obj') : objDir;
const jobsAt = args.indexOf('--jobs');
const jobs = jobsAt >= 0 ? Number(args[jobsAt + 1]) : 2;
if (!Number.isInteger(jobs) || jobs < 1) fail('--jobs wants a positive integer');
const unknown = args.filter(
  (a, i) => !['--force', '--quiet', '--jobs', '--sanitize'].includes(a) && !(jobsAt >= 0 && i === jobsAt + 1),
);
if (unknown.length > 0) {
  fail(`unknown argument ${unknown[0]} (usage: build-xs-host.js [--jobs N] [--force] [--quiet] [--sanitize])`);
}

function fail(message) {
  console.error(`build-xs-host: ${message}`);
  process.exit(1);
}

function log(message) {
  if (!quiet) console.log(message);
}

/** The @agoric/xsnap package: found from the project root upwards, as Node would resolve it. */
function findXsnap() {
  for (let dir = root; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', '@agoric', 'xsnap');
    if (existsSync(join(candidate, 'moddable', 'xs', 'sources', 'xsAll.c'))) return candidate;
    if (dirname(dir) === dir) break;
  }
  fail('the XS engine sources were not found: run `npm install` (devDependency @agoric/xsnap)');
}

const xsnap = findXsnap();
const xs = join(xsnap, 'moddable', 'xs');
const text = join(xsnap, 'moddable', 'modules', 'data', 'text');

const cFiles = (dir) =>
  readdirSync(dir)
    .filter((name) => name.endsWith('.c'))
    .sort()
    .map((name) => join(dir, name));
const headers = (dir) =>
  readdirSync(dir)
    .filter((name) => name.endsWith('.h'))
    .map((name) => join(dir, name));

/**
 * Where the engine must behave as the Moddable SDK's XS (8.2.3) and not as XS 13.3: a host object
 * is bytes only when C made it a host buffer (xsSetHostBuffer). XS 13.3 also takes any other host
 * object, reading its `byteLength` property as the length of its host data (for the native P-256
 * key, the C struct with the private scalar); the SDK throws "not host buffer" in _xsmcGetBuffer
 * (xsmc.c) and "invalid buffer" in fxGetBufferInfo (xsDataView.c, for `new Uint8Array(…)` and
 * `new DataView(…)`). Neither is a platform hook, and fxGetBufferInfo is called from inside its own
 * file, so no header or link trick can replace them: the build compiles a copy of each file with
 * the SDK's code in place of 13.3's. Each `from` (lines) must occur exactly once, or the build
 * stops: a new @agoric/xsnap must be compared with the SDK again. The `to` lines are the SDK's.
 */
const engineChanges = [
  {
    file: 'xsmc.c',
    from: [
      '\t\telse {',
      '\t\t\t// for compatibility. should throw eventually.',
      '\t\t\ttxSlot tmp, ref;',
      '\t\t\tfxReport(the, "# Use xsmcSetHostBuffer instead of xsmcSetHostData\\n");',
      '\t\t\tfxReference(the, &ref, instance);',
      '\t\t\t_xsGet(the, &tmp, &ref, _byteLength);',
      '\t\t\t*data = (uint8_t *)slot->value.host.data;',
      '\t\t\t*count = (txUnsigned)fxToInteger(the, &tmp);',
      '\t\t}',
    ],
    to: ['\t\telse', '\t\t\tmxTypeError("not host buffer");\t\t// Use xsmcSetHostBuffer instead of xsmcSetHostData'],
  },
  {
    file: 'xsmc.c',
    from: ['bail:', '\tmxTypeError("this is no buffer");'],
    to: ['bail:', '\tmxTypeError("invalid buffer");'],
  },
  {
    file: 'xsDataView.c',
    from: [
      '\tif (arrayBuffer->kind == XS_HOST_KIND) {',
      '\t\ttxInteger byteLength;',
      '\t\tif (bufferInfo && (bufferInfo->kind == XS_BUFFER_INFO_KIND))',
      '\t\t\treturn bufferInfo;',
      '\t\tmxPushSlot(buffer);',
      '\t\tmxGetID(mxID(_byteLength));',
      '\t\tif (!fxCheckLength(the, the->stack, &byteLength))',
      '\t\t\tmxTypeError("invalid byteLength");',
      '\t\tfxReport(the, "# Use xsSetHostBuffer instead of xsSetHostData\\n");',
      '\t\tmxPop();',
      '\t\tbufferInfo = fxNewSlot(the);',
      '\t\tbufferInfo->next = arrayBuffer->next;',
      '\t\tbufferInfo->flag = XS_INTERNAL_FLAG;',
      '\t\tbufferInfo->kind = XS_BUFFER_INFO_KIND;',
      '\t\tbufferInfo->value.bufferInfo.length = byteLength;',
      '\t\tbufferInfo->value.bufferInfo.maxLength = -1;',
      '\t\tarrayBuffer->next = bufferInfo;',
      '\t\treturn bufferInfo;',
      '\t}',
      '\tmxTypeError("invalid buffer");',
    ],
    to: [
      '\tif (arrayBuffer->kind == XS_HOST_KIND) {',
      '\t\tif (bufferInfo && (bufferInfo->kind == XS_BUFFER_INFO_KIND))',
      '\t\t\treturn bufferInfo;',
      '\t}',
      '\tmxTypeError("invalid buffer");',
    ],
  },
].map(({ file, from, to }) => ({ file, from: `${from.join('\n')}\n`, to: `${to.join('\n')}\n` }));
const changedDir = join(objDir, 'engine-changed');

/**
 * Writes the changed copy of an engine file (only when its text differs, so that an unchanged
 * copy keeps its time and the build stays a no-op; under the build lock, through a temporary
 * name) and returns its path; returns other files as they are.
 */
function engineSource(source) {
  const changes = engineChanges.filter((c) => c.file === basename(source));
  if (changes.length === 0) return source;
  let code = readFileSync(source, 'utf8');
  for (const { file, from, to } of changes) {
    const at = code.indexOf(from);
    if (at < 0 || code.indexOf(from, at + 1) >= 0) {
      throw new Error(
        `${relative(root, source)} is not the XS 13.3 this host was written for: the code that ` +
          `scripts/build-xs-host.js replaces in ${file} (engineChanges) is ${at < 0 ? 'not there' : 'there twice'}. ` +
          'Compare the new engine with the Moddable SDK before changing the replacement.',
      );
    }
    code = code.slice(0, at) + to + code.slice(at + from.length);
  }
  const copy = join(changedDir, basename(source));
  mkdirSync(changedDir, { recursive: true });
  if (!existsSync(copy) || readFileSync(copy, 'utf8') !== code) {
    writeFileSync(`${copy}.${process.pid}.tmp`, code);
    renameSync(`${copy}.${process.pid}.tmp`, copy);
  }
  return copy;
}

/** The engine's C files, the changed copies in place of their originals (call under the lock). */
const engineSources = () => [
  ...cFiles(join(xs, 'sources')).map(engineSource),
  join(text, 'encoder', 'textencoder.c'),
  join(text, 'decoder', 'textdecoder.c'),
];
const hostSources = [...cFiles(hostDir), ...cFiles(modulesDir), ...cFiles(cryptoDir)];

const includes = [
  `-I${hostDir}`,
  `-I${cryptoDir}`,
  `-isystem${join(xs, 'includes')}`,
  `-isystem${join(xs, 'platforms')}`,
  `-isystem${join(xs, 'sources')}`,
];
const common = [
  '-O2',
  '-fno-common',
  '-DINCLUDE_XSPLATFORM',
  '-DXSPLATFORM="xs_host_platform.h"',
  '-DmxParse=1',
  '-DmxRun=1',
  '-DmxBoundsCheck=1',
  '-DmxRegExpUnicodePropertyEscapes=1',
  '-DmxStringNormalize=1',
  '-DmxMinusZero=1',
  '-DmxDebug=1', // line numbers in Error stacks (the xsbug connection stays a no-op) …
  '-DmxNoConsole=1', // … and no "exception: throw!" lines on stdout for every throw
  ...includes,
];
// The engine is third-party code: compiled as its own makefiles do, without warnings.
const engineFlags = [...common, '-w'];
// The host's own C and the project's native modules are held to a strict standard.
const sanitizers = ['-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=all'];
const hostFlags = [...common, '-Wall', '-Wextra', '-Werror', ...(sanitize ? sanitizers : [])];
const linkFlags = [...(sanitize ? ['-fsanitize=address,undefined'] : []), '-lmbedcrypto', '-lm', '-lpthread'];

// Anything that can change an object: every header, this script (the flags) and the compiler.
const dependencies = [
  ...headers(hostDir),
  ...headers(cryptoDir),
  ...headers(join(xs, 'includes')),
  ...headers(join(xs, 'platforms')),
  ...headers(join(xs, 'sources')),
  fileURLToPath(import.meta.url),
];
const newestDependency = Math.max(...dependencies.map((f) => statSync(f).mtimeMs));

/** One object file per source, named after a hash of its path so that equal names cannot clash. */
function objectFor(source, dir) {
  const tag = createHash('sha256').update(source).digest('hex').slice(0, 8);
  return join(dir, `${basename(source, '.c')}-${tag}.o`);
}

const mtime = (file) => (existsSync(file) ? statSync(file).mtimeMs : -1);

function run(command, commandArgs) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', (e) => reject(new Error(`cannot run ${command}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) {
        if (stderr) process.stderr.write(stderr);
        resolve();
      } else reject(new Error(`${command} ${commandArgs.join(' ')}\nfailed (${code ?? signal}):\n${stderr}`));
    });
  });
}

/** Compiles into a private temporary name, then renames: concurrent builds never see half a file. */
async function compile({ source, object, flags }) {
  const temporary = `${object}.${process.pid}.tmp`;
  try {
    await run('cc', [...flags, '-c', source, '-o', temporary]);
    renameSync(temporary, object);
  } finally {
    rmSync(temporary, { force: true });
  }
}

async function pool(tasks, width) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      log(`  cc ${relative(root, task.source)}`);
      await compile(task);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One build at a time (test files running in parallel may all ask for the host): a lock
 * directory, taken over when it is older than any build could be. The others wait, then find
 * the host up to date.
 */
async function withLock(work) {
  const lock = join(buildDir, 'xs-host.lock');
  mkdirSync(buildDir, { recursive: true });
  for (let waited = 0; ; waited += 250) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let age = 0;
    try {
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    if (age > 10 * 60_000) rmSync(lock, { recursive: true, force: true });
    else {
      if (waited === 0) log('build-xs-host: waiting for another build to finish');
      await sleep(250);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function main() {
  const started = Date.now();
  mkdirSync(objDir, { recursive: true });
  mkdirSync(hostObjDir, { recursive: true });
  const units = [
    ...engineSources().map((source) => ({ source, flags: engineFlags, object: objectFor(source, objDir) })),
    ...hostSources.map((source) => ({ source, flags: hostFlags, object: objectFor(source, hostObjDir) })),
  ];

  const stale = units.filter((u) => force || mtime(u.object) < Math.max(statSync(u.source).mtimeMs, newestDependency));
  const objects = units.map((u) => u.object);
  const linkNeeded = stale.length > 0 || Math.max(...objects.map(mtime)) > mtime(output);
  if (!linkNeeded) {
    log(`build-xs-host: ${relative(root, output)} is up to date`);
    return;
  }
  log(`build-xs-host: compiling ${stale.length} of ${units.length} files with ${jobs} job(s)`);
  await pool(stale, jobs);

  const temporary = `${output}.${process.pid}.tmp`;
  try {
    await run('cc', ['-o', temporary, ...objects, ...linkFlags]);
    renameSync(temporary, output);
  } finally {
    rmSync(temporary, { force: true });
  }
  writeFileSync(
    `${output}.info`,
    `${JSON.stringify(
      {
        xsnap: JSON.parse(readFileSync(join(xsnap, 'package.json'), 'utf8')).version,
        engineFlags,
        engineChanged: [...new Set(engineChanges.map((c) => c.file))],
        hostFlags,
        builtIn: `${((Date.now() - started) / 1000).toFixed(1)} s`,
      },
      null,
      2,
    )}\n`,
  );
  log(`build-xs-host: built ${relative(root, output)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

withLock(main).catch((e) => fail(e.message));
