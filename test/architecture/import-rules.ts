/**
 * Which room may import what (docs/ARCHITECTURE.md): the rule table and a checker over source text.
 *
 *   src/        → src/ only; never a Node built-in (it runs in XS); inside src, the protocol core
 *                 (cbor, cose, crypto, pki, profile) never reaches up into the device app, the
 *                 platform adapters or the Moddable bindings
 *   node/       → src/, node/
 *   host-sim/   → src/, node/, host-sim/ (the platform on Node, nothing composed)
 *   system/     → everything below the CLI
 *   cloud/      → src/, node/, cloud/ — never host-sim/, system/ or cli/; the dashboard is fed by
 *                 the service's events and never imports cloud/service
 *   cli/        → anything; nothing outside cli/ imports it
 *
 * npm packages are allowed everywhere except where a rule says otherwise; bench/ and test/ are free.
 */
import { dirname, join, normalize, relative } from 'node:path';

export interface Violation {
  file: string;
  specifier: string;
  rule: string;
}

interface Rule {
  /** The rule's text, as the failure shows it. */
  text: string;
  /** Applies to files under this prefix (repo-relative, '/'-separated). */
  from: string;
  /** Files under `from` but under one of these prefixes are exempt. */
  except?: string[];
  /** Forbidden targets: repo-relative prefixes, or 'node-builtins'. */
  forbid: (string | 'node-builtins')[];
}

const PROTOCOL_CORE = ['src/cbor/', 'src/cose/', 'src/crypto/', 'src/pki/', 'src/profile/'];
const OUTSIDE_SRC = ['node/', 'host-sim/', 'system/', 'cloud/', 'cli/', 'test/', 'bench/', 'scripts/'];

export const RULES: readonly Rule[] = [
  { text: 'src/ imports nothing outside src/', from: 'src/', forbid: OUTSIDE_SRC },
  { text: 'src/ never imports a Node built-in (it must run in XS)', from: 'src/', forbid: ['node-builtins'] },
  ...PROTOCOL_CORE.map((from) => ({
    text: `${from} (the protocol core) never imports the device app, the platform or the Moddable bindings`,
    from,
    forbid: ['src/device/', 'src/platform/', 'src/moddable/'],
  })),
  {
    text: 'src/platform/ (the interface) never imports the device app or an implementation',
    from: 'src/platform/',
    forbid: ['src/device/', 'src/moddable/'],
  },
  {
    text: 'src/device/ (the app) never imports a platform implementation',
    from: 'src/device/',
    forbid: ['src/moddable/'],
  },
  { text: 'node/ imports only src/ and node/', from: 'node/', forbid: ['host-sim/', 'system/', 'cloud/', 'cli/'] },
  {
    text: 'host-sim/ (the platform on Node) imports only src/ and node/',
    from: 'host-sim/',
    forbid: ['system/', 'cloud/', 'cli/'],
  },
  { text: 'system/ never imports the CLI', from: 'system/', forbid: ['cli/'] },
  { text: 'cloud/ never imports host-sim/, system/ or cli/', from: 'cloud/', forbid: ['host-sim/', 'system/', 'cli/'] },
  {
    text: 'the dashboard is fed by the service’s events: cloud/dashboard/ never imports cloud/service/',
    from: 'cloud/dashboard/',
    forbid: ['cloud/service/'],
  },
  {
    text: 'nothing outside cli/ imports the CLI',
    from: '',
    except: ['cli/', 'test/', 'bench/'],
    forbid: ['cli/'],
  },
];

const NODE_BUILTINS = new Set([
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'string_decoder',
  'timers',
  'tls',
  'tty',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
]);

/** Every module specifier in `source`: static imports and re-exports, side-effect imports, import(). */
export function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) found.push(m[1]!);
  return found;
}

/**
 * The violations in `files` (repo-relative path → source text). A relative specifier is resolved
 * against its file; a bare one is a package (or, with `node:` or a built-in name, a Node built-in).
 */
export function checkImports(files: ReadonlyMap<string, string>): Violation[] {
  const violations: Violation[] = [];
  for (const [file, source] of files) {
    for (const specifier of specifiers(source)) {
      const builtin = specifier.startsWith('node:') || NODE_BUILTINS.has(specifier);
      const target = specifier.startsWith('.')
        ? normalize(join(dirname(file), specifier)).replaceAll('\\', '/')
        : undefined;
      for (const rule of RULES) {
        if (!file.startsWith(rule.from)) continue;
        if (rule.except?.some((prefix) => file.startsWith(prefix))) continue;
        const broken = rule.forbid.some((f) =>
          f === 'node-builtins'
            ? builtin
            : target !== undefined && `${target}/`.startsWith(f) && !target.startsWith('..'),
        );
        if (broken) violations.push({ file, specifier, rule: rule.text });
      }
    }
  }
  return violations;
}

/** `path` relative to `root`, '/'-separated. */
export function repoPath(root: string, path: string): string {
  return relative(root, path).replaceAll('\\', '/');
}
