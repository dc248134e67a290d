import { createServer } from "node:http";
import { describe, expect, it } from "vitest";
import { PodMetricsAnalysis, PrometheusAnalysis, histogramQuantile, snapshotOf } from "../src/index.js";

// The shape model servers expose on /metrics (see services/model-server/src/metrics.ts).
const exposition = (ok: number, failed: number, fast: number, slow: number, predictionAt: number) => `
# TYPE valora_model_requests_total counter
valora_model_requests_total{model="homes",version="v2",protocol="grpc",kind="infer",code="OK",service="model-server"} ${ok}
valora_model_requests_total{model="homes",version="v2",protocol="grpc",kind="infer",code="INTERNAL",service="model-server"} ${failed}
valora_model_requests_total{model="homes",version="v2",protocol="rest",kind="infer",code="INVALID_ARGUMENT",service="model-server"} 7
valora_model_requests_total{model="other",version="v1",protocol="grpc",kind="infer",code="INTERNAL",service="model-server"} 99
valora_model_request_seconds_bucket{le="0.005",model="homes",version="v2",protocol="grpc",kind="infer",service="model-server"} ${fast}
valora_model_request_seconds_bucket{le="0.05",model="homes",version="v2",protocol="grpc",kind="infer",service="model-server"} ${fast + slow}
valora_model_request_seconds_bucket{le="+Inf",model="homes",version="v2",protocol="grpc",kind="infer",service="model-server"} ${fast + slow}
valora_model_prediction_bucket{le="12",model="homes",version="v2",service="model-server"} 0
valora_model_prediction_bucket{le="${predictionAt}",model="homes",version="v2",service="model-server"} ${ok}
valora_model_prediction_bucket{le="+Inf",model="homes",version="v2",service="model-server"} ${ok}
`;

describe("canary analysis from the model servers' own metrics", () => {
  it("reads requests, server errors (not client errors), latency buckets and predictions of one model", () => {
    const s = snapshotOf(exposition(90, 10, 95, 5, 12.5), "homes");
    expect(s.requests).toBe(107);
    expect(s.errors).toBe(10);
    expect(histogramQuantile(s.buckets, 0.5)).toBe(0.005);
    expect(histogramQuantile(s.buckets, 0.99)).toBe(0.05);
  });

  it("compares each interval with the previous reading over HTTP", async () => {
    let candidate = exposition(100, 0, 100, 0, 12.5);
    const champion = exposition(100, 0, 100, 0, 12.5);
    const server = createServer((req, res) => res.end(req.url === "/candidate" ? candidate : champion));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const a = new PodMetricsAnalysis();
    const args = {
      namespace: "ns",
      model: "homes",
      candidate: "v2",
      champion: "v1",
      candidateUrl: `${base}/candidate`,
      championUrl: `${base}/champion`,
    };
    await a.analyse(args);
    candidate = exposition(150, 50, 110, 90, 12.5);
    const r = await a.analyse(args);
    server.close();
    expect(r).toMatchObject({ requests: 100, errors: 50 });
    expect(r!.latencyP99Ms).toBe(50);
  });
});

describe("canary analysis from the Prometheus HTTP API", () => {
  it("asks /api/v1/query for the candidate's requests, errors, p99 and both versions' median prediction", async () => {
    const queries: string[] = [];
    const server = createServer((req, res) => {
      const q = new URL(req.url ?? "/", "http://x").searchParams.get("query") ?? "";
      queries.push(q);
      const value = q.startsWith("sum(increase")
        ? q.includes("code!~")
          ? "5"
          : "200"
        : q.includes("0.99")
          ? "0.02"
          : q.includes('version="v2"')
            ? "12.6"
            : "12.0";
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          status: "success",
          data: { resultType: "vector", result: [{ metric: {}, value: [1, value] }] },
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const a = new PrometheusAnalysis(`http://127.0.0.1:${(server.address() as { port: number }).port}`, "2m");
    const r = await a.analyse({
      namespace: "ns",
      model: "homes",
      candidate: "v2",
      champion: "v1",
      candidateUrl: "",
      championUrl: "",
    });
    server.close();
    expect(r).toEqual({
      requests: 200,
      errors: 5,
      latencyP99Ms: 20,
      medianAbsDeltaPct: expect.closeTo(5, 6),
    });
    expect(queries).toContain(
      'sum(increase(valora_model_requests_total{model="homes",version="v2",namespace="ns",kind="infer"}[2m]))',
    );
  });
});
