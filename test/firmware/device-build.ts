/**
 * The C files of the firmware's ESP32 build, read from the project's Moddable manifests the way
 * `mcconfig` reads them for the parts that name C sources: the top level and the `platforms` entry
 * that matches `esp32` (exact, or `esp32/*`), `include`s that are relative paths followed, and every
 * `modules` entry (a path without extension names `PATH.c` when that file exists). Entries through
 * `$(…)` variables (SDK and ESP-IDF folders) name no project C file and are skipped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

interface Manifest {
  include?: string[] | string;
  modules?: Record<string, string | string[]>;
  platforms?: Record<string, Manifest>;
}

function sections(manifest: Manifest, platform: string): Manifest[] {
  const out: Manifest[] = [manifest];
  for (const [key, entry] of Object.entries(manifest.platforms ?? {})) {
    if (key === platform || key === `${platform}/*`) out.push(entry);
  }
  return out;
}

function entries(value: string | string[]): string[] {
  return Array.isArray(value) ? value : [value];
}

/** Absolute paths of the C files the `platform` build of `manifestPath` compiles, in manifest order. */
export function deviceBuildCFiles(manifestPath: string, platform = 'esp32'): string[] {
  const found: string[] = [];
  const visit = (path: string) => {
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
    const dir = dirname(path);
    for (const section of sections(manifest, platform)) {
      for (const include of entries(section.include ?? [])) {
        if (!include.startsWith('$(')) visit(resolve(dir, include));
      }
      for (const value of Object.values(section.modules ?? {})) {
        for (const entry of entries(value)) {
          if (entry.startsWith('$(')) continue;
          const file = resolve(dir, entry.endsWith('.c') ? entry : `${entry}.c`);
          if (existsSync(file) && !found.includes(file)) found.push(file);
        }
      }
    }
  };
  visit(resolve(manifestPath));
  return found;
}

/** The `$(IDF_PATH)/…/` include folders that a manifest's esp32 section lists (not its includes'). */
export function idfIncludeFolders(manifestPath: string): string[] {
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  const folders: string[] = [];
  for (const section of sections(manifest, 'esp32')) {
    for (const value of Object.values(section.modules ?? {})) {
      for (const entry of entries(value)) {
        if (entry.startsWith('$(IDF_PATH)/') && entry.endsWith('/')) folders.push(entry);
      }
    }
  }
  return folders;
}

/** `file` relative to `root`, with forward slashes (for messages and the kit's command line). */
export function projectPath(root: string, file: string): string {
  return relative(root, file).split('\\').join('/');
}

export const manifestPathOf = (root: string) => join(root, 'manifest.json');
