/**
 * npm run bench:model-server — one-row inference throughput and latency over REST (wrk) and gRPC
 * (h2load) at concurrency 1, 32 and 128, beside the in-process onnxruntime ceiling, and the
 * server's resident memory with two models loaded. Prints figures; asserts nothing.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as ort from "onnxruntime-node";
import { create, toBinary } from "@bufbuild/protobuf";
import { ModelInferRequestSchema } from "@valora/proto/inference/v2/grpc_predict_v2_pb";
import { MODEL_SERVER_ENV, seededRandom } from "@valora/kit";
import {
  compiledFor,
  locateTreeEnsemble,
  nativeTreeShap,
  packedShap,
  parseModel,
  type NativeTreeShap,
} from "@valora/kit/onnx";
import { h2loadGrpc, requireTool, rssMb, startService, table, wrk } from "./lib.js";

requireTool("wrk", "wrk");
requireTool("h2load", "nghttp2-client");
const seconds = Number(process.env["BENCH_SECONDS"] ?? 8);
// The two default models `make models` builds.
const homes = "models/real-estate/model.onnx";
const autos = "models/autos/model.onnx";
const card = JSON.parse(readFileSync("models/real-estate/model-card.json", "utf8")) as {
  features: string[];
  hyperParameters: { rounds: number };
};
const FEATURES = card.features.length;

const rnd = seededRandom(9);
const row = Array.from({ length: FEATURES }, () => Math.round(rnd() * 1000) / 100);

// In-process ceiling: sequential one-row session.run calls, and 128-row batches, on one thread.
const session = await ort.InferenceSession.create(readFileSync(homes), {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
});
const one = new ort.Tensor("float32", Float32Array.from(row), [1, FEATURES]);
const measure = async (tensor: ort.Tensor, rows: number): Promise<number> => {
  for (let i = 0; i < 200; i++) await session.run({ features: tensor });
  const start = process.hrtime.bigint();
  let n = 0;
  while (process.hrtime.bigint() - start < 2_000_000_000n) {
    await session.run({ features: tensor });
    n++;
  }
  return (n * rows) / (Number(process.hrtime.bigint() - start) / 1e9);
};
const ceilingOne = await measure(one, 1);
const batch = new ort.Tensor(
  "float32",
  Float32Array.from({ length: 128 * FEATURES }, (_, i) => row[i % FEATURES]!),
  [128, FEATURES],
);
const ceilingBatch = await measure(batch, 128);
await session.release();

// Exact TreeSHAP of one row, in process (what /explain and the valuation path pay per row).
const located = locateTreeEnsemble(parseModel(readFileSync(homes)));
if (typeof located === "string") throw new Error(located);
const compileStart = performance.now();
const tables = compiledFor(located.ensemble);
const compileMs = performance.now() - compileStart;
const shapRows = Array.from({ length: 64 }, (_, r) => row.map((v, i) => ((i + r) % 7 === 0 ? v * 1.5 : v)));
/** ms per row of packedShap over `count` rows at a time, for 2 s, with one kernel. */
const shapMsPerRow = (count: number, kernel: NativeTreeShap | null): number => {
  const packed = Float64Array.from(shapRows.slice(0, count).flat());
  for (let i = 0; i < 20; i++) packedShap(tables!, packed, count, kernel);
  const start = performance.now();
  let rows = 0;
  while (performance.now() - start < 2000)
    rows += packedShap(tables!, packed, count, kernel).length / FEATURES;
  return (performance.now() - start) / rows;
};
const native = nativeTreeShap() ?? null;
const shapKernels = tables
  ? [1, 16].map((count) => ({
      rows: count,
      compiled: native ? `${shapMsPerRow(count, native).toFixed(2)} ms` : "not built",
      typescript: `${shapMsPerRow(count, null).toFixed(2)} ms`,
    }))
  : [];

