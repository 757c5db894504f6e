/**
 * The public test vectors the tests read, kept in the repository under test/vectors/: the COSE
 * working group's examples (test/vectors/cose-wg/) and Project Wycheproof's (test/vectors/wycheproof/).
 * Each folder's README says where the files come from, under which licence, and which tests use them.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const vectorsDir = resolve(projectRoot, 'test', 'vectors');

/** Absolute path of a vector file; throws a loud, explanatory error when it is missing. */
export function vectorPath(...parts: string[]): string {
  const path = join(vectorsDir, ...parts);
  if (!existsSync(path)) {
    throw new Error(
      `test vector not found at ${path}: test/vectors/ is part of the repository ` +
        '(see test/vectors/*/README.md for where each file comes from)',
    );
  }
  return path;
}

export function readVectorJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(vectorPath(...parts), 'utf8')) as T;
}

/** Every `.json` file below a vector folder, as paths relative to `vectorsDir`, sorted. */
export function listVectorFiles(...parts: string[]): string[] {
  const dir = vectorPath(...parts);
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, name.name);
      if (name.isDirectory()) walk(p);
      else if (name.name.endsWith('.json')) out.push(relative(vectorsDir, p));
    }
  };
  walk(dir);
  return out;
}
