import {
  INVALID_SPAN_CONTEXT,
  SpanStatusCode,
  TraceFlags,
  context,
  type Attributes,
  type Link,
  type Span as ApiSpan,
  type SpanKind,
  propagation,
  trace,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  CompositePropagator,
  ExportResultCode,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type * as OtlpGrpc from "@opentelemetry/exporter-trace-otlp-grpc";
import type * as OtlpJson from "@opentelemetry/exporter-trace-otlp-http";
import type * as OtlpProto from "@opentelemetry/exporter-trace-otlp-proto";
import { createRequire } from "node:module";
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { Metadata } from "@grpc/grpc-js";
import type { IncomingHttpHeaders } from "node:http";

export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc";

export interface TracingOptions {
  service: string;
  /** Where finished spans go (an OTLP exporter in a cluster, an in-memory one in tests). */
  exporter?: SpanExporter;
  /** Custom processors instead of batching to `exporter`. */
  processors?: SpanProcessor[];
}

export interface Tracing {
  tracer: Tracer;
  /** Whether spans are recorded and exported at all (an endpoint or processors were given). */
  exporting: boolean;
  shutdown(): Promise<void>;
}

/**
 * Pure: the OTLP export the standard variables ask for, or undefined when none: an endpoint in
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT, unless OTEL_SDK_DISABLED=true
 * or OTEL_TRACES_EXPORTER=none. The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
 * OTEL_EXPORTER_OTLP_PROTOCOL, `http/protobuf` by default. (Headers, timeouts, the sampler and
 * the resource are read from the same variables by the SDK and the exporters themselves.)
 */
export function otlpExportFrom(
  env: Record<string, string | undefined>,
): { protocol: OtlpProtocol } | undefined {
  const set = (k: string) => (env[k] ?? "").trim();
  if (set("OTEL_SDK_DISABLED").toLowerCase() === "true") return undefined;
  if (set("OTEL_TRACES_EXPORTER").toLowerCase() === "none") return undefined;
  if (!set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_ENDPOINT")) return undefined;
  const protocol =
    set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") || set("OTEL_EXPORTER_OTLP_PROTOCOL") || "http/protobuf";
  if (protocol !== "http/protobuf" && protocol !== "http/json" && protocol !== "grpc")
    throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL "${protocol}" is not one of http/protobuf, http/json, grpc`);
  return { protocol };
}

const require = createRequire(import.meta.url);

/**
 * The OTLP trace exporter for a protocol; each reads its endpoint, headers and timeout from the
 * OTEL_* variables. Loaded only when tracing is on: the three cost ~16 MB and ~0.3 s a process.
 */
function otlpExporter(protocol: OtlpProtocol): SpanExporter {
  if (protocol === "grpc")
    return new (require("@opentelemetry/exporter-trace-otlp-grpc") as typeof OtlpGrpc).OTLPTraceExporter();
  if (protocol === "http/json")
    return new (require("@opentelemetry/exporter-trace-otlp-http") as typeof OtlpJson).OTLPTraceExporter();
  return new (require("@opentelemetry/exporter-trace-otlp-proto") as typeof OtlpProto).OTLPTraceExporter();
}

/** Spans the process could not export (queue full, collector slow, down or refusing), and spans exported. */
export const spanExport = { dropped: 0, exported: 0 };

/**
 * A batch processor that never lets export harm serving: at most `maxQueueSize` spans wait (queued
 * or in an export in flight); beyond that a finished span is dropped and counted, as is every span
 * of a batch the collector did not take. The SDK's own processor drops silently past its queue;
 * this one keeps the count (`valora_otel_spans_dropped_total`).
 */
export class BoundedBatchProcessor implements SpanProcessor {
  private pending = 0;
  private readonly inner: BatchSpanProcessor;

  constructor(
    exporter: SpanExporter,
    private readonly maxQueueSize = 2048,
    config: { scheduledDelayMillis?: number; maxExportBatchSize?: number; exportTimeoutMillis?: number } = {},
  ) {
    const counting: SpanExporter = {
      export: (spans, done) =>
        exporter.export(spans, (result) => {
          this.pending -= spans.length;
          if (result.code === ExportResultCode.SUCCESS) spanExport.exported += spans.length;
          else spanExport.dropped += spans.length;
          done(result);
        }),
      shutdown: () => exporter.shutdown(),
      ...(exporter.forceFlush ? { forceFlush: () => exporter.forceFlush!() } : {}),
    };
    this.inner = new BatchSpanProcessor(counting, { maxQueueSize, ...config });
  }

  onStart(span: Span, parent: Context): void {
    this.inner.onStart(span, parent);
  }

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.pending >= this.maxQueueSize) {
      spanExport.dropped++;
      return;
    }
    this.pending++;
    this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

const SHUTDOWN_FLUSH_MS = 2000;

let installed: { provider: BasicTracerProvider; exporting: boolean } | undefined;
let spansRecorded = false;

/** Whether this process records spans at all (false: tracing is off, and spans are skipped outright). */
export const tracingOn = (): boolean => spansRecorded;

/** The span every skipped span is when the process records none: one, not one per call. */
const NOT_RECORDED: ApiSpan = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

const spanOptions = (o: InSpanOptions) => ({
  ...(o.attributes ? { attributes: o.attributes } : {}),
  ...(o.kind !== undefined ? { kind: o.kind } : {}),
  ...(o.links ? { links: o.links } : {}),
  ...(o.root ? { root: true } : {}),
});

const toError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

const failed = (span: ApiSpan, err: unknown): void => {
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
};

/** inSpan for synchronous work (a search, a decision): the span ends when `fn` returns or throws. */
export function inSpanSync<T>(name: string, fn: (span: ApiSpan) => T, o: InSpanOptions = {}): T {
  if (!spansRecorded) return fn(NOT_RECORDED);
  const span = (o.tracer ?? trace.getTracer("valora")).startSpan(name, spanOptions(o));
  try {
    return context.with(trace.setSpan(context.active(), span), () => fn(span));
  } catch (err) {
    failed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

export interface InSpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
  links?: Link[];
  /** The tracer to use (its name is the span's instrumentation scope); the global "valora" one by default. */
  tracer?: Tracer;
  /** Start a new trace rather than a child of the active span (work that outlives a request; link it instead). */
  root?: boolean;
}

/**
 * Runs `fn` in a child span of the active one (its context active inside): an error fails the span
 * with its message and is rethrown, the span ends when `fn` settles. When the process records no
 * spans, `fn` runs alone with a shared non-recording span: no context switch, no allocation, no
 * extra promise on the hot paths that call it.
 */
export function inSpan<T>(
  name: string,
  fn: (span: ApiSpan) => Promise<T> | T,
  o: InSpanOptions = {},
): Promise<T> {
  if (!spansRecorded) {
    // As an async function would: a throw becomes a rejection.
    try {
      return Promise.resolve(fn(NOT_RECORDED));
    } catch (err) {
      return Promise.reject(toError(err));
    }
  }
  return (o.tracer ?? trace.getTracer("valora")).startActiveSpan(name, spanOptions(o), async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Installs the process-wide OpenTelemetry context manager, W3C propagators and a tracer provider.
 * With an OTLP endpoint in the standard variables (otlpExportFrom), spans are sampled by
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (parent-based always-on by default), described by
 * the resource (service.name from OTEL_SERVICE_NAME or the service, OTEL_RESOURCE_ATTRIBUTES such
 * as the chart's k8s.namespace.name, k8s.pod.name and k8s.deployment.name) and batched to the
 * collector through a BoundedBatchProcessor. Without one the provider still generates real trace
 * ids (so logs carry them and calls propagate them) but records nothing: building and ending
 * spans that go nowhere cost a few percent of a busy model server's CPU.
 * OpenTelemetry's globals are set once per process: a second call keeps the first provider.
 */
export function setupTracing(options: TracingOptions): Tracing {
  if (!installed) {
    const env = process.env;
    const otlp = options.processors || options.exporter ? undefined : otlpExportFrom(env);
    const spanProcessors =
      options.processors ??
      (options.exporter
        ? [new BatchSpanProcessor(options.exporter)]
        : otlp
          ? [
              new BoundedBatchProcessor(
                otlpExporter(otlp.protocol),
                Number(env["OTEL_BSP_MAX_QUEUE_SIZE"]) || 2048,
              ),
            ]
          : []);
    const resource = defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.service, "service.namespace": "valora" }))
      .merge(detectResources({ detectors: [envDetector] }));
    const provider = new BasicTracerProvider({
      resource,
      spanProcessors,
      ...(spanProcessors.length === 0 ? { sampler: new AlwaysOffSampler() } : {}),
    });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(
      new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    );
    trace.setGlobalTracerProvider(provider);
    installed = { provider, exporting: spanProcessors.length > 0 };
  }
  const { provider, exporting } = installed;
  spansRecorded = exporting;
  return {
    tracer: trace.getTracer(options.service),
    exporting,
    // Spans still queued go out at shutdown, but a collector that is away must not hold the exit.
    shutdown: () => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        provider.forceFlush().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS).unref())),
      ]).finally(() => clearTimeout(timer));
    },
  };
}

/** The active span's W3C `traceparent` when it is being recorded (to store with work done later), else undefined. */
export function currentTraceparent(): string | undefined {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  new W3CTraceContextPropagator().inject(context.active(), carrier, httpHeadersSetter);
  return carrier["traceparent"];
}

/** Pure: a span link to the span a stored `traceparent` names (undefined when it names none). */
export function linkTo(traceparent: string | undefined | null): Link | undefined {
  if (!traceparent) return undefined;
  const ctx = new W3CTraceContextPropagator().extract(context.active(), { traceparent }, httpHeadersGetter);
  const spanContext = trace.getSpanContext(ctx);
  return spanContext && trace.isSpanContextValid(spanContext) ? { context: spanContext } : undefined;
}

/** Reads and writes W3C trace context (`traceparent`, `tracestate`, `baggage`) in gRPC metadata. */
export const metadataGetter: TextMapGetter<Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key);
    if (values.length === 0) return undefined;
    return values.map((v) => (typeof v === "string" ? v : v.toString("utf8")));
  },
};

export const metadataSetter: TextMapSetter<Metadata> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

export const httpHeadersGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key.toLowerCase()],
};

export const httpHeadersSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

export function extractFromMetadata(md: Metadata, parent: Context = context.active()): Context {
  return propagation.extract(parent, md, metadataGetter);
}

export function injectIntoMetadata(md: Metadata, ctx: Context = context.active()): void {
  propagation.inject(ctx, md, metadataSetter);
}

export function extractFromHeaders(
  headers: IncomingHttpHeaders,
  parent: Context = context.active(),
): Context {
  return propagation.extract(parent, headers, httpHeadersGetter);
}

export function injectIntoHeaders(headers: Record<string, string>, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, httpHeadersSetter);
}
