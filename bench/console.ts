/**
 * npm run bench:console — the web console as a person meets it after `npm start`: the build's
 * JavaScript (initial and lazy, gzipped) and, in Debian's chromium, how long each page takes from
 * navigation to interactive (its main control enabled), cold (empty cache) and warm (hashed assets
 * cached). Prints figures; asserts nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { bundleReport } from "../services/console/scripts/bundle-report.js";
import { startService, table } from "./lib.js";

const KEY = "vk_benchbench_benchmarkbenchmarkbenchmarkbench";
const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const runs = Number(process.env["BENCH_RUNS"] ?? 7);
const dist = join("services", "console", "dist");

const b = bundleReport(dist);
console.log(`console build (${dist}): gzipped JavaScript`);
table([
  { part: "initial (entry + modulepreload)", KB: (b.initialJsGzipBytes / 1024).toFixed(1) },
  { part: "CSS", KB: (b.cssGzipBytes / 1024).toFixed(1) },
  {
    part: `largest lazy chunk (${b.largestLazyChunk.file})`,
    KB: (b.largestLazyChunk.gzipBytes / 1024).toFixed(1),
  },
  { part: "all scripts", KB: (b.totalJsGzipBytes / 1024).toFixed(1) },
]);

const dataDir = mkdtempSync(join(tmpdir(), "valora-bench-console-"));
let rest = "";
const platform = await startService(
  ["up", "--data-dir", dataDir, "--port", "0", "--grpc-port", "0", "--kube-port", "0"],
  { VALORA_BOOTSTRAP_API_KEY: KEY, DATABASE_URL: process.env["BENCH_DATABASE_URL"], LOG_LEVEL: "warn" },
  "valora is up",
  (line) => {
    rest = (JSON.parse(line) as { rest: string }).rest;
  },
);
// Measure the console, not the platform's start-up (pods still warming their models).
await new Promise((r) => setTimeout(r, Number(process.env["BENCH_SETTLE_MS"] ?? 20_000)));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
const stop = async () => {
  await browser.close();
  platform.kill("SIGTERM");
  await new Promise((r) => platform.once("exit", r));
  rmSync(dataDir, { recursive: true, force: true });
};

/** ms from navigation start until `ready` resolves in the page (measured by the browser's clock). */
async function interactive(path: string, ready: string, warm: boolean): Promise<number> {
  const context = await browser.newContext();
  // Every page but the sign-in page is measured signed in (a key in the tab's session storage).
  if (path !== "/")
    await context.addInitScript(
      `sessionStorage.setItem("valora.credential", ${JSON.stringify(JSON.stringify({ token: KEY, kind: "apiKey" }))})`,
    );
  const page = await context.newPage();
  if (warm) await page.goto(rest + path, { waitUntil: "networkidle" });
  await page.goto(rest + path);
  // A trial click waits until the control is actionable (visible, enabled, stable) and clicks nothing.
  await page.locator(ready).first().click({ trial: true });
  const ms = await page.evaluate(() => performance.now());
  await context.close();
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pages: [string, string][] = [
  ["/", "button[type=submit]"],
  ["/value", "button[type=submit]"],
  ["/jobs", "main button:has-text('Choose a CSV file')"],
  ["/models", "[data-testid^=model-]"],
  ["/account/keys", "button[type=submit]"],
];
const rows: Record<string, string | number>[] = [];
try {
  for (const [path, ready] of pages)
    for (const warm of [false, true]) {
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) ms.push(await interactive(path, ready, warm));
      rows.push({
        page: path,
        cache: warm ? "warm" : "cold",
        "median ms": median(ms).toFixed(0),
        "max ms": Math.max(...ms).toFixed(0),
      });
    }
  console.log(`\nnavigation to interactive in chromium against valora up, ${runs} runs each`);
  table(rows);
} finally {
  await stop();
}
