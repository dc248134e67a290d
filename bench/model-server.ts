/**
 * npm run bench:model-server — one-row inference throughput and latency over REST (wrk) and gRPC
 * (h2load) at concurrency 1, 32 and 128, beside the in-process onnxruntime ceiling, and the
 * server's resident memory with two models loaded. Prints figures; asserts nothing.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { create, toBinary } from "@bufbuild/protobuf";
import { ModelInferRequestSchema } from "@valora/proto/inference/v2/grpc_predict_v2_pb";
import { buildEnsembleModel, serializeModel } from "@valora/kit/onnx";
import { randomEnsemble, seededRandom } from "@valora/kit/testing";
import { h2loadGrpc, requireTool, rssMb, startService, table, wrk } from "./lib.js";

requireTool("wrk", "wrk");
requireTool("h2load", "nghttp2-client");
const seconds = Number(process.env["BENCH_SECONDS"] ?? 8);
const FEATURES = 40;
const dir = mkdtempSync(join(tmpdir(), "valora-bench-"));
// Sized like the default models: a few hundred depth-6 trees.
const homes = join(dir, "homes.onnx");
const autos = join(dir, "autos.onnx");
writeFileSync(homes, serializeModel(buildEnsembleModel(randomEnsemble(1, { trees: 400, depth: 6, features: FEATURES }), { recordCovers: true })));
writeFileSync(autos, serializeModel(buildEnsembleModel(randomEnsemble(2, { trees: 300, depth: 6, features: 12 }), { recordCovers: true })));

const rnd = seededRandom(9);
const row = Array.from({ length: FEATURES }, () => Math.round(rnd() * 1000) / 100);

// In-process ceiling: sequential one-row session.run calls, and 128-row batches, on one thread.
const session = await ort.InferenceSession.create(readFileSync(homes), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all" });
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
const batch = new ort.Tensor("float32", Float32Array.from({ length: 128 * FEATURES }, (_, i) => row[i % FEATURES]!), [128, FEATURES]);
const ceilingBatch = await measure(batch, 128);
await session.release();

const server = await startService(
  ["serve", "model-server", "--model", `homes=file://${homes}`, "--model", `autos=file://${autos}`, "--grpc-port", "18801", "--http-port", "18800"],
  { LOG_LEVEL: "info", HOST: "127.0.0.1", MAX_BATCH_SIZE: process.env["MAX_BATCH_SIZE"] ?? "64", MAX_BATCH_DELAY_MICROS: process.env["MAX_BATCH_DELAY_MICROS"] ?? "500" },
  "model server ready",
);
const rssIdle = rssMb(server.pid!);
const body = JSON.stringify({ inputs: [{ name: "features", shape: [1, FEATURES], datatype: "FP32", data: row }] });
const message = toBinary(ModelInferRequestSchema, create(ModelInferRequestSchema, { modelName: "homes", inputs: [{ name: "features", datatype: "FP32", shape: [1n, BigInt(FEATURES)], contents: { fp32Contents: row } }] }));

const results: Record<string, string | number>[] = [];
let rssPeak = rssIdle;
for (const c of [1, 32, 128]) {
  const r = wrk("http://127.0.0.1:18800/v2/models/homes/infer", body, c, seconds);
  rssPeak = Math.max(rssPeak, rssMb(server.pid!));
  results.push({ protocol: "REST", concurrency: c, "req/s": Math.round(r.rps), "p50 ms": r.p50Ms.toFixed(2), "p99 ms": r.p99Ms.toFixed(2), errors: r.errors, "% of ceiling": `${Math.round((100 * r.rps) / ceilingOne)}%` });
  const connections = Math.min(c, 8);
  const g = h2loadGrpc("http://127.0.0.1:18801/inference.GRPCInferenceService/ModelInfer", message, connections, Math.ceil(c / connections), seconds);
  rssPeak = Math.max(rssPeak, rssMb(server.pid!));
  results.push({ protocol: "gRPC", concurrency: c, "req/s": Math.round(g.rps), "p50 ms": g.p50Ms.toFixed(2), "p99 ms": g.p99Ms.toFixed(2), errors: g.errors, "% of ceiling": `${Math.round((100 * g.rps) / ceilingOne)}%` });
}
server.kill("SIGTERM");

console.log(`\nmodel: ${FEATURES} features, 400 trees of depth 6 (plus a second model loaded); ${seconds}s per run; load generators wrk and h2load on the same 2 cores`);
console.log(`in-process onnxruntime ceiling: ${Math.round(ceilingOne)} one-row runs/s sequentially; ${Math.round(ceilingBatch)} rows/s in 128-row batches\n`);
table(results);
console.log(`\nmodel-server resident memory: ${rssIdle.toFixed(0)} MB idle with two models, ${rssPeak.toFixed(0)} MB peak under load`);
