import * as ort from "onnxruntime-node";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pathToFileURL } from "node:url";
import { GRPCInferenceService } from "@valora/proto/inference/v2/grpc_predict_v2_pb";
import { Explainer } from "@valora/proto/valora/v1/explain_pb";
import {
  Health as HealthService,
  HealthCheckResponse_ServingStatus,
} from "@valora/proto/grpc/health/v1/health_pb";
import { createClient, createRegistry, createServiceBase, ValoraError, type Client } from "@valora/kit";
import { captureLogs, seededRandom } from "@valora/kit/testing";
import { createModelServer, type ModelServer } from "../src/index.js";
import { FEATURES, writeFixtures } from "./fixtures.js";

const fx = writeFixtures();
const url = (p: string) => pathToFileURL(p).href;

describe("model server over loopback (gRPC + REST, real onnxruntime)", () => {
  let server: ModelServer;
  let rest: string;
  let grpc: Client<typeof GRPCInferenceService>;
  let explainer: Client<typeof Explainer>;
  let reference: ort.InferenceSession;
  let grpcPort = 0;

  beforeAll(async () => {
    const { logger } = captureLogs("model-server");
    const base = createServiceBase({
      name: "model-server",
      logger,
      registry: createRegistry({ service: "model-server", collectDefault: false }),
    });
    server = createModelServer(base, {
      models: [
        { name: "homes", version: "3", uri: url(fx.trees) },
        { name: "sk", version: "1", uri: url(fx.sklearnLike) },
        { name: "dtypes", version: "1", uri: url(fx.dtypes) },
        { name: "linear", version: "1", uri: url(fx.linear) },
      ],
      source: { cacheDir: fx.dir, allowedHosts: [] },
      batching: { maxBatchSize: 32, maxDelayMicros: 2000 },
      explainThreads: 2,
    });
    const ports = await server.listen({ host: "127.0.0.1", grpcPort: 0, httpPort: 0 });
    await server.loaded;
    rest = `http://127.0.0.1:${ports.httpPort}`;
    grpcPort = ports.grpcPort;
    grpc = createClient(GRPCInferenceService, `127.0.0.1:${ports.grpcPort}`);
    explainer = createClient(Explainer, `127.0.0.1:${ports.grpcPort}`);
    reference = await ort.InferenceSession.create(readFileSync(fx.trees));
  });
  afterAll(async () => {
    grpc.close();
    explainer.close();
    await server.close();
  });

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${rest}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("reports liveness, readiness and metadata read from the ONNX session", async () => {
    expect((await grpc.serverLive({})).live).toBe(true);
    expect((await grpc.serverReady({})).ready).toBe(true);
    expect((await grpc.modelReady({ name: "homes" })).ready).toBe(true);
    const md = await grpc.modelMetadata({ name: "sk" });
    expect(md.platform).toBe("onnxruntime_onnx");
    expect(md.inputs.map((i) => [i.name, i.datatype, i.shape.map(Number)])).toEqual([
      ["float_input", "FP32", [-1, 3]],
    ]);
    expect(md.outputs.map((i) => [i.name, i.datatype])).toEqual([["variable", "FP32"]]);
    const restMd = await (await fetch(`${rest}/v2/models/homes/versions/3`)).json();
    expect(restMd).toMatchObject({
      name: "homes",
      versions: ["3"],
      inputs: [{ name: "features", datatype: "FP32", shape: [-1, 6] }],
    });
    expect((await fetch(`${rest}/v2/health/ready`)).status).toBe(200);
    expect((await fetch(`${rest}/v2/models/homes/ready`)).status).toBe(200);
    const health = createClient(HealthService, `127.0.0.1:${grpcPort}`);
    expect((await health.check({ service: "inference.GRPCInferenceService" })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );
    expect((await health.check({ service: "valora.v1.Explainer" })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );
    health.close();
  });

  it("infers with typed contents and with raw little-endian bytes over gRPC, matching onnxruntime", async () => {
    const rnd = seededRandom(3);
    const x = Float32Array.from({ length: 6 * 4 }, () => rnd() * 10);
    const expected = (await reference.run({ features: new ort.Tensor("float32", x, [4, 6]) }))["value"]!
      .data as Float32Array;
    const typed = await grpc.modelInfer({
      modelName: "homes",
      inputs: [
        { name: "features", datatype: "FP32", shape: [4n, 6n], contents: { fp32Contents: Array.from(x) } },
      ],
    });
    expect(typed.modelVersion).toBe("3");
    expect(typed.outputs[0]?.shape).toEqual([4n, 1n]);
    expect(typed.outputs[0]?.contents?.fp32Contents).toEqual(Array.from(expected));
    const raw = await grpc.modelInfer({
      modelName: "homes",
      modelVersion: "3",
      id: "r1",
      inputs: [{ name: "features", datatype: "FP32", shape: [4n, 6n] }],
      rawInputContents: [new Uint8Array(x.buffer)],
    });
    expect(raw.id).toBe("r1");
    const out = raw.rawOutputContents[0]!;
    expect(
      Array.from(new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength))),
    ).toEqual(Array.from(expected));
  });

  it("round-trips FP64, INT64, INT32, BOOL and FP32 over gRPC and REST", async () => {
    const res = await grpc.modelInfer({
      modelName: "dtypes",
      inputs: [
        { name: "a", datatype: "FP64", shape: [1n, 2n], contents: { fp64Contents: [1.5, -2.25] } },
        {
          name: "b",
          datatype: "INT64",
          shape: [1n, 2n],
          contents: { int64Contents: [9007199254740993n, -3n] },
        },
        { name: "c", datatype: "INT32", shape: [1n, 1n], contents: { intContents: [-7] } },
        { name: "d", datatype: "BOOL", shape: [1n, 1n], contents: { boolContents: [true] } },
        { name: "e", datatype: "FP32", shape: [1n, 1n], contents: { fp32Contents: [0.5] } },
      ],
    });
    const byName = Object.fromEntries(res.outputs.map((o) => [o.name, o]));
    expect(byName["a_out"]?.contents?.fp64Contents).toEqual([1.5, -2.25]);
    expect(byName["b_out"]?.contents?.int64Contents).toEqual([9007199254740993n, -3n]);
    expect(byName["c_out"]?.contents?.intContents).toEqual([-7]);
    expect(byName["d_out"]?.contents?.boolContents).toEqual([false]);
    expect(byName["e_out"]?.contents?.fp32Contents).toEqual([0.5]);

    const r = await post("/v2/models/dtypes/infer", {
      id: "j1",
      inputs: [
        {
          name: "a",
          datatype: "FP64",
          shape: [2, 2],
          data: [
            [1, 2],
            [3, 4],
          ],
        },
        { name: "b", datatype: "INT64", shape: [2, 2], data: [1, 2, 3, 4] },
        { name: "c", datatype: "INT32", shape: [2, 1], data: [5, 6] },
        { name: "d", datatype: "BOOL", shape: [2, 1], data: [true, false] },
        { name: "e", datatype: "FP32", shape: [2, 1], data: [0.25, null] },
      ],
      outputs: [{ name: "d_out" }, { name: "b_out" }, { name: "e_out" }],
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ model_name: "dtypes", model_version: "1", id: "j1" });
    const outs = Object.fromEntries(
      (r.body["outputs"] as { name: string; data: unknown[] }[]).map((o) => [o.name, o.data]),
    );
    expect(Object.keys(outs).sort()).toEqual(["b_out", "d_out", "e_out"]);
    expect(outs["d_out"]).toEqual([false, true]);
    expect(outs["b_out"]).toEqual([1, 2, 3, 4]);
    expect(outs["e_out"]).toEqual([0.25, null]);
  });

  it("answers bad requests with 400 / INVALID_ARGUMENT and unknown models with 404 / NOT_FOUND, naming the tensor", async () => {
    const wrongType = await post("/v2/models/homes/infer", {
      inputs: [{ name: "features", datatype: "INT64", shape: [1, 6], data: [1, 2, 3, 4, 5, 6] }],
    });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body["error"]).toContain('input tensor "features": expected datatype FP32, got INT64');
    const wrongCount = await post("/v2/models/homes/infer", {
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 6], data: [1, 2, 3] }],
    });
    expect(wrongCount.status).toBe(400);
    expect(wrongCount.body["error"]).toContain('"features"');
    const wrongShape = await post("/v2/models/homes/infer", {
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 5], data: [1, 2, 3, 4, 5] }],
    });
    expect(wrongShape.status).toBe(400);
    expect(wrongShape.body).toMatchObject({
      code: "INVALID_ARGUMENT",
      details: [{ field: "inputs[0].shape" }],
    });
    const schema = await post("/v2/models/homes/infer", { inputs: [{ name: "features", shape: [-1] }] });
    expect(schema.status).toBe(400);
    expect(schema.body["code"]).toBe("INVALID_ARGUMENT");
    const garbage = await fetch(`${rest}/v2/models/homes/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(garbage.status).toBe(400);
    expect(
      (
        await post("/v2/models/nope/infer", {
          inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [1] }],
        })
      ).status,
    ).toBe(404);
    const badVersion = await post("/v2/models/homes/versions/9/infer", {
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 6], data: [1, 2, 3, 4, 5, 6] }],
    });
    expect(badVersion.status).toBe(404);
    expect(badVersion.body["error"]).toContain('version "9"');

    const grpcErr = await grpc
      .modelInfer({
        modelName: "homes",
        inputs: [{ name: "features", datatype: "FP32", shape: [2n, 6n], contents: { fp32Contents: [1] } }],
      })
      .catch((e: unknown) => e);
    expect(grpcErr).toBeInstanceOf(ValoraError);
    expect((grpcErr as ValoraError).code).toBe("INVALID_ARGUMENT");
    expect((grpcErr as ValoraError).message).toContain('"features"');
    const notFound = await grpc.modelMetadata({ name: "ghost" }).catch((e: unknown) => e);
    expect((notFound as ValoraError).code).toBe("NOT_FOUND");
    const both = await grpc
      .modelInfer({
        modelName: "homes",
        inputs: [
          {
            name: "features",
            datatype: "FP32",
            shape: [1n, 6n],
            contents: { fp32Contents: [1, 2, 3, 4, 5, 6] },
          },
        ],
        rawInputContents: [new Uint8Array(24)],
      })
      .catch((e: unknown) => e);
    expect((both as ValoraError).code).toBe("INVALID_ARGUMENT");
  });

  /** `count` rows of the homes model's 6 features, a `nanShare` of values missing. */
  const randomRows = (seed: number, count: number, nanShare: number): number[][] => {
    const rnd = seededRandom(seed);
    return Array.from({ length: count }, () =>
      Array.from({ length: 6 }, () => (rnd() < nanShare ? Number.NaN : rnd() * 10)),
    );
  };
  /** The homes model's outputs for rows, from ModelInfer over gRPC with raw float32 bytes. */
  const inferRaw = async (rows: number[][]): Promise<Float32Array> => {
    const flat = Float32Array.from(rows.flat());
    const raw = (
      await grpc.modelInfer({
        modelName: "homes",
        inputs: [{ name: "features", datatype: "FP32", shape: [BigInt(rows.length), 6n] }],
        rawInputContents: [new Uint8Array(flat.buffer)],
      })
    ).rawOutputContents[0]!;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  };

  it("explains with exact TreeSHAP: base value plus contributions equals the served output to 1e-4", async () => {
    const rows = randomRows(99, 50, 0.05);
    const outputs = await inferRaw(rows);
    const res = await explainer.explain({ modelName: "homes", rows: rows.map((values) => ({ values })) });
    expect(res.explanations).toHaveLength(50);
    res.explanations.forEach((e, i) => {
      const total = e.baseValue + e.contributions.reduce((s, c) => s + c.contribution, 0);
      expect(Math.abs(total - outputs[i]!)).toBeLessThan(1e-4);
      expect(e.method).toBe("tree_shap");
      expect(e.contributions.map((c) => c.feature).sort()).toEqual([...FEATURES].sort());
    });
    const top = await post("/v2/models/homes/explain", {
      rows: [rows[0]!.map((v) => (Number.isNaN(v) ? null : v))],
      top_k: 2,
    });
    expect(top.status).toBe(200);
    const e0 = (top.body["explanations"] as { contributions: { contribution: number }[] }[])[0]!;
    expect(e0.contributions).toHaveLength(2);
    expect(Math.abs(e0.contributions[0]!.contribution)).toBeGreaterThanOrEqual(
      Math.abs(e0.contributions[1]!.contribution),
    );
  });

  it("answers predictions and packed contributions in one call: the same as ModelInfer and the named explanation", async () => {
    const rows = randomRows(7, 5, 0.1);
    const flat = Float32Array.from(rows.flat());
    const inferred = await inferRaw(rows);
    // The rows as a pipeline sends them: float32 values.
    const sent = rows.map((_, r) => ({ values: Array.from(flat.subarray(r * 6, (r + 1) * 6)) }));
    const inferences = async () =>
      Number(
        /valora_model_requests_total\{model="homes",version="3",protocol="grpc",kind="infer",code="OK",service="model-server"\} (\d+)/.exec(
          await (await fetch(`${rest}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    const counted = await inferences();
    const both = await explainer.explain({ modelName: "homes", rows: sent, predict: true, dense: true });
    // The prediction is an inference, as a canary's analysis counts them.
    expect((await inferences()) - counted).toBe(1);
    expect(both.predictions).toEqual(Array.from(inferred));
    expect(both.contributionsDense).toHaveLength(5 * 6);
    const named = await explainer.explain({ modelName: "homes", rows: sent });
    named.explanations.forEach((e, r) => {
      expect(both.explanations[r]!.contributions).toEqual([]);
      expect(both.explanations[r]!.output).toBe(e.output);
      for (const c of e.contributions)
        expect(both.contributionsDense[r * 6 + FEATURES.indexOf(c.feature)]).toBe(c.contribution);
    });
    // A model that cannot be explained still answers the predictions asked for.
    const linear = await explainer.explain({
      modelName: "linear",
      rows: [{ values: [1, 1, 1] }],
      predict: true,
    });
    expect(linear.predictions).toEqual([6]);
    expect(linear.explanations).toEqual([]);
  });

  it("hands out the model's own metadata (feature names) for pipelines, and NOT_FOUND for unknown models", async () => {
    const info = await explainer.getModelInfo({ modelName: "homes" });
    expect(JSON.parse(info.metadata["valora.features"]!)).toEqual(FEATURES);
    expect(info.modelVersion).toBeTruthy();
    await expect(explainer.getModelInfo({ modelName: "ghost" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("explains a scikit-learn-style export with uniform covers, and refuses non-tree models with UNIMPLEMENTED", async () => {
    const sk = await explainer.explain({ modelName: "sk", rows: [{ values: [1, 2, 3] }] });
    expect(sk.explanations[0]?.method).toBe("tree_shap_uniform_cover");
    const served = await grpc.modelInfer({
      modelName: "sk",
      inputs: [
        { name: "float_input", datatype: "FP32", shape: [1n, 3n], contents: { fp32Contents: [1, 2, 3] } },
      ],
    });
    const e = sk.explanations[0]!;
    expect(e.baseValue + e.contributions.reduce((s, c) => s + c.contribution, 0)).toBeCloseTo(
      served.outputs[0]!.contents!.fp32Contents[0]!,
      4,
    );
    const linear = await explainer
      .explain({ modelName: "linear", rows: [{ values: [1, 2, 3] }] })
      .catch((err: unknown) => err);
    expect((linear as ValoraError).code).toBe("UNIMPLEMENTED");
    expect((await post("/v2/models/linear/explain", { rows: [[1, 2, 3]] })).status).toBe(501);
    const lin = await post("/v2/models/linear/infer", {
      inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 1, 1] }],
    });
    expect((lin.body["outputs"] as { data: number[] }[])[0]!.data).toEqual([6]);
  });

  it("coalesces concurrent one-row requests into batches, each answer matching onnxruntime", async () => {
    const rnd = seededRandom(5);
    const rows = Array.from({ length: 64 }, () => Array.from({ length: 6 }, () => rnd() * 10));
    const expected = (
      await reference.run({ features: new ort.Tensor("float32", Float32Array.from(rows.flat()), [64, 6]) })
    )["value"]!.data as Float32Array;
    const before = await batchRuns();
    const answers = await Promise.all(
      rows.map((r) =>
        grpc.modelInfer({
          modelName: "homes",
          inputs: [{ name: "features", datatype: "FP32", shape: [1n, 6n], contents: { fp32Contents: r } }],
        }),
      ),
    );
    // onnxruntime sums trees in a different order for batches of different sizes: equal to float32 rounding.
    answers.forEach((a, i) => expect(a.outputs[0]!.contents!.fp32Contents[0]).toBeCloseTo(expected[i]!, 5));
    const runs = (await batchRuns()) - before;
    expect(runs).toBeLessThan(64);
    const metrics = await (await fetch(`${rest}/metrics`)).text();
    expect(metrics).toMatch(
      /valora_model_requests_total\{model="homes",version="3",protocol="grpc",kind="infer",code="OK",service="model-server"\} \d+/,
    );
    expect(metrics).toMatch(
      /valora_model_requests_total\{model="homes",version="3",protocol="rest",kind="infer",code="INVALID_ARGUMENT"/,
    );
    expect(metrics).toMatch(
      /valora_model_queue_seconds_bucket\{le="0.001",service="model-server",model="homes",version="3"\} \d+/,
    );
    // Names of models that are not served never become label values (no cardinality blow-up).
    expect(metrics).not.toContain('model="nope"');
    expect(metrics).toMatch(
      /valora_model_requests_total\{model="_unknown_",version="",protocol="rest",kind="infer",code="NOT_FOUND"/,
    );
    expect(metrics).toContain('valora_model_ready{model="homes",version="3",service="model-server"} 1');
  });

  async function batchRuns(): Promise<number> {
    const text = await (await fetch(`${rest}/metrics`)).text();
    const m = /valora_model_batch_rows_count\{model="homes",version="3",service="model-server"\} (\d+)/.exec(
      text,
    );
    return Number(m?.[1] ?? 0);
  }
});
