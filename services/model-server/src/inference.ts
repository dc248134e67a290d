import { trace } from "@opentelemetry/api";
import { ValoraError, inSpan, observeWithTrace, toValoraError } from "@valora/kit";
import { explainRows, outputOf, packedContributions, type ExplanationInit } from "./explain.js";
import type { ModelMetrics } from "./metrics.js";
import type { ModelRepository, ServedModel } from "./repository.js";
import type { ShapPool } from "./shap-pool.js";
import { decodeInputs, type RawInput, type Tensor } from "./tensors.js";

const UNKNOWN = "_unknown_";

export type Protocol = "grpc" | "rest";

export interface InferRequest {
  modelName: string;
  modelVersion: string;
  id: string;
  inputs: RawInput[];
  /** Requested outputs; all of the model's when empty. */
  outputs: string[];
}

export interface ExplainResult {
  modelName: string;
  modelVersion: string;
  explanations: ExplanationInit[];
  /** With predict: one prediction a row. */
  predictions?: Float32Array;
  /** With dense: rows × features contributions, row after row. */
  dense?: Float64Array;
}

export interface InferResult {
  modelName: string;
  modelVersion: string;
  id: string;
  outputs: Tensor[];
}

/** Transport-independent inference and explanation, with per-model metrics. */
export class InferenceService {
  constructor(
    private readonly repository: ModelRepository,
    private readonly metrics: ModelMetrics,
    private readonly shap?: ShapPool,
  ) {}

  async infer(req: InferRequest, protocol: Protocol): Promise<InferResult> {
    return this.metered(
      "infer",
      protocol,
      () => this.repository.get(req.modelName, req.modelVersion || undefined),
      async (served) => {
        const inputs = decodeInputs(req.inputs, served.model.inputs);
        const wanted = req.outputs.length > 0 ? req.outputs : served.model.outputs.map((o) => o.name);
        for (const [i, name] of wanted.entries()) {
          if (!served.model.outputs.some((o) => o.name === name)) {
            throw new ValoraError(
              "INVALID_ARGUMENT",
              `unknown output tensor "${name}"; the model produces ${served.model.outputs.map((o) => `"${o.name}"`).join(", ")}`,
              {
                details: [{ field: `outputs[${i}].name`, description: "unknown output" }],
              },
            );
          }
        }
        const outputs = await this.run(served, inputs);
        this.observePredictions(served.model.name, served.model.version, outputs[0]);
        return {
          modelName: served.model.name,
          modelVersion: served.model.version,
          id: req.id,
          outputs: outputs.filter((o) => wanted.includes(o.name)),
        };
      },
    );
  }

  /**
   * Exact explanations of rows, cut to topK (0 = all); with `predict`, the model's predictions of
   * the same rows too (run as inference runs: batched, observed for drift), so a valuation makes
   * one call; with `dense`, every contribution packed in feature order instead of named ones.
   */
  async explain(
    modelName: string,
    modelVersion: string,
    rows: ArrayLike<number>[],
    topK: number,
    protocol: Protocol,
    options: { predict?: boolean; dense?: boolean } = {},
  ): Promise<ExplainResult> {
    return this.metered(
      "explain",
      protocol,
      () => this.repository.get(modelName, modelVersion || undefined),
      async (served) => {
        if (rows.length === 0)
          throw new ValoraError("INVALID_ARGUMENT", "no rows to explain", {
            details: [{ field: "rows", description: "at least one row" }],
          });
        if (rows.length > 1000)
          throw new ValoraError(
            "INVALID_ARGUMENT",
            `${rows.length} rows is above the 1000-row explain limit`,
            {
              details: [{ field: "rows", description: "at most 1000 rows" }],
            },
          );
        if (!Number.isInteger(topK) || topK < 0)
          throw new ValoraError("INVALID_ARGUMENT", "top_k must be a non-negative integer", {
            details: [{ field: "top_k", description: "non-negative integer" }],
          });
        const model = served.model;
        const attributes = {
          "valora.model.name": model.name,
          "valora.model.version": model.version,
          "valora.rows": rows.length,
          "valora.explain.top_k": topK,
        };
        // A model that cannot be explained still answers the predictions it was asked for.
        const explains = typeof model.explainer !== "string" || !options.predict;
        const [predictions, explained] = await Promise.all([
          options.predict ? this.predictRows(served, rows, protocol) : undefined,
          explains
            ? inSpan("explanation", () => this.explanations(model, rows, topK, options.dense), { attributes })
            : { explanations: [] },
        ]);
        return {
          modelName: model.name,
          modelVersion: model.version,
          ...explained,
          ...(predictions ? { predictions } : {}),
        };
      },
    );
  }

