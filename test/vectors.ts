/**
 * Where the shared public test vectors live: `../shared/vectors/` beside the project root
 * (tests read them in place; they are never copied into the repository). Override with
 * COSE_FLOW_VECTORS=/path/to/vectors.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const vectorsDir = process.env.COSE_FLOW_VECTORS ?? resolve(projectRoot, '..', 'shared', 'vectors');

/** Absolute path of a vector file; throws a loud, explanatory error when the shared folder is missing. */
export function vectorPath(...parts: string[]): string {
  const path = join(vectorsDir, ...parts);
  if (!existsSync(path)) {
    throw new Error(
      `test vectors not found at ${path}: the shared vectors must sit beside the project root ` +
        '(../shared/vectors) or be named by COSE_FLOW_VECTORS',
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