const server = await startService(
  [
    "serve",
    "model-server",
    "--model",
    `homes=file://${resolve(homes)}`,
    "--model",
    `autos=file://${resolve(autos)}`,
    "--grpc-port",
    "18801",
    "--http-port",
    "18800",
  ],
  {
    ...MODEL_SERVER_ENV,
    LOG_LEVEL: "info",
    HOST: "127.0.0.1",
    MAX_BATCH_SIZE: process.env["MAX_BATCH_SIZE"] ?? "64",
    MAX_BATCH_DELAY_MICROS: process.env["MAX_BATCH_DELAY_MICROS"] ?? "500",
  },
  "model server ready",
);
const rssReady = rssMb(server.pid!);
// Loading leaves garbage (the parsed trees the leaf tables were built from) that V8 returns once the
// process idles; what a pod keeps is the settled figure.
await new Promise((r) => setTimeout(r, Number(process.env["BENCH_SETTLE_SECONDS"] ?? 20) * 1000));
const rssIdle = rssMb(server.pid!);
const body = JSON.stringify({
  inputs: [{ name: "features", shape: [1, FEATURES], datatype: "FP32", data: row }],
});
const message = toBinary(
  ModelInferRequestSchema,
  create(ModelInferRequestSchema, {
    modelName: "homes",
    inputs: [
      { name: "features", datatype: "FP32", shape: [1n, BigInt(FEATURES)], contents: { fp32Contents: row } },
    ],
  }),
);

const results: Record<string, string | number>[] = [];
let rssPeak = rssIdle;
for (const c of [1, 32, 128]) {
  const r = wrk("http://127.0.0.1:18800/v2/models/homes/infer", body, c, seconds);
  rssPeak = Math.max(rssPeak, rssMb(server.pid!));
  results.push({
    protocol: "REST",
    concurrency: c,
    "req/s": Math.round(r.rps),
    "p50 ms": r.p50Ms.toFixed(2),
    "p99 ms": r.p99Ms.toFixed(2),
    errors: r.errors,
    "% of ceiling": `${Math.round((100 * r.rps) / ceilingOne)}%`,
  });
  const connections = Math.min(c, 8);
  const g = h2loadGrpc(
    "http://127.0.0.1:18801/inference.GRPCInferenceService/ModelInfer",
    message,
    connections,
    Math.ceil(c / connections),
    seconds,
  );
  rssPeak = Math.max(rssPeak, rssMb(server.pid!));
  results.push({
    protocol: "gRPC",
    concurrency: c,
    "req/s": Math.round(g.rps),
    "p50 ms": g.p50Ms.toFixed(2),
    "p99 ms": g.p99Ms.toFixed(2),
    errors: g.errors,
    "% of ceiling": `${Math.round((100 * g.rps) / ceilingOne)}%`,
  });
}
server.kill("SIGTERM");

// The transport's own ceiling: the same gRPC request at concurrency 32, answered with a constant and
// no model, by grpc-js (what the model server uses) and by bare node:http2.
const transport: Record<string, string | number>[] = [];
for (const kind of ["grpcjs", "http2"]) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=source", "bench/transport-server.ts", kind, "18901"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve) =>
    child.stdout.on("data", (b: Buffer) => b.toString().includes("ready") && resolve()),
  );
  const g = h2loadGrpc(
    "http://127.0.0.1:18901/inference.GRPCInferenceService/ModelInfer",
    message,
    8,
    4,
    seconds,
  );
  transport.push({
    server: kind === "grpcjs" ? "grpc-js, constant reply" : "node:http2, constant reply",
    concurrency: 32,
    "req/s": Math.round(g.rps),
    "p50 ms": g.p50Ms.toFixed(2),
    "p99 ms": g.p99Ms.toFixed(2),
  });
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
}

console.log(
  `\nmodel: the default real-estate model (${FEATURES} features, ${card.hyperParameters.rounds} trees; the autos model loaded too); ${seconds}s per run; load generators wrk and h2load on the same 2 cores`,
);
console.log(
  `in-process onnxruntime ceiling: ${Math.round(ceilingOne)} one-row runs/s sequentially; ${Math.round(ceilingBatch)} rows/s in 128-row batches\n`,
);
const shapMethod = tables
  ? `leaf tables of ${((tables.tableSize * 4) / 1e6).toFixed(1)} MB built in ${compileMs.toFixed(0)} ms`
  : "recursive algorithm";
console.log(`exact TreeSHAP in process, ms per row (${shapMethod}):`);
table(shapKernels);
console.log("");
table(results);
console.log("\ngRPC transport ceiling (no model, no Valora code):");
table(transport);
console.log(
  `\nmodel-server resident memory with two models: ${rssReady.toFixed(0)} MB when ready, ${rssIdle.toFixed(0)} MB idle after ${process.env["BENCH_SETTLE_SECONDS"] ?? 20} s, ${rssPeak.toFixed(0)} MB peak under load (env ${Object.entries(
    MODEL_SERVER_ENV,
  )
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")}, as pods get it)`,
);
