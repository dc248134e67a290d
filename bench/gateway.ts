/**
 * npm run bench:gateway — the full REST valuation path of `valora up` (auth, rate limit, cache,
 * orchestrator, pipeline, comparables, model + TreeSHAP explanation) under wrk: uncached
 * (`skipCache`, a different house every request) and cached (one house), at concurrency 8 and 32,
 * with the platform's resident memory and time to ready. Then the same at concurrency 32 with
 * every request traced (OTEL_TRACES_SAMPLER=always_on, exported over OTLP to a collector on
 * loopback in a process of its own): the cost of 100% sampling. BENCH_TRACING=0 skips that part.
 * Prints figures; asserts nothing.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parse } from "csv-parse/sync";
import { amesHouse, requireTool, rssTreeMb, startService, table, wrk } from "./lib.js";

// A fixed bootstrap key, so the benchmark works against a database that already has tenants.
const BENCH_KEY = "vk_benchbench_benchmarkbenchmarkbenchmarkbench";
requireTool("wrk", "wrk");
const seconds = Number(process.env["BENCH_SECONDS"] ?? 8);
const headers = { Authorization: `Bearer ${BENCH_KEY}` };

// Houses as clients send them: the AssetPipeline's field names, from the bundled Ames data.
const rows = parse<Record<string, string>>(readFileSync("models/data/ames.csv", "utf8"), { columns: true });
const uncached = rows
  .slice(0, 1000)
  .map((r) => JSON.stringify({ assetClass: "real-estate", attributes: amesHouse(r), skipCache: true }));
const cached = JSON.stringify({ assetClass: "real-estate", attributes: amesHouse(rows[0]!) });

/** Starts `valora up` with `env`, loads it at each concurrency on both paths, stops it. */
async function run(label: string, env: Record<string, string | undefined>, concurrencies: number[]) {
  const dataDir = mkdtempSync(join(tmpdir(), "valora-bench-"));
  const started = Date.now();
  let banner: { rest: string } | undefined;
  const platform = await startService(
    ["up", "--data-dir", dataDir, "--port", "18080", "--grpc-port", "0", "--kube-port", "0"],
    {
      VALORA_BOOTSTRAP_API_KEY: BENCH_KEY,
      DATABASE_URL: process.env["BENCH_DATABASE_URL"],
      REDIS_URL: process.env["BENCH_REDIS_URL"],
      LOG_LEVEL: "warn",
      ...env,
    },
    "valora is up",
    (line) => {
      banner = JSON.parse(line) as { rest: string };
    },
  );
  const readyMs = Date.now() - started;
  const rssIdle = rssTreeMb(platform.pid!);
  const url = `${banner!.rest}/v1/valuations`;
  wrk(url, uncached.slice(0, 50), 4, 2, 1, headers); // warm-up
  const results: Record<string, string | number>[] = [];
  let rssPeak = rssIdle;
  for (const [name, body] of [
    ["uncached", uncached],
    ["cached", cached],
  ] as const) {
    for (const c of concurrencies) {
      const r = wrk(url, body, c, seconds, 1, headers);
      rssPeak = Math.max(rssPeak, rssTreeMb(platform.pid!));
      results.push({
        tracing: label,
        path: name,
        concurrency: c,
        "valuations/s": Math.round(r.rps),
        "p50 ms": r.p50Ms.toFixed(2),
        "p99 ms": r.p99Ms.toFixed(2),
        errors: r.errors,
      });
    }
  }
  const dropped = Number(
    /^valora_otel_spans_dropped_total\{[^}]*\} (\d+)/m.exec(
      await (await fetch(`${banner!.rest}/metrics`)).text(),
    )?.[1] ?? 0,
  );
  platform.kill("SIGTERM");
  await new Promise((r) => platform.once("exit", r));
  rmSync(dataDir, { recursive: true, force: true });
  return { results, readyMs, rssIdle, rssPeak, dropped };
}

/** The collector: bench/otlp-sink.ts in its own process, so it takes exports while wrk runs. */
async function startSink() {
  const child = spawn(process.execPath, ["--import", "tsx", "--conditions=source", "bench/otlp-sink.ts"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  const next = () => new Promise<string>((resolve) => lines.once("line", resolve));
  const { endpoint } = JSON.parse(await next()) as { endpoint: string };
  return {
    endpoint,
    stop: async () => {
      const counted = next();
      child.kill("SIGTERM");
      return JSON.parse(await counted) as { spans: number; requests: number };
    },
  };
}

const off = await run("off", {}, [8, 32]);
const mode = `${process.env["BENCH_REDIS_URL"] ? "Redis" : "in-process cache"}, ${process.env["BENCH_DATABASE_URL"] ? "external Postgres" : "embedded Postgres"}`;
console.log(`\nFull REST valuation path (valora up, ${mode}), ${seconds} s per run, wrk on the same 2 cores`);
const rowsOut = [...off.results];
let tracedNote = "";
if (process.env["BENCH_TRACING"] !== "0") {
  const sink = await startSink();
  const traced = await run(
    "100% OTLP",
    { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_TRACES_SAMPLER: "always_on" },
    [32],
  );
  const taken = await sink.stop();
  rowsOut.push(...traced.results);
  tracedNote = `\ntraced run: ${taken.spans} spans in ${taken.requests} OTLP exports reached the collector; ${traced.dropped} dropped by the platform process (its queue full); ${Math.round(traced.rssPeak)} MB peak`;
}
table(rowsOut);
console.log(
  `\nready in ${(off.readyMs / 1000).toFixed(1)} s; resident memory ${Math.round(off.rssIdle)} MB idle, ${Math.round(off.rssPeak)} MB peak (the platform and every pod process it runs)${tracedNote}`,
);
