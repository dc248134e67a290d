import {
  context,
  propagation,
  trace,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { Metadata } from "@grpc/grpc-js";
import type { IncomingHttpHeaders } from "node:http";

export interface TracingOptions {
  service: string;
  /** Where finished spans go (an OTLP exporter in a cluster, an in-memory one in tests). */
  exporter?: SpanExporter;
  /** Custom processors instead of batching to `exporter`. */
  processors?: SpanProcessor[];
}

export interface Tracing {
  tracer: Tracer;
  shutdown(): Promise<void>;
}

let installed: { provider: BasicTracerProvider } | undefined;

/**
 * Installs the process-wide OpenTelemetry context manager, W3C propagators and a tracer provider.
 * The provider always generates real trace ids (so logs carry them and calls propagate them) even
 * with no exporter; with nowhere to send spans it records none (building and ending a span that
 * goes nowhere cost a few percent of a busy model server's CPU).
 * OpenTelemetry's globals are set once per process: a second call keeps the first provider.
 */
export function setupTracing(options: TracingOptions): Tracing {
  if (!installed) {
    const spanProcessors =
      options.processors ?? (options.exporter ? [new BatchSpanProcessor(options.exporter)] : []);
    const provider = new BasicTracerProvider({
      spanProcessors,
      ...(spanProcessors.length === 0 ? { sampler: new AlwaysOffSampler() } : {}),
    });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(
      new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    );
    trace.setGlobalTracerProvider(provider);
    installed = { provider };
  }
  const provider = installed.provider;
  return {
    tracer: trace.getTracer(options.service),
    shutdown: () => provider.forceFlush(),
  };
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
