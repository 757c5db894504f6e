/**
 * The device application's JavaScript size, per target, against its budget: bundles
 * src/moddable/sdk/main.ts as scripts/bundle-moddable.js does (dist/moddable/TARGET/main.js) and
 * prints its bytes and what each package or room contributes. Exit status 1 when a bundle is over
 * its budget. Run: `npm run build && node dist/bench/device-bundle.js [--json]`.
 *
 * This is the JavaScript before the Moddable SDK compiles it; the XS byte code that goes into the
 * firmware (and the SDK modules it links) is measured with the SDK, see docs/PERFORMANCE.md.
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Bytes of dist/moddable/TARGET/main.js allowed; raise only with a reason in docs/PERFORMANCE.md. */
export const BUNDLE_BUDGET: Record<string, number> = { esp32: 240_000, sim: 350_000 };

interface Metafile {
  outputs: Record<string, { bytes: number; inputs: Record<string, { bytesInOutput: number }> }>;
}
type BundleDevice = (target: string) => Promise<{ outfile: string; metafile: Metafile }>;

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** `node_modules/@noble/curves/…` → `@noble/curves`; `src/cose/…` → `src/cose`. */
export function owner(input: string): string {
  const parts = input.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at >= 0) return parts[at + 1]!.startsWith('@') ? `${parts[at + 1]}/${parts[at + 2]}` : parts[at + 1]!;
  return parts.slice(0, 2).join('/');
}

export interface BundleReport {
  target: string;
  bytes: number;
  budget: number;
  byOwner: { owner: string; bytes: number; share: number }[];
}

export async function measureBundles(): Promise<BundleReport[]> {
  const script = pathToFileURL(join(root, 'scripts', 'bundle-moddable.js')).href;
  const { bundleDevice, deviceTargets } = (await import(script)) as {
    bundleDevice: BundleDevice;
    deviceTargets: string[];
  };
  const reports: BundleReport[] = [];
  for (const target of deviceTargets) {
    const { outfile, metafile } = await bundleDevice(target);
    const bytes = statSync(outfile).size;
    const totals = new Map<string, number>();
    for (const output of Object.values(metafile.outputs)) {
      for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
        totals.set(owner(input), (totals.get(owner(input)) ?? 0) + bytesInOutput);
      }
    }
    const byOwner = [...totals]
      .map(([name, n]) => ({ owner: name, bytes: n, share: n / bytes }))
      .sort((a, b) => b.bytes - a.bytes);
    reports.push({ target, bytes, budget: BUNDLE_BUDGET[target] ?? Number.POSITIVE_INFINITY, byOwner });
  }
  return reports;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const reports = await measureBundles();
  if (process.argv.includes('--json')) console.log(JSON.stringify(reports, null, 2));
  else {
    for (const r of reports) {
      console.log(`${r.target}: ${r.bytes} B of JavaScript (budget ${r.budget} B)`);
      for (const o of r.byOwner.filter((x) => x.share >= 0.01)) {
        console.log(`  ${(o.share * 100).toFixed(1).padStart(5)} %  ${String(o.bytes).padStart(7)} B  ${o.owner}`);
      }
    }
  }
  const over = reports.filter((r) => r.bytes > r.budget);
  for (const r of over) console.error(`${r.target}: ${r.bytes} B is over its budget of ${r.budget} B`);
  process.exitCode = over.length > 0 ? 1 : 0;
}
