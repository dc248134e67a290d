import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ExplanationSchema } from "@valora/proto/valora/v1/common_pb";
import { ValoraError } from "@valora/kit";
import { packedShap, recursiveShapValues } from "@valora/kit/onnx";
import type { LoadedModel } from "./loaded-model.js";
import type { ShapPool } from "./shap-pool.js";

export type ExplanationInit = MessageInitShape<typeof ExplanationSchema>;

/** The key a model version's TreeSHAP tables have in a ShapPool. */
export const shapKey = (model: { name: string; version: string }): string => `${model.name}@${model.version}`;

/** Every row's exact contributions, packed row after row in the model's feature order. */
export interface PackedContributions {
  width: number;
  baseValue: number;
  method: string;
  contributions: Float64Array;
}

/**
 * Exact TreeSHAP contributions of rows of a tree-ensemble model, packed: on the pool's worker
 * threads when it holds the model's tables, else here. Models without one additive tree ensemble
 * get UNIMPLEMENTED with the reason.
 */
export async function packedContributions(
  model: LoadedModel,
  rows: ArrayLike<number>[],
  pool?: ShapPool,
): Promise<PackedContributions> {
  const explainer = model.explainer;
  if (typeof explainer === "string") {
    throw new ValoraError(
      "UNIMPLEMENTED",
      `model ${model.name} cannot be explained exactly: ${explainer}; TreeSHAP needs an ai.onnx.ml TreeEnsembleRegressor`,
    );
  }
  const width = explainer.featureCount;
  const base = explainer.baseValue;
  rows.forEach((row, r) => {
    if (row.length !== width) {
      throw new ValoraError(
        "INVALID_ARGUMENT",
        `row ${r} has ${row.length} features, model ${model.name} takes ${width}`,
        { details: [{ field: `rows[${r}].values`, description: `expected ${width} values` }] },
      );
    }
  });
  const method = explainer.coverSource === "recorded" ? "tree_shap" : "tree_shap_uniform_cover";
  const key = shapKey(model);
  const packed = new Float64Array(rows.length * width);
  rows.forEach((row, r) => packed.set(row, r * width));
  if (explainer.tables) {
    const contributions = pool?.has(key)
      ? await pool.contributions(key, packed, rows.length)
      : packedShap(explainer.tables, packed, rows.length);
    return { width, baseValue: base, method, contributions };
  }
  const ensemble = explainer.ensemble;
  const contributions = new Float64Array(rows.length * width);
  rows.forEach((row, r) =>
    contributions.set(recursiveShapValues(ensemble, row, base).contributions, r * width),
  );
  return { width, baseValue: base, method, contributions };
}

/** Pure: a row's output, base value plus its contributions. */
export const outputOf = (p: PackedContributions, r: number): number =>
  p.baseValue + p.contributions.subarray(r * p.width, (r + 1) * p.width).reduce((s, v) => s + v, 0);

/**
 * Exact TreeSHAP contributions for rows, largest absolute first and cut to topK (0 = all), named
 * by the model's features.
 */
export async function explainRows(
  model: LoadedModel,
  rows: ArrayLike<number>[],
  topK: number,
  pool?: ShapPool,
): Promise<ExplanationInit[]> {
  const p = await packedContributions(model, rows, pool);
  return rows.map((row, r) => {
    const contributions = p.contributions.subarray(r * p.width, (r + 1) * p.width);
    const order = Array.from(contributions.keys()).sort(
      (a, b) => Math.abs(contributions[b]!) - Math.abs(contributions[a]!) || a - b,
    );
    const chosen = topK > 0 ? order.slice(0, topK) : order;
    return {
      baseValue: p.baseValue,
      output: outputOf(p, r),
      method: p.method,
      contributions: chosen.map((i) => ({
        feature: model.featureNames[i] ?? `f${i}`,
        value: row[i]!,
        contribution: contributions[i]!,
      })),
    };
  });
}
