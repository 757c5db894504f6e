/**
 * Runs the project's runtime-neutral TypeScript inside the real XS engine, for tests.
 *
 *   const run = await runInXs('test/xs/entries/protocol.ts', { inputs: { XS_INPUT: input } });
 *   assert.equal(run.code, 0, run.stderr);
 *
 * The entry module is bundled with esbuild (platform neutral, ES2022, class static fields lowered:
 * XS 13.3 mis-handles noble's `Point`) and run by the project's own XS host,
 * native/build/xs-host (native/xs-host, built by scripts/build-xs-host.js on first use).
 *
 * The bundle is an ES module by default (as the device loads its code; `format: 'iife'` for a
 * script). The host runs with the device's 1024-slot XS stack, so entries do their work from
 * `runMain` (test/xs/entries/host.ts), in a promise job once the bundle's body has returned:
 * while a bundle's body runs, its ~500 top-level bindings hold over half of those slots.
 * The host gives the bundle `print`, `native`, `crypto.getRandomValues`, `gc`, `heapUsed`,
 * `scriptArgs`, TextEncoder and TextDecoder (see test/xs/entries/host.ts).
 *
 * Like the device: the built-ins are frozen before the bundle runs, as the Moddable SDK's linker
 * freezes them (`frozenBuiltIns: false` is the opt-out; no suite uses it but the host's own test
 * of it), and a host object is bytes only if C made it a host buffer (test/xs/device-like-host.test.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';
import { projectRoot } from '../vectors.js';

export const xsHostPath = join(projectRoot, 'native', 'build', 'xs-host');
/** The same host with its own C (host, bindings, crypto) under ASan and UBSan (build-xs-host.js --sanitize). */
export const sanitizedXsHostPath = join(projectRoot, 'native', 'build', 'xs-host-asan');
const buildScript = join(projectRoot, 'scripts', 'build-xs-host.js');
const bundleDir = join(projectRoot, 'native', 'build', 'xs-bundles');

export interface RunInXsOptions {
  /**
   * Data for the entry: each becomes a string constant of that name holding the value as JSON
   * (esbuild `define`), which the entry reads with `JSON.parse(NAME)`. Plain data only (hex for
   * bytes). A string rather than an object literal: a large literal needs more XS stack to
   * build than the device's 1024 slots, JSON.parse does not.
   */
  inputs?: Record<string, unknown>;
  /** Strings the entry sees as `scriptArgs`. */
  args?: string[];
  /** Environment variables for the host, added to this process's (e.g. COSE_FLOW_HUK_FILE). */
  env?: Record<string, string>;
  /** The machine's stack in slots; the host's default is the device application's 1024. */
  stackSlots?: number;
  /**
   * Freeze the built-ins before the entry runs, as the Moddable SDK's linker does on the device
   * (the host's default; native/xs-host/README.md). Default true: pass false only for a run that
   * must see XS's unfrozen built-ins, and say why.
   */
  frozenBuiltIns?: boolean;
  /** `esm` (default): an ES module bundle the host imports; `iife`: a script bundle. */
  format?: 'esm' | 'iife';
  /**
   * Run the sanitized host (native/build/xs-host-asan): any AddressSanitizer, LeakSanitizer or
   * UndefinedBehaviorSanitizer finding in the project's C aborts the run. Default false.
   */
  sanitized?: boolean;
  /** Kill the host after this long (default 60 s). */
  timeoutMs?: number;
  /**
   * Keep the bundle (and its source map) in native/build/xs-bundles? Default: only after a failed
   * run, to look into. Pass false in tests that expect a failure.
   */
  keepBundle?: boolean;
}

export interface XsRun {
  /** Exit status: 0 ok, 1 uncaught exception or unhandled rejection, 2 usage, 3 XS abort; null if killed. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** What the host wrote to stderr; bundle positions in stacks are followed by their source file and line. */
  stderr: string;
  /** The bundle that was run (see `keepBundle`). */
  bundle: string;
  /** Milliseconds the host ran. */
  ms: number;
}

const hostsReady = new Set<string>();

/**
 * Builds the XS host (or its sanitized variant) unless it is up to date (the build script is a
 * no-op then). Throws with the compiler's output when the build fails.
 */
