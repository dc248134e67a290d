/**
 * npm run bench:gateway — the full REST valuation path of `valora up` (auth, rate limit, quota,
 * cache, orchestrator, pipeline, comparables, model, TreeSHAP explanation) under wrk, per path:
 * explained and uncached (`skipCache`, a different house every request), value only and uncached
 * (`include: []`), cached (one house). For each: valuations/s, p50/p99 and the CPU each process
 * spent per valuation over the run (platform, pipelines, model servers, from /proc; wrk too), and
 * the proportional memory (PSS) per process idle and at peak.
 *
 * BENCH_BASELINE=<git ref> builds that commit in a temporary worktree and runs it beside this one,
 * interleaved run by run, so a change is judged side by side; BENCH_VARIANT="NAME=value,..." does
 * the same for this build run a second time with those environment variables (a setting judged side
 * by side). BENCH_PATHS (e.g. "explained,cached": the paths whose names start so), BENCH_REPEAT (runs
 * of each, default 1), BENCH_CONCURRENCY (default 32), BENCH_SECONDS (8), BENCH_DATABASE_URL /
 * BENCH_REDIS_URL (embedded defaults otherwise).
 * Beside them, for the value-only and cached paths, "floor": bench/transport-chain.ts, the same hops
 * (REST, gRPC Run, gRPC ModelInfer; REST alone for cached) in three processes with the same libraries
 * and messages and no Valora code — what no path built on them can undercut; BENCH_FLOOR=0 leaves it
 * out. Each run is preceded by BENCH_WARMUP_SECONDS (3) of the same load, unmeasured.
 * BENCH_TRACING=0 skips the last part: the same at 100% sampling, exported over OTLP to a
 * collector on loopback in a process of its own. Prints figures; asserts nothing.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parse } from "csv-parse/sync";
import { amesHouse, cpuByRole, cpuMs, pssByRole, requireTool, startService, table, wrk } from "./lib.js";

// A fixed bootstrap key, so the benchmark works against a database that already has tenants.
const BENCH_KEY = "vk_benchbench_benchmarkbenchmarkbenchmarkbench";
requireTool("wrk", "wrk");
const seconds = Number(process.env["BENCH_SECONDS"] ?? 8);
const warmup = Number(process.env["BENCH_WARMUP_SECONDS"] ?? 3);
const concurrencies = (process.env["BENCH_CONCURRENCY"] ?? "32").split(",").map(Number);
const headers = { Authorization: `Bearer ${BENCH_KEY}` };
const ROLES = ["platform", "pipelines", "model servers"] as const;

// Houses as clients send them: the AssetPipeline's field names, from the bundled Ames data.
const rows = parse<Record<string, string>>(readFileSync("models/data/ames.csv", "utf8"), { columns: true });
const bodies = (extra: Record<string, unknown>) =>
  rows
    .slice(0, 1000)
    .map((r) =>
      JSON.stringify({ assetClass: "real-estate", attributes: amesHouse(r), skipCache: true, ...extra }),
    );
const PATHS = (
  [
    ["explained, uncached", bodies({})],
    ["value only, uncached", bodies({ include: [] })],
    ["cached", JSON.stringify({ assetClass: "real-estate", attributes: amesHouse(rows[0]!) })],
  ] as [string, string | string[]][]
).filter(
  ([path]) =>
    !process.env["BENCH_PATHS"] || process.env["BENCH_PATHS"].split(",").some((p) => path.startsWith(p)),
);

interface Platform {
  label: string;
  child: ChildProcess;
  url: string;
  dataDir: string;
  readyMs: number;
  pssIdle: Map<string, number>;
  pssPeak: Map<string, number>;
}

/** Starts `valora up` from `cwd` (this checkout or the baseline's) and waits 20 s idle for its memory. */
async function startPlatform(
  label: string,
  port: number,
  cwd: string,
  env: Record<string, string | undefined> = {},
) {
  const dataDir = mkdtempSync(join(tmpdir(), "valora-bench-"));
  const started = Date.now();
  let rest = "";
  const child = await startService(
    ["up", "--data-dir", dataDir, "--port", String(port), "--grpc-port", "0", "--kube-port", "0"],
    {
      VALORA_BOOTSTRAP_API_KEY: BENCH_KEY,
      DATABASE_URL: process.env["BENCH_DATABASE_URL"],
      REDIS_URL: process.env["BENCH_REDIS_URL"],
      LOG_LEVEL: "warn",
      ...env,
    },
    "valora is up",
    (line) => (rest = (JSON.parse(line) as { rest: string }).rest),
    cwd,
  );
  const readyMs = Date.now() - started;
  await new Promise((r) => setTimeout(r, 20_000));
  const pssIdle = pssByRole(child.pid!);
  const url = `${rest}/v1/valuations`;
  wrk(url, bodies({}).slice(0, 50), 4, 2, 1, headers); // warm-up
  return { label, child, url, dataDir, readyMs, pssIdle, pssPeak: new Map(pssIdle) } satisfies Platform;
}

