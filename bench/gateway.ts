/**
 * npm run bench:gateway — the full REST valuation path of `valora up` (auth, rate limit, cache,
 * orchestrator, pipeline, comparables, model + TreeSHAP explanation) under wrk: uncached
 * (`skipCache`, a different house every request) and cached (one house), at concurrency 8 and 32,
 * with the platform's resident memory and time to ready. Prints figures; asserts nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
// A fixed bootstrap key, so the benchmark works against a database that already has tenants.
const BENCH_KEY = "vk_benchbench_benchmarkbenchmarkbenchmarkbench";
import { amesHouse, requireTool, rssTreeMb, startService, table, wrk } from "./lib.js";

requireTool("wrk", "wrk");
const seconds = Number(process.env["BENCH_SECONDS"] ?? 8);
const dataDir = mkdtempSync(join(tmpdir(), "valora-bench-"));
const started = Date.now();
let banner: { rest: string; apiKey: string } | undefined;
const platform = await startService(
  ["up", "--data-dir", dataDir, "--port", "18080", "--grpc-port", "0", "--kube-port", "0"],
  {
    VALORA_BOOTSTRAP_API_KEY: BENCH_KEY,
    DATABASE_URL: process.env["BENCH_DATABASE_URL"],
    REDIS_URL: process.env["BENCH_REDIS_URL"],
    LOG_LEVEL: "warn",
  },
  "valora is up",
  (line) => {
    banner = JSON.parse(line) as { rest: string; apiKey: string };
  },
);
const readyMs = Date.now() - started;
const rssIdle = rssTreeMb(platform.pid!);
const headers = { Authorization: `Bearer ${BENCH_KEY}` };

// Houses as clients send them: the AssetPipeline's field names, from the bundled Ames data.
const rows = parse<Record<string, string>>(readFileSync("models/data/ames.csv", "utf8"), { columns: true });
const house = amesHouse;
const uncached = rows
  .slice(0, 1000)
  .map((r) => JSON.stringify({ assetClass: "real-estate", attributes: house(r), skipCache: true }));
const cached = JSON.stringify({ assetClass: "real-estate", attributes: house(rows[0]!) });
const url = `${banner!.rest}/v1/valuations`;
wrk(url, uncached.slice(0, 50), 4, 2, 1, headers); // warm-up

const results: Record<string, string | number>[] = [];
let rssPeak = rssIdle;
for (const [name, body] of [
  ["uncached", uncached],
  ["cached", cached],
] as const) {
  for (const c of [8, 32]) {
    const r = wrk(url, body, c, seconds, 1, headers);
    rssPeak = Math.max(rssPeak, rssTreeMb(platform.pid!));
    results.push({
      path: name,
      concurrency: c,
      "valuations/s": Math.round(r.rps),
      "p50 ms": r.p50Ms.toFixed(2),
      "p99 ms": r.p99Ms.toFixed(2),
      errors: r.errors,
    });
  }
}
platform.kill("SIGTERM");
rmSync(dataDir, { recursive: true, force: true });
console.log(
  `\nFull REST valuation path (valora up, ${process.env["BENCH_REDIS_URL"] ? "Redis" : "in-process cache"}, ${process.env["BENCH_DATABASE_URL"] ? "external Postgres" : "embedded Postgres"}), ${seconds} s per run, wrk on the same 2 cores`,
);
table(results);
console.log(
  `\nready in ${(readyMs / 1000).toFixed(1)} s; resident memory ${Math.round(rssIdle)} MB idle, ${Math.round(rssPeak)} MB peak (the platform and every pod process it runs)`,
);
