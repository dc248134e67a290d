import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  retry,
  wrap,
  type IPolicy,
} from "cockatiel";
import { GRPCInferenceService } from "@valora/proto/inference/v2/grpc_predict_v2_pb";
import { Explainer } from "@valora/proto/valora/v1/explain_pb";
import { ValoraError, createClient, type Client, type Registry } from "@valora/kit";

export interface ExplanationOut {
  baseValue: number;
  output: number;
  method: string;
  contributions: {
    feature: string;
    value: number;
    contribution: number;
    /** The input field the feature reads, and the category sent for a categorical one (set by the pipeline). */
    field?: string;
    category?: string;
  }[];
  /** "log": the output is ln(value); "identity": the value itself (set by the pipeline, which knows the model's target). */
  outputScale?: string;
}

/** Exact contributions of one row in the model's feature order (as the model server packs them). */
export interface DenseExplanation {
  baseValue: number;
  output: number;
  method: string;
  contributions: Float64Array;
}

/** What a pipeline needs from one model version's server. */
export interface ModelClient {
  predict(rows: Float32Array, width: number, timeoutMs: number): Promise<Float32Array>;
  /**
   * Predictions and every contribution of rows packed `width` apart, in one call; explanations
   * are undefined when the model cannot be explained.
   */
  predictExplained(
    rows: Float32Array,
    width: number,
    timeoutMs: number,
  ): Promise<{ predictions: Float32Array; explanations?: DenseExplanation[] }>;
  /** Explanations of several rows in one call. */
  explainMany(rows: Float32Array[], topK: number, timeoutMs: number): Promise<ExplanationOut[]>;
  close(): void;
}

// Only failures a retry can fix: the server being away or slow. Bad input is not retried.
const transient = (err: Error): boolean =>
  err instanceof ValoraError && (err.code === "UNAVAILABLE" || err.code === "DEADLINE_EXCEEDED");

/**
 * An Open Inference Protocol + Explainer client for one endpoint, behind a retry (2 attempts,
 * exponential backoff) and a circuit breaker (opens after 5 consecutive failures, half-opens after
 * 5 s) so a dead model server fails fast instead of holding every request to its deadline.
 */
export function grpcModelClient(
  endpoint: string,
  model: string,
  version: string,
  registry?: Registry,
): ModelClient {
  const infer: Client<typeof GRPCInferenceService> = createClient(GRPCInferenceService, endpoint, {
    timeoutMs: 2000,
    ...(registry ? { registry } : {}),
  });
  const explainer: Client<typeof Explainer> = createClient(Explainer, endpoint, {
    timeoutMs: 2000,
    ...(registry ? { registry } : {}),
  });
  const policy: IPolicy = wrap(
    retry(handleWhen(transient), {
      maxAttempts: 1,
      backoff: new ExponentialBackoff({ initialDelay: 20, maxDelay: 200 }),
    }),
    circuitBreaker(handleWhen(transient), { halfOpenAfter: 5000, breaker: new ConsecutiveBreaker(5) }),
  );
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await policy.execute(fn);
    } catch (err) {
      if (err instanceof ValoraError) throw err;
      throw new ValoraError(
        "UNAVAILABLE",
        `model ${model}@${version} at ${endpoint}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  };
  return {
    predict: (rows, width, timeoutMs) =>
      run(async () => {
        const res = await infer.modelInfer(
          {
            modelName: model,
            modelVersion: version,
            inputs: [
              { name: "features", datatype: "FP32", shape: [BigInt(rows.length / width), BigInt(width)] },
            ],
            rawInputContents: [new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength)],
          },
          { timeoutMs },
        );
        const raw = res.rawOutputContents[0];
        if (!raw) throw new ValoraError("INTERNAL", `model ${model} returned no output`);
        return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      }),
    predictExplained: (rows, width, timeoutMs) =>
      run(async () => {
        const count = rows.length / width;
        const res = await explainer.explain(
          {
            modelName: model,
            modelVersion: version,
            rows: Array.from({ length: count }, (_, r) => ({
              values: Array.from(rows.subarray(r * width, (r + 1) * width)),
            })),
            predict: true,
            dense: true,
          },
          { timeoutMs },
        );
        if (res.predictions.length !== count)
          throw new ValoraError(
            "INTERNAL",
            `model ${model} returned ${res.predictions.length} predictions for ${count} rows`,
          );
        const dense = Float64Array.from(res.contributionsDense);
        const explained = res.explanations.length === count && dense.length === count * width;
        return {
          predictions: Float32Array.from(res.predictions),
          ...(explained
            ? {
                explanations: res.explanations.map((e, r) => ({
                  baseValue: e.baseValue,
                  output: e.output,
                  method: e.method,
                  contributions: dense.subarray(r * width, (r + 1) * width),
                })),
              }
            : {}),
        };
      }),
    explainMany: (rows, topK, timeoutMs) =>
      run(async () => {
        const res = await explainer.explain(
          {
            modelName: model,
            modelVersion: version,
            rows: rows.map((r) => ({ values: Array.from(r) })),
            topK,
          },
          { timeoutMs },
        );
        if (res.explanations.length !== rows.length)
          throw new ValoraError(
            "INTERNAL",
            `model ${model} returned ${res.explanations.length} explanations for ${rows.length} rows`,
          );
        return res.explanations.map((e) => ({
          baseValue: e.baseValue,
          output: e.output,
          method: e.method,
          contributions: e.contributions.map((c) => ({
            feature: c.feature,
            value: c.value,
            contribution: c.contribution,
          })),
        }));
      }),
    close: () => {
      infer.close();
      explainer.close();
    },
  };
}
