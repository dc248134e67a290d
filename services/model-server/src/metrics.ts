import { LATENCY_BUCKETS, counter, gauge, histogram, type Registry } from "@valora/kit";

export type ModelMetrics = ReturnType<typeof createModelMetrics>;

/** Per model and version: requests by protocol and status, latency, batch sizes, queue delay, readiness. */
export function createModelMetrics(registry: Registry) {
  return {
    requests: counter(
      registry,
      "valora_model_requests_total",
      "Inference and explain requests by model, version, protocol, kind and status code.",
      ["model", "version", "protocol", "kind", "code"],
    ),
    latency: histogram(
      registry,
      "valora_model_request_seconds",
      "Inference request latency inside the model server.",
      ["model", "version", "protocol", "kind"],
      LATENCY_BUCKETS,
      { exemplars: true },
    ),
    batchRows: histogram(
      registry,
      "valora_model_batch_rows",
      "Rows per onnxruntime run (after dynamic batching).",
      ["model", "version"],
      [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    ),
    batchRequests: histogram(
      registry,
      "valora_model_batch_requests",
      "Requests coalesced into one onnxruntime run.",
      ["model", "version"],
      [1, 2, 4, 8, 16, 32, 64, 128],
    ),
    queueDelay: histogram(
      registry,
      "valora_model_queue_seconds",
      "Time a request waited for its batch to start.",
      ["model", "version"],
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025],
    ),
    ready: gauge(registry, "valora_model_ready", "1 when the model version is loaded and serving.", [
      "model",
      "version",
    ]),
    predictions: histogram(
      registry,
      "valora_model_prediction",
      "First output value of each prediction row (for drift and canary comparison).",
      ["model", "version"],
      [-1e6, -1, 0, 1, 5, 8, 10, 11, 11.5, 12, 12.5, 13, 14, 1e3, 1e4, 5e4, 1e5, 2e5, 3e5, 5e5, 1e6],
    ),
  };
}
