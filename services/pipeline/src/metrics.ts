import {
  PAIRED_ABS_DELTA_BUCKETS,
  PAIRED_DELTA_BUCKETS,
  counter,
  histogram,
  type Registry,
} from "@valora/kit";

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
    // The same asset valued by candidate and champion (canary sample or shadow): what the operator's
    // canary analysis judges a candidate on (bias, |delta| median and p90, at 0.1 pp resolution).
    pairedDelta: histogram(
      registry,
      "valora_paired_delta_percent",
      "(candidate − champion) / champion in %, for assets valued by both versions.",
      ["model", "version", "champion"],
      PAIRED_DELTA_BUCKETS,
    ),
    pairedAbsDelta: histogram(
      registry,
      "valora_paired_abs_delta_percent",
      "|candidate − champion| / champion in %, for assets valued by both versions.",
      ["model", "version", "champion"],
      PAIRED_ABS_DELTA_BUCKETS,
    ),
    pairedErrors: counter(
      registry,
      "valora_paired_errors_total",
      "Paired calls to the other version that failed (never seen by clients).",
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
