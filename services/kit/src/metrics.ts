import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { spanExport } from "./tracing.js";

export { Registry, Counter, Histogram, Gauge };

export interface MetricsOptions {
  service: string;
  /** Process metrics (CPU, memory, event loop lag); on by default. */
  collectDefault?: boolean;
}

/** One registry per service instance, passed to every component that records metrics. */
export function createRegistry(options: MetricsOptions): Registry {
  const registry = new Registry();
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
): Histogram<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Histogram<L>;
  return new Histogram({ name, help, labelNames, buckets, registers: [registry] });
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
