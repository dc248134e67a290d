import { createServer } from "node:http";
import { describe, expect, it } from "vitest";
import {
  Histogram,
  PAIRED_ABS_DELTA_BUCKETS,
  PAIRED_DELTA_BUCKETS,
  Registry,
  pairedDeltaPct,
} from "@valora/kit";
import {
  PodMetricsAnalysis,
  PrometheusAnalysis,
  histogramQuantile,
  interpolatedQuantile,
  pairedFigures,
  pairedSnapshotOf,
  snapshotOf,
} from "../src/index.js";

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

  it("reads the same from OpenMetrics text with exemplars (a model server that exports traces)", () => {
    // Exemplars after bucket samples, `# EOF` at the end: what the model server serves when tracing is on.
    const open = exposition(90, 10, 95, 5, 12.5)
      .split("\n")
      .map((l) =>
        l.includes("_seconds_bucket")
          ? `${l} # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 0.004 1764659000.123`
          : l,
      )
      .join("\n")
      .concat("# EOF\n");
    expect(snapshotOf(open, "homes")).toEqual(snapshotOf(exposition(90, 10, 95, 5, 12.5), "homes"));
  });

  it("compares each interval with the previous reading over HTTP, pairs from every pipeline", async () => {
    let candidate = exposition(100, 0, 100, 0, 12.5);
    const champion = exposition(100, 0, 100, 0, 12.5);
    const pipeline = new PairedRecorder();
    const server = createServer((req, res) =>
      res.end(req.url === "/candidate" ? candidate : req.url === "/pipeline" ? pipeline.text() : champion),
    );
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
      pipelineUrls: [`${base}/pipeline`, `${base}/pipeline`],
    };
    pipeline.record(40, () => 30); // an earlier interval, 30 % off: must not count in the next one
    await a.analyse(args);
    candidate = exposition(150, 50, 110, 90, 12.5);
    pipeline.record(100, (k) => 6 + (k % 5) * 0.01);
    const r = await a.analyse(args);
    server.close();
    expect(r).toMatchObject({ requests: 100, errors: 50 });
    expect(r!.latencyP99Ms).toBe(50);
    // Two pipelines, 100 pairs each in the interval, every candidate value 6.00–6.04 % above.
    expect(r!.paired!.pairs).toBe(200);
    expect(r!.paired!.biasPct).toBeGreaterThan(5.9);
    expect(r!.paired!.biasPct).toBeLessThanOrEqual(6.1);
  });
});

/** A pipeline's paired histograms, exactly as the pipeline declares them (kit buckets). */
class PairedRecorder {
  readonly registry = new Registry();
  private readonly signed = new Histogram({
    name: "valora_paired_delta_percent",
    help: "signed",
    labelNames: ["model", "version", "champion"],
    buckets: PAIRED_DELTA_BUCKETS,
    registers: [this.registry],
  });
  private readonly absolute = new Histogram({
    name: "valora_paired_abs_delta_percent",
    help: "absolute",
    labelNames: ["model", "version", "champion"],
    buckets: PAIRED_ABS_DELTA_BUCKETS,
    registers: [this.registry],
  });
  private last = "";

  /** `n` pairs whose candidate value is `deltaPct(k)` % above a champion value of 200,000. */
  record(n: number, deltaPct: (k: number) => number): void {
    for (let k = 0; k < n; k++) {
      const d = pairedDeltaPct(200_000 * (1 + deltaPct(k) / 100), 200_000);
      const labels = { model: "homes", version: "v2", champion: "v1" };
      this.signed.observe(labels, d);
      this.absolute.observe(labels, Math.abs(d));
    }
    void this.registry.metrics().then((t) => (this.last = t));
  }

  text(): string {
    return this.last;
  }
}

describe("paired comparison figures", () => {
  it("resolve a 6 % bias, a 0.3 % bias and a symmetric spread to 0.1 percentage points", async () => {
    const cases: [string, (k: number) => number, number][] = [
      ["biased 6 %", () => 6, 6],
      ["slightly biased", (k) => 0.3 + ((k % 7) - 3) * 0.01, 0.3],
      ["unbiased, ±4 %", (k) => ((k % 81) - 40) / 10, 0],
    ];
    for (const [name, delta, bias] of cases) {
      const rec = new PairedRecorder();
      rec.record(810, delta);
      const text = await rec.registry.metrics();
      const snap = pairedSnapshotOf(text, "homes", "v2", "v1");
      const f = pairedFigures(snap.signed, snap.absolute);
      expect(f.pairs, name).toBe(810);
      expect(Math.abs(f.biasPct - bias), `${name}: bias ${f.biasPct}`).toBeLessThanOrEqual(0.1);
    }
    // The spread: |delta| uniform on 0..4 % has p90 3.6 %.
    const rec = new PairedRecorder();
    rec.record(810, (k) => ((k % 81) - 40) / 10);
    const snap = pairedSnapshotOf(await rec.registry.metrics(), "homes", "v2", "v1");
    expect(pairedFigures(snap.signed, snap.absolute).absDeltaP90Pct).toBeCloseTo(3.6, 1);
  });

  it("interpolates within a bucket as Prometheus's histogram_quantile does", () => {
    const buckets = new Map([
      [1, 0],
      [2, 100],
      [Number.POSITIVE_INFINITY, 100],
    ]);
    expect(interpolatedQuantile(buckets, 0.5)).toBe(1.5);
    expect(interpolatedQuantile(new Map(), 0.5)).toBeNaN();
  });
});

describe("canary analysis from the Prometheus HTTP API", () => {
  it("gives the same figures as the pods' own metrics for the same histograms", async () => {
    const rec = new PairedRecorder();
    rec.record(300, (k) => 6 + ((k % 11) - 5) * 0.2);
    const text = await rec.registry.metrics();
    const queries: string[] = [];
    // A Prometheus double: `sum by (le) (increase(<histogram>_bucket{...}[w]))` over the same text
    // (everything was recorded inside the window), scalars for the serving metrics.
    const server = createServer((req, res) => {
      const q = new URL(req.url ?? "/", "http://x").searchParams.get("query") ?? "";
      queries.push(q);
      let result: { metric: { le?: string }; value: [number, string] }[];
      const histogram = /^sum by \(le\) \(increase\((valora_paired_\w+)_bucket\{/.exec(q)?.[1];
      if (histogram) {
        const snap = pairedSnapshotOf(text, "homes", "v2", "v1");
        const buckets = histogram === "valora_paired_delta_percent" ? snap.signed : snap.absolute;
        result = [...buckets].map(([le, n]) => ({
          metric: { le: le === Number.POSITIVE_INFINITY ? "+Inf" : String(le) },
          value: [1, String(n)],
        }));
      } else {
        const value = q.startsWith("sum(increase") ? (q.includes("code!~") ? "5" : "200") : "0.02";
        result = [{ metric: {}, value: [1, value] }];
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result } }));
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
      pipelineUrls: [],
    });
    server.close();
    const snap = pairedSnapshotOf(text, "homes", "v2", "v1");
    expect(r).toEqual({
      requests: 200,
      errors: 5,
      latencyP99Ms: 20,
      paired: pairedFigures(snap.signed, snap.absolute),
    });
    expect(r!.paired!.biasPct).toBeCloseTo(6, 0);
    expect(queries).toContain(
      'sum(increase(valora_model_requests_total{model="homes",version="v2",namespace="ns",kind="infer"}[2m]))',
    );
    expect(queries).toContain(
      'sum by (le) (increase(valora_paired_delta_percent_bucket{model="homes",version="v2",champion="v1",namespace="ns"}[2m]))',
    );
  });
});
