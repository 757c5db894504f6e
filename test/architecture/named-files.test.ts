/**
 * No comment or document names a file of the project that does not exist: every project path
 * (from the top, like src/device/app.ts, with {a,b} alternatives expanded; or, in a source file,
 * relative to it) mentioned in the sources, README.md and docs/ resolves to a file in the tree.
 * Build outputs (native/build/) and placeholders in capitals (src/moddable/TARGET/) are not files.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoPath } from './import-rules.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const ROOMS = ['src', 'node', 'host-sim', 'system', 'cloud', 'cli', 'native', 'scripts', 'bench', 'test', 'docs'];
const TOP = ['src', 'node', 'host-sim', 'system', 'cloud', 'cli', 'native', 'scripts', 'bench', 'test', 'docs', 'bin'];
const SKIP_DIRS = new Set(['node_modules', 'build', 'vectors', 'public']);
const EXT = '(?:ts|js|mjs|c|h|md|json|sql|html|css)';
/** A project path from the top, like src/device/app.ts (with {x,y} alternatives). */
const ROOTED = new RegExp(`(?<![\\w./-])((?:${TOP.join('|')})/[\\w./{},*-]*\\.${EXT})(?![\\w])`, 'g');
/** A path relative to the file that names it (dot-slash or dot-dot-slash). */
const RELATIVE = new RegExp(`(?<![\\w./-])(\\.\\.?/[\\w./{},-]*\\.${EXT})(?![\\w])`, 'g');

function walk(dir: string, out: string[]): string[] {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP_DIRS.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else if (/\.(ts|js|c|h|md)$/.test(entry.name)) out.push(path);
  }
  return out;
}

/** Expands {x,y} alternatives: one path each. */
function expand(path: string): string[] {
  const m = /\{([^{}]*)\}/.exec(path);
  if (m === null) return [path];
  return m[1]!
    .split(',')
    .flatMap((alt) => expand(path.slice(0, m.index) + alt.trim() + path.slice(m.index + m[0].length)));
}

/** The comment text of a source file (line and block comments); a document's whole text. */
function commentText(path: string, text: string): string {
  if (path.endsWith('.md')) return text;
  const parts: string[] = [];
  for (const m of text.matchAll(/\/\*[\s\S]*?\*\/|(?<![:'"`\\])\/\/[^\n]*/g)) parts.push(m[0]);
  return parts.join('\n');
}

test('every project file named in a comment, README.md or docs/ exists', () => {
  const files = [join(root, 'README.md'), ...ROOMS.flatMap((room) => walk(join(root, room), []))];
  assert.ok(files.length > 200, `only ${files.length} files read`);
  const missing: string[] = [];
  for (const file of files) {
    const text = commentText(file, readFileSync(file, 'utf8'));
    const name = repoPath(root, file);
    for (const m of text.matchAll(ROOTED)) {
      for (const path of expand(m[1]!)) {
        if (path.includes('*') || path.startsWith('native/build/') || /\/[A-Z]+\//.test(path)) continue;
        const bare = path.replace(/[.,]+$/, '');
        const bases = [root, dirname(file)];
        const ok = bases.some((base) => [bare, bare.replace(/\.js$/, '.ts')].some((p) => existsSync(join(base, p))));
        if (!ok) missing.push(`${name}: ${bare}`);
      }
    }
    if (file.endsWith('.md')) continue;
    for (const m of text.matchAll(RELATIVE)) {
      for (const path of expand(m[1]!)) {
        const bare = path.replace(/[.,]+$/, '');
        const ok = [dirname(file), root].some((base) =>
          [bare, bare.replace(/\.js$/, '.ts')].some((p) => existsSync(join(base, p))),
        );
        if (!ok) missing.push(`${name}: ${bare}`);
      }
    }
  }
  assert.deepEqual(missing, [], 'files named but not in the tree');
});
