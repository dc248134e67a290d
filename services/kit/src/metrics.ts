import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { trace, TraceFlags, type Span } from "@opentelemetry/api";
import { spanExport } from "./tracing.js";

export { Registry, Counter, Histogram, Gauge };

export interface MetricsOptions {
  service: string;
  /** Process metrics (CPU, memory, event loop lag); on by default. */
  collectDefault?: boolean;
  /**
   * OpenMetrics text (what Prometheus asks for first) instead of the Prometheus text format: needed
   * for exemplars, so on when the process exports traces.
   */
  openMetrics?: boolean;
}

/** One registry per service instance, passed to every component that records metrics. */
export function createRegistry(options: MetricsOptions): Registry {
  const registry = new Registry();
  if (options.openMetrics) registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
  registry.setDefaultLabels({ service: options.service });
  if (options.collectDefault ?? true) collectDefaultMetrics({ register: registry });
  // Trace export is process-wide (one tracer provider): these read its counts when scraped.
  new Counter({
    name: "valora_otel_spans_dropped_total",
    help: "Spans not exported: the export queue was full or the collector slow, down or refusing.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(spanExport.dropped);
    },
  });
  new Counter({
    name: "valora_otel_spans_exported_total",
    help: "Spans the OTLP collector accepted.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(spanExport.exported);
    },
  });
  return registry;
}

/** Latency buckets in seconds tuned for sub-millisecond to multi-second RPCs. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

// Components that share a registry (two gRPC servers, a server and a client) must share one
// metric object per name: prom-client refuses to register a name twice.
export function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

export function histogram<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  buckets: number[] = LATENCY_BUCKETS,
  o: { exemplars?: boolean } = {},
): Histogram<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Histogram<L>;
  // Exemplars exist only in OpenMetrics text; observe such a histogram with observeWithTrace.
  const enableExemplars =
    (o.exemplars ?? false) && (registry.contentType as string) === Registry.OPENMETRICS_CONTENT_TYPE;
  return new Histogram({ name, help, labelNames, buckets, registers: [registry], enableExemplars });
}

/** Whether a histogram keeps exemplars (made with `exemplars: true` in an OpenMetrics registry). */
export const exemplarsOn = (h: Histogram<string>): boolean =>
  (h as unknown as { enableExemplars?: boolean }).enableExemplars === true;

/**
 * Observes a latency and, when the histogram keeps exemplars and the span (the active one by
 * default) is sampled, makes this observation its bucket's exemplar: `trace_id` and `span_id`, so
 * a dashboard jumps from a slow bucket to its trace.
 */
export function observeWithTrace<L extends string>(
  h: Histogram<L>,
  labels: Partial<Record<L, string | number>>,
  value: number,
  span: Span | undefined = trace.getActiveSpan(),
): void {
  if (!exemplarsOn(h)) {
    h.observe(labels, value);
    return;
  }
  const sc = span?.spanContext();
  const sampled = sc !== undefined && (sc.traceFlags & TraceFlags.SAMPLED) !== 0;
  h.observe({
    labels,
    value,
    exemplarLabels: (sampled ? { trace_id: sc.traceId, span_id: sc.spanId } : {}) as Partial<
      Record<L, string>
    >,
  });
}

export function gauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Gauge<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames, registers: [registry] });
}
