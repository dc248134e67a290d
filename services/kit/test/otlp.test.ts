import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { BasicTracerProvider, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { BoundedBatchProcessor, otlpExportFrom, spanExport } from "../src/tracing.js";
import { startOtlpReceiver, type OtlpReceiver } from "../src/testing.js";

const dist = join(import.meta.dirname, "..", "dist", "index.js");

/**
 * A process of its own (OpenTelemetry's globals are per process) that sets tracing up from `env`
 * as every Valora service does, makes a parent span with a child and a linked span, and exits
 * through the service's shutdown (which flushes).
 */
async function traceInChild(env: Record<string, string>): Promise<void> {
  const script = `
    const kit = await import(${JSON.stringify(dist)});
    const tracing = kit.setupTracing({ service: "probe" });
    await kit.inSpan("parent", async (span) => {
      span.setAttribute("probe.number", 42);
      await kit.inSpan("child", () => new Promise((r) => setTimeout(r, 5)), { attributes: { "probe.flag": true } });
      const link = { context: span.spanContext() };
      await kit.inSpan("linked", () => undefined, { links: [link] });
    });
    await tracing.shutdown();
  `;
  await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
    cwd: join(import.meta.dirname, ".."),
    env: { PATH: process.env["PATH"] ?? "", OTEL_BSP_SCHEDULE_DELAY: "50", ...env },
  });
}

describe.skipIf(!existsSync(dist))("OTLP export configured by the standard variables", () => {
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(() => receiver.close());

  for (const [protocol, encoding] of [
    ["http/protobuf", "protobuf"],
    ["http/json", "json"],
    ["grpc", "grpc"],
  ] as const)
    it(`exports over ${protocol}: parented spans, attributes, links and the resource`, async () => {
      const service = `probe-${encoding}`;
      await traceInChild({
        OTEL_EXPORTER_OTLP_ENDPOINT: encoding === "grpc" ? receiver.grpcEndpoint : receiver.httpEndpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_SERVICE_NAME: service,
        OTEL_RESOURCE_ATTRIBUTES:
          "k8s.namespace.name=valora,k8s.pod.name=probe-0,deployment.environment=a%20test",
      });
      const spans = await receiver.waitFor(3, (s) => s.service === service);
      const [parent, child, linked] = ["parent", "child", "linked"].map((n) =>
        spans.find((s) => s.name === n)!,
      );
      expect(spans.every((s) => s.encoding === encoding)).toBe(true);
      expect(parent).toMatchObject({ parentSpanId: "", attributes: { "probe.number": 42 } });
      expect(child).toMatchObject({ parentSpanId: parent!.spanId, traceId: parent!.traceId });
      expect(child!.attributes["probe.flag"]).toBe(true);
      expect(linked!.links).toEqual([{ traceId: parent!.traceId, spanId: parent!.spanId }]);
      expect(parent!.resource).toMatchObject({
        "service.name": service,
        "service.namespace": "valora",
        "k8s.namespace.name": "valora",
        "k8s.pod.name": "probe-0",
        "deployment.environment": "a test",
        "telemetry.sdk.language": "nodejs",
      });
      expect(child!.endNanos - child!.startNanos).toBeGreaterThanOrEqual(4_000_000n);
    });

  it("samples by OTEL_TRACES_SAMPLER / _ARG: a ratio of 0 exports nothing", async () => {
    await traceInChild({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpEndpoint,
      OTEL_SERVICE_NAME: "probe-unsampled",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0",
    });
    // The same process exporting with ratio 1 afterwards proves the receiver was listening.
    await traceInChild({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpEndpoint,
      OTEL_SERVICE_NAME: "probe-sampled",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "1",
    });
    await receiver.waitFor(3, (s) => s.service === "probe-sampled");
    expect(receiver.spans.filter((s) => s.service === "probe-unsampled")).toEqual([]);
  });

  it("exports nothing without an endpoint, or when the SDK or the exporter is turned off", () => {
    expect(otlpExportFrom({})).toBeUndefined();
    expect(
      otlpExportFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }),
    ).toBeUndefined();
    expect(
      otlpExportFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" }),
    ).toBeUndefined();
    expect(otlpExportFrom({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" })).toEqual({
      protocol: "http/protobuf",
    });
    expect(
      otlpExportFrom({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc",
      }),
    ).toEqual({ protocol: "grpc" });
    expect(() =>
      otlpExportFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_EXPORTER_OTLP_PROTOCOL: "thrift" }),
    ).toThrow(/"thrift" is not one of http\/protobuf, http\/json, grpc/);
  });
});

describe("the bounded batch processor", () => {
  /** An exporter that holds every batch until released: a collector that stopped answering. */
  const stuck = () => {
    const held: { spans: ReadableSpan[]; done: (r: ExportResult) => void }[] = [];
    const exporter: SpanExporter = {
      export: (spans, done) => void held.push({ spans, done }),
      shutdown: async () => undefined,
    };
    return { exporter, held };
  };

  it("drops and counts spans beyond its queue while the collector is slow, and counts failed batches", async () => {
    const { exporter, held } = stuck();
    const processor = new BoundedBatchProcessor(exporter, 10, {
      scheduledDelayMillis: 10,
      maxExportBatchSize: 5,
    });
    const tracer = new BasicTracerProvider({ spanProcessors: [processor] }).getTracer("t");
    const dropped = spanExport.dropped;
    const exported = spanExport.exported;
    for (let i = 0; i < 25; i++) tracer.startSpan(`s${i}`).end();
    // Ten wait (queued or in an export in flight); fifteen are dropped at once, never blocking the caller.
    expect(spanExport.dropped - dropped).toBe(15);
    await new Promise((r) => setTimeout(r, 50));
    expect(held.length).toBeGreaterThan(0);
    held.shift()!.done({ code: ExportResultCode.SUCCESS });
    expect(spanExport.exported - exported).toBe(5);
    await new Promise((r) => setTimeout(r, 50));
    // The collector refuses the next batch: its spans are dropped and counted too.
    held.shift()!.done({ code: ExportResultCode.FAILED, error: new Error("503") });
    expect(spanExport.dropped - dropped).toBe(20);
    // Room again: a new span is queued, not dropped.
    tracer.startSpan("after").end();
    expect(spanExport.dropped - dropped).toBe(20);
  });
});