/** The transport floor (bench/transport-chain.ts): three processes, constant answers, no Valora code. */
async function startFloor(port: number): Promise<Platform> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=source", "bench/transport-chain.ts", "platform", String(port)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout }).once("line", resolve),
  );
  const url = `${(JSON.parse(line) as { rest: string }).rest}/v1/valuations`;
  const dataDir = mkdtempSync(join(tmpdir(), "valora-bench-floor-"));
  wrk(url, bodies({ include: [] }).slice(0, 50), 4, 2, 1, headers); // warm-up
  const pss = pssByRole(child.pid!);
  return { label: "floor", child, url, dataDir, readyMs: 0, pssIdle: pss, pssPeak: new Map(pss) };
}

async function stopPlatform(p: Platform): Promise<void> {
  p.child.kill("SIGTERM");
  await new Promise((r) => p.child.once("exit", r));
  rmSync(p.dataDir, { recursive: true, force: true });
}

/** One wrk run against one platform, with the CPU every process spent meanwhile. */
function measure(
  p: Platform,
  path: string,
  body: string | string[],
  c: number,
): Record<string, string | number> {
  // The same path at the same concurrency first, unmeasured, so the run sees compiled code, not the JIT at work.
  if (warmup > 0) wrk(p.url, body, c, warmup, 1, headers);
  const before = cpuByRole(p.child.pid!);
  const wrkBefore = cpuMs("self-children");
  const r = wrk(p.url, body, c, seconds, 1, headers);
  const after = cpuByRole(p.child.pid!);
  const wrkCpu = cpuMs("self-children") - wrkBefore;
  for (const [role, mb] of pssByRole(p.child.pid!))
    p.pssPeak.set(role, Math.max(p.pssPeak.get(role) ?? 0, mb));
  const valuations = Math.max(1, r.rps * seconds);
  const per = (ms: number) => (ms / valuations).toFixed(2);
  const cpu = Object.fromEntries(
    ROLES.map((role) => [`${role} ms`, per((after.get(role) ?? 0) - (before.get(role) ?? 0))]),
  );
  const valora = ROLES.reduce((s, role) => s + (after.get(role) ?? 0) - (before.get(role) ?? 0), 0);
  return {
    build: p.label,
    path,
    c,
    "valuations/s": Math.round(r.rps),
    "p50 ms": r.p50Ms.toFixed(1),
    "p99 ms": r.p99Ms.toFixed(1),
    errors: r.errors,
    ...cpu,
    "Valora CPU ms": per(valora),
    "+ wrk ms": per(valora + wrkCpu),
  };
}

/** The baseline ref built in a worktree of its own (kept between runs, by commit). */
function baseline(ref: string): { dir: string; sha: string } {
  const sha = execFileSync("git", ["rev-parse", "--verify", `${ref}^{commit}`], { encoding: "utf8" }).trim();
  const dir = join(tmpdir(), `valora-baseline-${sha.slice(0, 12)}`);
  if (!existsSync(join(dir, "services", "cli", "dist", "bin.js"))) {
    console.error(`building ${ref} (${sha.slice(0, 12)}) in ${dir} ...`);
    if (!existsSync(dir))
      execFileSync("git", ["worktree", "add", "--detach", dir, sha], { stdio: "inherit" });
    const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" };
    execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: dir,
      stdio: "inherit",
      env,
    });
    execFileSync("npm", ["run", "build", "--silent"], { cwd: dir, stdio: "inherit", env });
  }
  return { dir, sha };
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

