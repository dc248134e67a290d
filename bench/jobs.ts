/**
 * npm run bench:jobs — rows/s of a 10,000-row bulk job through `valora up` (REST submit, Postgres
 * queue, workers valuing through the orchestrator's ValueBatch with comparables and the model),
 * from the job's own timings. Prints figures; asserts nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
// A fixed bootstrap key, so the benchmark works against a database that already has tenants.
const BENCH_KEY = "vk_benchbench_benchmarkbenchmarkbenchmarkbench";
import { startService } from "./lib.js";

const rowsWanted = Number(process.env["BENCH_ROWS"] ?? 10_000);
const dataDir = mkdtempSync(join(tmpdir(), "valora-bench-jobs-"));
let banner: { rest: string; apiKey: string } | undefined;
const platform = await startService(
  ["up", "--data-dir", dataDir, "--port", "18085", "--grpc-port", "0", "--kube-port", "0"],
  {
    VALORA_BOOTSTRAP_API_KEY: BENCH_KEY,
    DATABASE_URL: process.env["BENCH_DATABASE_URL"],
    REDIS_URL: process.env["BENCH_REDIS_URL"],
    VALORA_JOB_WORKERS: process.env["BENCH_JOB_WORKERS"],
  },
  "valora is up",
  (line) => {
    banner = JSON.parse(line) as { rest: string; apiKey: string };
  },
);
const cars = parse<Record<string, string>>(readFileSync("models/data/car_prices.csv", "utf8"), {
  columns: true,
});
const header = Object.keys(cars[0]!).filter((h) => h !== "Price");
// Every row a different car (mileage varies), so nothing comes from the cache.
const csv = [
  header.join(","),
  ...Array.from({ length: rowsWanted }, (_, i) =>
    header
      .map((h) => (h === "Mileage" ? String(300 + ((i * 7) % 50_000)) : cars[i % cars.length]![h]))
      .join(","),
  ),
].join("\n");
const auth = { authorization: `Bearer ${BENCH_KEY}` };
const submitted = Date.now();
const res = await fetch(`${banner!.rest}/v1/jobs?assetClass=autos`, {
  method: "POST",
  headers: { ...auth, "content-type": "text/csv" },
  body: csv,
});
const { data: job, error } = (await res.json()) as { data: { id: string }; error: unknown };
if (!job) throw new Error(`submit failed: ${JSON.stringify(error)}`);
const acceptedMs = Date.now() - submitted;
let status: {
  status: string;
  doneRows: number;
  failedRows: number;
  timings: { queuedMs: number; runningMs: number };
};
for (;;) {
  status = (
    (await (await fetch(`${banner!.rest}/v1/jobs/${job.id}`, { headers: auth })).json()) as {
      data: typeof status;
    }
  ).data;
  if (["succeeded", "failed", "cancelled"].includes(status.status)) break;
  await new Promise((r) => setTimeout(r, 200));
}
const totalMs = Date.now() - submitted;
platform.kill("SIGTERM");
rmSync(dataDir, { recursive: true, force: true });
console.log(
  `\nBulk job of ${rowsWanted} autos rows through valora up (${process.env["BENCH_DATABASE_URL"] ? "external Postgres" : "embedded Postgres"})`,
);
console.log(`status ${status.status}: ${status.doneRows} valued, ${status.failedRows} failed`);
console.log(
  `accepted (202) in ${acceptedMs} ms; queued ${status.timings.queuedMs} ms; running ${status.timings.runningMs} ms -> ${Math.round((1000 * (status.doneRows + status.failedRows)) / status.timings.runningMs)} rows/s; submit to done ${totalMs} ms -> ${Math.round((1000 * rowsWanted) / totalMs)} rows/s`,
);
