/**
 * npm run bench:pairing — what the canary's paired sample costs the answer. `valora up` with a
 * real-estate candidate at 50 % traffic (the same model file, so every answer is comparable), under
 * wrk with a different house every request, while the candidate's `pairedSamplePercent` is switched
 * between 0 and 100 by editing the CR, interleaved (0, 100, 0, 100). The pipeline values the paired
 * sample with the other version off the answer path: p50 and p99 should not move beyond the run-to-run
 * noise; throughput pays for the extra model calls. Prints figures; asserts nothing.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { amesHouse, requireTool, startService, table, wrk } from "./lib.js";

requireTool("wrk", "wrk");
const BENCH_KEY = "vk_benchbench_benchmarkbenchmarkbenchmarkbench";
const seconds = Number(process.env["BENCH_SECONDS"] ?? 8);
const dir = mkdtempSync(join(tmpdir(), "valora-bench-pairing-"));
const manifests = join(dir, "manifests");
cpSync("manifests", manifests, { recursive: true });
const file = join(manifests, "real-estate.yaml");
const original = readFileSync(file, "utf8");
const champion = /champion:\n\s+version: (\S+)\n\s+uri: (\S+)\n\s+sha256: (\S+)/.exec(original)!;

/** The real-estate CR with a candidate at 50 % whose paired sample is `percent` %. */
function withCandidate(percent: number): void {
  const candidate = [
    "  candidate:",
    "    version: bench-twin",
    `    uri: ${champion[2]}`,
    `    sha256: ${champion[3]}`,
    "    canary:",
    "      steps: [50, 100]",
    "      interval: 24h",
    "      analysis:",
    `        pairedSamplePercent: ${percent}`,
  ].join("\n");
  writeFileSync(file, original.replace("\n  serving:", `\n${candidate}\n  serving:`));
}

withCandidate(0);
let kube = "";
const platform = await startService(
  ["up", "--data-dir", join(dir, "data"), "--port", "18081", "--grpc-port", "0", "--kube-port", "0"],
  { VALORA_BOOTSTRAP_API_KEY: BENCH_KEY, VALORA_MANIFESTS: manifests, LOG_LEVEL: "warn" },
  "valora is up",
  (line) => {
    kube = (JSON.parse(line) as { kubernetes: string }).kubernetes;
  },
);

/** Waits until pipelines are told the sample size (status.routing) and the candidate serves. */
async function routed(percent: number): Promise<void> {
  for (let i = 0; i < 240; i++) {
    // A kept-alive connection the server has just closed fails a fetch now and then: ask again.
    const vm = (await fetch(`${kube}/apis/valora.dev/v1alpha1/namespaces/default/valuationmodels/real-estate`)
      .then((r) => r.json())
      .catch(() => ({}))) as {
      status?: { routing?: { role: string; weight: number; pairedSamplePercent?: number }[] };
    };
    const canary = vm.status?.routing?.find((r) => r.role === "canary");
    if (canary && canary.weight === 50 && canary.pairedSamplePercent === percent) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`routing never showed pairedSamplePercent ${percent}`);
}

const rows = parse<Record<string, string>>(readFileSync("models/data/ames.csv", "utf8"), { columns: true });
const bodies = rows.slice(0, 1000).map((r) =>
  JSON.stringify({
    assetClass: "real-estate",
    skipCache: true,
    attributes: amesHouse(r),
  }),
);
const url = "http://127.0.0.1:18081/v1/valuations";
const headers = { Authorization: `Bearer ${BENCH_KEY}` };
const results: Record<string, string | number>[] = [];
await routed(0);
wrk(url, bodies.slice(0, 50), 4, 2, 1, headers); // warm-up
for (const percent of [0, 100, 0, 100]) {
  withCandidate(percent);
  await routed(percent);
  const r = wrk(url, bodies, 8, seconds, 1, headers);
  results.push({
    "paired sample %": percent,
    "valuations/s": Math.round(r.rps),
    "p50 ms": r.p50Ms.toFixed(1),
    "p99 ms": r.p99Ms.toFixed(1),
    errors: r.errors,
  });
}
platform.kill("SIGTERM");
await new Promise((r) => setTimeout(r, 2000));
rmSync(dir, { recursive: true, force: true });
console.log(
  `\nPaired sample vs the answer: real-estate canary at 50 %, uncached, wrk c8, ${seconds} s per run`,
);
table(results);
