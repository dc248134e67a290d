import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export interface BundleReport {
  /** What the first page load fetches: the entry script and its modulepreloads. */
  initialJsGzipBytes: number;
  initialJsFiles: string[];
  cssGzipBytes: number;
  /** Every script, loaded or lazy. */
  totalJsGzipBytes: number;
  largestLazyChunk: { file: string; gzipBytes: number };
}

const gz = (file: string) => gzipSync(readFileSync(file), { level: 9 }).length;

/** Pure over a build directory: sizes as a browser downloads them (gzip), initial and lazy. */
export function bundleReport(dir: string): BundleReport {
  const html = readFileSync(join(dir, "index.html"), "utf8");
  const initial = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]!);
  const css = [...html.matchAll(/href="\/(assets\/[^"]+\.css)"/g)].map((m) => m[1]!);
  const all = readdirSync(join(dir, "assets"))
    .filter((f) => f.endsWith(".js"))
    .map((f) => `assets/${f}`);
  const lazy = all
    .filter((f) => !initial.includes(f))
    .map((f) => ({ file: f, gzipBytes: gz(join(dir, f)) }))
    .sort((a, b) => b.gzipBytes - a.gzipBytes);
  return {
    initialJsGzipBytes: initial.reduce((s, f) => s + gz(join(dir, f)), 0),
    initialJsFiles: initial,
    cssGzipBytes: css.reduce((s, f) => s + gz(join(dir, f)), 0),
    totalJsGzipBytes: all.reduce((s, f) => s + gz(join(dir, f)), 0),
    largestLazyChunk: lazy[0] ?? { file: "", gzipBytes: 0 },
  };
}

/** Every file of a build (for the secrets check). */
export function buildFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}
