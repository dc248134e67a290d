import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "@valora/kit/testing";
import { CAR, HOUSE } from "../../../e2e/support.js";
import { bin, stop, up, type Banner } from "./support/platform.js";

/**
 * Issue 26: one trace per valuation across every service. `valora up` exports to an OpenTelemetry
 * collector on loopback (OTLP/HTTP protobuf, decoded from the wire here); the pipeline and model
 * server pods get their OTEL_* settings from the operator, as in a cluster.
 */
describe.skipIf(!existsSync(bin))("traces of valuations exported over OTLP (valora up)", () => {
  const dir = mkdtempSync(join(tmpdir(), "valora-tracing-"));
  let receiver: OtlpReceiver;
  let child: ChildProcess;
  let banner: Banner;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    ({ child, banner } = await up(dir, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpEndpoint,
      OTEL_EXPORTER_OTLP_HEADERS: "x-collector-token=s3cret",
      OTEL_BSP_SCHEDULE_DELAY: "200",
      OTEL_SERVICE_NAME: undefined,
      OTEL_TRACES_SAMPLER: undefined,
    }));
  }, 120_000);
  afterAll(async () => {
    if (child) await stop(child);
    await receiver?.close();
  });

  const value = (headers: Record<string, string> = {}) =>
    fetch(`${banner.rest}/v1/valuations`, {
      method: "POST",
      headers: { authorization: `Bearer ${banner.apiKey}`, "content-type": "application/json", ...headers },
      body: JSON.stringify({ assetClass: "real-estate", attributes: HOUSE, skipCache: true }),
    });

  /** Every span of the trace, once spans from the gateway, the pipeline and the model server are in. */
  const traceOf = async (traceId: string): Promise<ReceivedSpan[]> => {
    const inTrace = (s: ReceivedSpan) => s.traceId === traceId;
    await receiver.waitFor(1, (s) => inTrace(s) && s.name === "explanation", 20_000);
    await receiver.waitFor(1, (s) => inTrace(s) && s.kind === 2 && s.name.startsWith("POST "), 20_000);
    return receiver.spans.filter(inTrace);
  };

  it("one REST valuation is one trace: gateway, orchestrator, pipeline and model server spans, parented", async () => {
    const res = await value();
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id")!;
    const [root] = await receiver.waitFor(1, (s) => s.attributes["valora.request_id"] === requestId, 20_000);
    const spans = await traceOf(root!.traceId);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const named = (name: string) => spans.filter((s) => s.name === name);
    const one = (name: string) => {
      const found = named(name);
      expect(found, `${name} in ${spans.map((s) => s.name).join(", ")}`).toHaveLength(1);
      return found[0]!;
    };

    // The gateway's server span is the root (no traceparent was sent), with HTTP semantic conventions.
    expect(root).toMatchObject({
      name: "POST /v1/valuations",
      kind: 2,
      parentSpanId: "",
      service: "valora",
      attributes: expect.objectContaining({
        "http.request.method": "POST",
        "http.route": "/v1/valuations",
        "url.path": "/v1/valuations",
        "http.response.status_code": 200,
      }),
    });
    // Every other span hangs from a span of the same trace: one tree, nothing orphaned.
    for (const s of spans.filter((x) => x !== root))
      expect(byId.has(s.parentSpanId), `${s.service} ${s.name} has its parent in the trace`).toBe(true);
    const childOf = (s: ReceivedSpan, parent: ReceivedSpan) => expect(s.parentSpanId).toBe(parent.spanId);
    for (const name of ["auth", "rate_limit", "quota"]) childOf(one(name), root!);

    // The orchestrator, in the platform process: a client span and its server span, as over gRPC.
    const orchestrator = spans.find((s) => s.kind === 2 && s.name === "valora.v1.ValuationService/Value")!;
    expect(orchestrator.attributes).toMatchObject({
      "valora.cache.result": "skipped",
      "valora.asset_class": "real-estate",
    });
    expect(byId.get(orchestrator.parentSpanId)).toMatchObject({ kind: 3, name: orchestrator.name });
    // Alone, the valuation led its own pipeline call: no wait for one, and the call is in this trace.
    const queue = one("pipeline.queue");
    childOf(queue, orchestrator);
    expect(queue.attributes).toMatchObject({
      "valora.pipeline.call.requests": 1,
      "valora.pipeline.call.items": 1,
      "valora.pipeline.call.leader": true,
    });

    // The pipeline pod: its server span, comparables, the routing decision, the model call.
    const pipelineServer = spans.find((s) => s.kind === 2 && s.service.startsWith("pipeline-"))!;
    expect(pipelineServer, "a pipeline server span").toBeDefined();
    expect(pipelineServer.resource).toMatchObject({
      "k8s.namespace.name": expect.any(String),
      "k8s.pod.name": expect.stringMatching(/^pipeline-real-estate-/),
      "k8s.deployment.name": pipelineServer.service,
    });
    const comparables = one("comparables");
    expect(comparables.service).toBe(pipelineServer.service);
    expect(comparables.attributes["valora.comparables.found"]).toBeGreaterThan(0);
    expect(one("route").attributes).toMatchObject({
      "valora.route": "champion",
      "valora.model.version": "ames-v1",
    });
    const model = one("model");
    expect(model.attributes).toMatchObject({ "valora.model.version": "ames-v1", "valora.explain": true });

    // The model server pod: inference (with its batch) and the explanation, under the pipeline's calls.
    const inference = one("inference");
    expect(inference.service).not.toBe(pipelineServer.service);
    expect(inference.resource["k8s.deployment.name"]).toBe(inference.service);
    expect(inference.attributes).toMatchObject({ "valora.batch.rows": expect.any(Number), "valora.rows": 1 });
    const explanation = one("explanation");
    for (const s of [inference, explanation]) {
      const server = byId.get(s.parentSpanId)!;
      expect(server.kind).toBe(2);
      const client = byId.get(server.parentSpanId)!;
      expect(client).toMatchObject({ kind: 3, service: pipelineServer.service });
      expect(byId.get(client.parentSpanId)).toBe(model);
    }
    // The collector's headers reached the pods through their Secret: every service exported.
    expect(new Set(spans.map((s) => s.service)).size).toBeGreaterThanOrEqual(3);
    expect(receiver.requests.protobuf).toBeGreaterThan(0);
  }, 60_000);

  it("puts trace ids on the latency histograms' buckets (OpenMetrics exemplars)", async () => {
    const res = await fetch(`${banner.rest}/metrics`, {
      headers: { accept: "application/openmetrics-text; version=1.0.0" },
    });
    expect(res.headers.get("content-type")).toMatch(/^application\/openmetrics-text/);
    const text = await res.text();
    expect(text.trimEnd().endsWith("# EOF")).toBe(true);
    // A bucket of the valuations route, then its exemplar: ` # {trace_id="…",span_id="…"} value timestamp`.
    const bucket = String.raw`^http_server_request_duration_seconds_bucket\{[^}]*route="\/v1\/valuations"[^}]*\} \d+`;
    const exemplar = String.raw` # \{trace_id="([0-9a-f]{32})",span_id="([0-9a-f]{16})"\} [\d.e-]+ [\d.]+$`;
    const exemplars = [...text.matchAll(new RegExp(bucket + exemplar, "gm"))];
    expect(exemplars.length).toBeGreaterThan(0);
    // Each names a request's server span the collector received: a panel's click lands on a real trace.
    for (const [, traceId, spanId] of exemplars)
      expect(receiver.spans.some((s) => s.traceId === traceId && s.spanId === spanId && s.kind === 2)).toBe(
        true,
      );
  });

  it("continues a caller's trace, and exports nothing of a trace its caller did not sample", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const sampled = await value({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    expect(sampled.status).toBe(200);
    const spans = await traceOf(traceId);
    expect(spans.find((s) => s.name === "POST /v1/valuations")!.parentSpanId).toBe("00f067aa0ba902b7");

    const unsampled = "0af7651916cd43dd8448eb211c80319c";
    const res = await value({ traceparent: `00-${unsampled}-b7ad6b7169203331-00` });
    expect(res.status).toBe(200);
    // A sampled valuation after it: once its spans are in, the unsampled one's would have been too.
    const after = await value();
    const id = after.headers.get("x-request-id")!;
    const [root] = await receiver.waitFor(1, (s) => s.attributes["valora.request_id"] === id, 20_000);
    await traceOf(root!.traceId);
    expect(receiver.spans.filter((s) => s.traceId === unsampled)).toEqual([]);
  }, 60_000);

  it("a bulk job: a trace per chunk, linked to the request that submitted the job", async () => {
    const header = Object.keys(CAR).join(",");
    const rows = Array.from({ length: 150 }, (_, i) =>
      Object.values({ ...CAR, mileage: 5000 + i * 100 }).join(","),
    );
    const res = await fetch(`${banner.rest}/v1/jobs?assetClass=autos`, {
      method: "POST",
      headers: { authorization: `Bearer ${banner.apiKey}`, "content-type": "text/csv" },
      body: [header, ...rows].join("\n"),
    });
    expect(res.status).toBe(202);
    const requestId = res.headers.get("x-request-id")!;
    const [submit] = await receiver.waitFor(
      1,
      (s) => s.attributes["valora.request_id"] === requestId,
      20_000,
    );
    expect(submit!.name).toBe("POST /v1/jobs");
    const job = ((await res.json()) as { data: { id: string } }).data.id;
    // 150 rows in chunks of 100: two chunk spans, each the root of its own trace, linked to the submission.
    const chunks = await receiver.waitFor(
      2,
      (s) => s.name === "job.chunk" && s.attributes["valora.job_id"] === job,
      30_000,
    );
    for (const c of chunks) {
      expect(c.parentSpanId).toBe("");
      expect(c.traceId).not.toBe(submit!.traceId);
      expect(c.links.map((l) => l.traceId)).toEqual([submit!.traceId]);
    }
    expect(chunks.map((c) => c.attributes["valora.rows"]).sort()).toEqual([100, 50]);
    // The chunk's valuations are its children, down to the model server.
    const chunk = chunks[0]!;
    await receiver.waitFor(1, (s) => s.traceId === chunk.traceId && s.name === "inference", 20_000);
  }, 60_000);

  it("the operator: a trace per reconcile, named by the object's key", async () => {
    const reconciles = await receiver.waitFor(2, (s) => s.name === "reconcile", 20_000);
    expect(reconciles.every((r) => r.parentSpanId === "")).toBe(true);
    expect(new Set(reconciles.map((r) => r.attributes["valora.controller"]))).toEqual(
      new Set(["valuationmodel", "assetpipeline"]),
    );
    expect(reconciles.map((r) => r.attributes["k8s.object.key"])).toEqual(
      expect.arrayContaining([expect.stringMatching(/\/real-estate$/), expect.stringMatching(/\/autos$/)]),
    );
  });

  it("a collector that goes away changes no answer: spans are dropped and counted", async () => {
    const before = (await (await value()).json()) as { data: { value: number } };
    await receiver.close();
    for (let i = 0; i < 5; i++) {
      const res = await value();
      expect(res.status).toBe(200);
      const body = (await res.json()) as { data: { value: number } };
      expect(body.data.value).toBe(before.data.value);
    }
    // The batch processor exports every 200 ms here: the failed exports are counted as dropped.
    const dropped = async () => {
      const text = await (await fetch(`${banner.rest}/metrics`)).text();
      return Number(/^valora_otel_spans_dropped_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const deadline = Date.now() + 20_000;
    while ((await dropped()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(await dropped()).toBeGreaterThan(0);
  }, 60_000);
});