  /** Named explanations cut to topK, or (`dense`) every contribution packed with each row's base value and output. */
  private async explanations(
    model: ServedModel["model"],
    rows: ArrayLike<number>[],
    topK: number,
    dense = false,
  ): Promise<Pick<ExplainResult, "explanations" | "dense">> {
    if (!dense) return { explanations: await explainRows(model, rows, topK, this.shap) };
    const p = await packedContributions(model, rows, this.shap);
    const explanations = rows.map((_, r) => ({
      baseValue: p.baseValue,
      output: outputOf(p, r),
      method: p.method,
    }));
    return { explanations, dense: p.contributions };
  }

  /**
   * Runs `fn` on the model `find` returns, counting the call by code and timing it under `kind`.
   * Labels name a model only once it is known to be served: client-chosen names must not create
   * time series.
   */
  private async metered<T>(
    kind: "infer" | "explain",
    protocol: Protocol,
    find: () => ServedModel,
    fn: (served: ServedModel) => Promise<T>,
  ): Promise<T> {
    const started = process.hrtime.bigint();
    let labels = { model: UNKNOWN, version: "", protocol, kind };
    try {
      const served = find();
      labels = { ...labels, model: served.model.name, version: served.model.version };
      const result = await fn(served);
      this.metrics.requests.inc({ ...labels, code: "OK" });
      return result;
    } catch (err) {
      this.metrics.requests.inc({ ...labels, code: toValoraError(err).code });
      throw err;
    } finally {
      observeWithTrace(this.metrics.latency, labels, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** Runs validated inputs through the model (batched when it can be), in an `inference` span. */
  private run(served: ServedModel, inputs: Tensor[]): Promise<Tensor[]> {
    const rows = inputs[0]?.shape[0];
    const uniformRows = inputs.every((t) => t.shape[0] === rows);
    return inSpan(
      "inference",
      (span) => {
        if (!(served.model.batchable && uniformRows)) return served.run(inputs);
        // The wait for a batch is its own span, ended when the batch starts; its size goes on both.
        const queue = span.isRecording() ? trace.getTracer("model-server").startSpan("queue") : undefined;
        return served.batcher.submit(inputs, (b) => {
          const attributes = { "valora.batch.rows": b.rows, "valora.batch.requests": b.requests };
          span.setAttributes({ ...attributes, "valora.batch.queue_ms": b.queuedSeconds * 1000 });
          queue?.setAttributes(attributes);
          queue?.end();
        });
      },
      {
        attributes: {
          "valora.model.name": served.model.name,
          "valora.model.version": served.model.version,
          "valora.rows": rows ?? 0,
        },
      },
    );
  }

  /**
   * The model's first output for rows of its one FP32 input (what ModelInfer answers), one value a
   * row. Counted and timed as an inference (`kind="infer"`): a canary's analysis judges a version
   * on its inferences, and an explained valuation's prediction is one.
   */
  private predictRows(
    served: ServedModel,
    rows: ArrayLike<number>[],
    protocol: Protocol,
  ): Promise<Float32Array> {
    return this.metered(
      "infer",
      protocol,
      () => served,
      async () => {
        const [input, ...more] = served.model.inputs;
        if (!input || more.length > 0 || input.datatype !== "FP32")
          throw new ValoraError(
            "INVALID_ARGUMENT",
            `model ${served.model.name} takes ${served.model.inputs.length} inputs; predict with explain needs one FP32 input`,
            { details: [{ field: "predict", description: "only for models with one FP32 input" }] },
          );
        const width = rows[0]!.length;
        const data = new Float32Array(rows.length * width);
        rows.forEach((row, r) => {
          if (row.length !== width)
            throw new ValoraError(
              "INVALID_ARGUMENT",
              `row ${r} has ${row.length} features, row 0 has ${width}`,
              {
                details: [{ field: `rows[${r}].values`, description: `expected ${width} values` }],
              },
            );
          data.set(row, r * width);
        });
        const inputs = decodeInputs(
          [{ name: input.name, datatype: "FP32", shape: [BigInt(rows.length), BigInt(width)], values: data }],
          served.model.inputs,
        );
        const out = (await this.run(served, inputs))[0];
        if (!out) throw new ValoraError("INTERNAL", `model ${served.model.name} returned no output`);
        this.observePredictions(served.model.name, served.model.version, out);
        const rowSize = out.shape.slice(1).reduce((a, b) => a * b, 1) || 1;
        return Float32Array.from({ length: rows.length }, (_, r) => Number(out.data[r * rowSize]));
      },
    );
  }

  private observePredictions(model: string, version: string, output: Tensor | undefined): void {
    if (!output || output.datatype === "BOOL" || output.datatype === "INT64") return;
    const rowSize = output.shape.slice(1).reduce((a, b) => a * b, 1) || 1;
    const labels = { model, version };
    for (let i = 0; i < output.data.length; i += rowSize)
      this.metrics.predictions.observe(labels, Number(output.data[i]));
  }
}