const mb = (m: Map<string, number>) =>
  `${ROLES.map((r) => `${r} ${Math.round(m.get(r) ?? 0)}`).join(", ")}; total ${Math.round([...m.values()].reduce((s, x) => s + x, 0))}`;
const cacheMode = process.env["BENCH_REDIS_URL"] ? "Redis" : "in-process cache";
const databaseMode = process.env["BENCH_DATABASE_URL"] ? "external Postgres" : "embedded PostgreSQL";
const mode = `${cacheMode}, ${databaseMode}`;
const ref = process.env["BENCH_BASELINE"];
const base = ref ? baseline(ref) : undefined;

// BENCH_VARIANT="NAME=value,..." runs this build a second time with those variables set, beside the first.
const variantSpec = process.env["BENCH_VARIANT"];
const variant = variantSpec
  ? Object.fromEntries(variantSpec.split(",").map((kv) => kv.split("=", 2) as [string, string]))
  : undefined;
const platforms: Platform[] = [await startPlatform("this", 18080, process.cwd())];
if (base) platforms.push(await startPlatform(base.sha.slice(0, 8), 18081, base.dir));
if (variant)
  platforms.push(await startPlatform(variantSpec!.replaceAll(",", " "), 18082, process.cwd(), variant));
const floor =
  process.env["BENCH_FLOOR"] !== "0" && PATHS.some(([path]) => path !== "explained, uncached")
    ? await startFloor(18090)
    : undefined;
const results: Record<string, string | number>[] = [];
const repeat = Number(process.env["BENCH_REPEAT"] ?? 1);
for (const [path, body] of PATHS)
  for (const c of concurrencies)
    for (let i = 0; i < repeat; i++) {
      // Interleaved: each run goes to every build before the next starts; the order alternates.
      const runs = floor && path !== "explained, uncached" ? [...platforms, floor] : platforms;
      for (const p of i % 2 === 0 ? runs : [...runs].reverse()) results.push(measure(p, path, body, c));
    }
console.log(
  `\nFull REST valuation path (valora up, ${mode}), ${seconds} s per run, wrk on the same 2 cores;`,
);
console.log("CPU is ms per valuation over the run, from /proc (user + system), per kind of process:");
table(results);
for (const p of platforms)
  console.log(
    `\n${p.label}: ready in ${(p.readyMs / 1000).toFixed(1)} s; PSS MB 20 s after ready, idle: ${mb(p.pssIdle)}; peak: ${mb(p.pssPeak)}`,
  );
if (floor) {
  const hops = "value only: REST, gRPC Run, gRPC ModelInfer; cached: REST";
  const what = "Valora's libraries and messages, constant answers, no Valora code";
  console.log(
    `floor: the path's hops (${hops}) in processes of their own with ${what} (bench/transport-chain.ts)`,
  );
}
for (const p of floor ? [...platforms, floor] : platforms) await stopPlatform(p);

if (process.env["BENCH_TRACING"] !== "0") {
  const sink = await startSink();
  const traced = await startPlatform("100% OTLP", 18080, process.cwd(), {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
    OTEL_TRACES_SAMPLER: "always_on",
  });
  const rowsOut = PATHS.filter(([path]) => path !== "value only, uncached").map(([path, body]) =>
    measure(traced, path, body, 32),
  );
  const metrics = await (await fetch(traced.url.replace("/v1/valuations", "/metrics"))).text();
  const dropped = Number(/^valora_otel_spans_dropped_total\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0);
  await stopPlatform(traced);
  const taken = await sink.stop();
  console.log(
    "\nThe same with every request traced (OTEL_TRACES_SAMPLER=always_on) to a collector on loopback:",
  );
  table(rowsOut);
  console.log(
    `${taken.spans} spans in ${taken.requests} OTLP exports reached the collector; the platform process dropped ${dropped}`,
  );
}
