import { counter, histogram, type Registry } from "@valora/kit";

/** The pipeline's own metrics: shadow comparison (what canary analysis and dashboards read) and fallbacks. */
export function pipelineMetrics(registry: Registry) {
  return {
    shadowDelta: histogram(
      registry,
      "valora_shadow_delta_percent",
      "Absolute % difference between a shadow version's value and the served value, per request.",
      ["model", "version"],
      [0.5, 1, 2, 5, 10, 20, 50, 100],
    ),
    shadowErrors: counter(
      registry,
      "valora_shadow_errors_total",
      "Shadow calls that failed (never seen by clients).",
      ["model", "version"],
    ),
    fallbacks: counter(
      registry,
      "valora_valuation_fallbacks_total",
      "Valuations answered by the comparables-only fallback.",
      ["asset_class", "reason"],
    ),
  };
}