export function ensureXsHost(sanitized = false): string {
  const path = sanitized ? sanitizedXsHostPath : xsHostPath;
  if (hostsReady.has(path)) return path;
  const result = spawnSync(process.execPath, [buildScript, '--quiet', ...(sanitized ? ['--sanitize'] : [])], {
    cwd: projectRoot,
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new Error(
      `could not build the XS host (node scripts/build-xs-host.js exited ${result.status ?? result.signal}):\n` +
        `${result.stdout}${result.stderr}\nIt needs \`cc\` and the devDependency @agoric/xsnap (npm install).`,
    );
  }
  hostsReady.add(path);
  return path;
}

let bundles = 0;

/**
 * Bundles `entry` (a path from the project root, or absolute) into a script for the XS host, or
 * into `outfile` (e.g. a bundle for the device's XS, which has the same needs).
 */
export async function bundleForXs(
  entry: string,
  inputs: Record<string, unknown> = {},
  format: 'esm' | 'iife' = 'esm',
  outfile?: string,
): Promise<string> {
  const entryPath = isAbsolute(entry) ? entry : resolve(projectRoot, entry);
  const name = `${basename(entryPath).replace(/\.[cm]?[jt]s$/, '')}-${process.pid}-${++bundles}`;
  outfile ??= join(bundleDir, `${name}.${format === 'esm' ? 'mjs' : 'js'}`);
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [entryPath],
    outfile,
    bundle: true,
    format,
    platform: 'neutral',
    target: 'es2022',
    // XS 13.3 (the engine in @agoric/xsnap) breaks on a class with an instance field and a static
    // field that creates an instance (noble's Point): lower static fields to assignments.
    supported: { 'class-static-field': false },
    mainFields: ['module', 'main'],
    conditions: ['import', 'default'],
    define: Object.fromEntries(
      Object.entries(inputs).map(([name, value]) => [name, JSON.stringify(JSON.stringify(value))]),
    ),
    sourcemap: 'external',
    sourcesContent: false,
    charset: 'utf8',
    logLevel: 'silent',
    absWorkingDir: projectRoot,
  });
  return outfile;
}

/** Bundles `entry` and runs it in the XS host. Resolves when the host exits; never rejects for a failed run. */
export async function runInXs(entry: string, options: RunInXsOptions = {}): Promise<XsRun> {
  ensureXsHost(options.sanitized);
  const format = options.format ?? 'esm';
  return runHost(await bundleForXs(entry, options.inputs, format), format, options);
}

/**
 * Runs JavaScript source as it is (no bundling) in the XS host: a script, or a module with
 * `format: 'esm'`. For tests of the host itself.
 */
export async function runSourceInXs(source: string, options: Omit<RunInXsOptions, 'inputs'> = {}): Promise<XsRun> {
  ensureXsHost(options.sanitized);
  const format = options.format ?? 'iife';
  mkdirSync(bundleDir, { recursive: true });
  const file = join(bundleDir, `source-${process.pid}-${++bundles}.${format === 'esm' ? 'mjs' : 'js'}`);
  writeFileSync(file, source);
  return runHost(file, format, options);
}

async function runHost(bundle: string, format: 'esm' | 'iife', options: RunInXsOptions): Promise<XsRun> {
  const hostArgs = [
    ...(format === 'esm' ? ['--module'] : []),
    ...(options.stackSlots === undefined ? [] : ['--stack', String(options.stackSlots)]),
    ...(options.frozenBuiltIns === false ? ['--no-freeze'] : []),
    '--',
    bundle,
    ...(options.args ?? []),
  ];
  const started = Date.now();
  const result = await new Promise<Omit<XsRun, 'bundle' | 'ms'>>((done, fail) => {
    const child = spawn(options.sanitized ? sanitizedXsHostPath : xsHostPath, hostArgs, {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
  const ms = Date.now() - started;
  const ok = result.code === 0;
  const stderr = ok ? result.stderr : withSourcePositions(result.stderr, bundle);
  if (!(options.keepBundle ?? !ok)) {
    rmSync(bundle, { force: true });
    rmSync(`${bundle}.map`, { force: true });
  }
  return { ...result, stderr, bundle, ms };
}

/**
 * XS stacks name bundle lines, `(…/entry-1-2.js:123)`; add the TypeScript source and line each
 * comes from, using the bundle's source map: `(…/entry-1-2.js:123 = src/cbor/index.ts:45)`.
 */
function withSourcePositions(stderr: string, bundle: string): string {
  let map: SourceMap;
  let lines: string[];
  try {
    map = new SourceMap(JSON.parse(readFileSync(`${bundle}.map`, 'utf8')));
    lines = readFileSync(bundle, 'utf8').split('\n');
  } catch {
    return stderr;
  }
  const file = bundle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return stderr.replace(new RegExp(`${file}:(\\d+)`, 'g'), (whole, lineText: string) => {
    const line = Number(lineText) - 1;
    const column = Math.max(0, (lines[line] ?? '').search(/\S/));
    const entry = map.findEntry(line, column) as { originalSource?: string; originalLine?: number };
    if (entry.originalSource === undefined || entry.originalLine === undefined) return whole;
    const source = entry.originalSource.startsWith('file:')
      ? new URL(entry.originalSource).pathname
      : entry.originalSource;
    const shown = isAbsolute(source)
      ? relative(projectRoot, source)
      : relative(projectRoot, resolve(bundleDir, source));
    return `${whole} = ${shown}:${entry.originalLine + 1}`;
  });
}
