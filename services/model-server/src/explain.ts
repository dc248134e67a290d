import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ExplanationSchema } from "@valora/proto/valora/v1/common_pb";
import { ValoraError } from "@valora/kit";
import { packedShap, recursiveShapValues } from "@valora/kit/onnx";
import type { LoadedModel } from "./loaded-model.js";
import type { ShapPool } from "./shap-pool.js";

export type ExplanationInit = MessageInitShape<typeof ExplanationSchema>;

/** The key a model version's TreeSHAP tables have in a ShapPool. */
export const shapKey = (model: { name: string; version: string }): string => `${model.name}@${model.version}`;

/**
 * Exact TreeSHAP contributions for rows of a tree-ensemble model, largest absolute first and cut
 * to topK (0 = all): on the pool's worker threads when it holds the model's tables, else here.
 * Models without one additive tree ensemble get UNIMPLEMENTED with the reason.
 */
export async function explainRows(
  model: LoadedModel,
  rows: ArrayLike<number>[],
  topK: number,
  pool?: ShapPool,
): Promise<ExplanationInit[]> {
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
  const key = shapKey(model);
  let contributionsOf: (r: number) => Float64Array;
  const packed = (): Float64Array => {
    const out = new Float64Array(rows.length * width);
    rows.forEach((row, r) => out.set(row, r * width));
    return out;
  };
  if (explainer.tables) {
    const out = pool?.has(key)
      ? await pool.contributions(key, packed(), rows.length)
      : packedShap(explainer.tables, packed(), rows.length);
    contributionsOf = (r) => out.subarray(r * width, (r + 1) * width);
  } else {
    const ensemble = explainer.ensemble;
    contributionsOf = (r) => recursiveShapValues(ensemble, rows[r]!, base).contributions;
  }
  return rows.map((row, r) => {
    const contributions = contributionsOf(r);
    const shap = { baseValue: base, contributions, output: base + contributions.reduce((s, v) => s + v, 0) };
    const order = Array.from(shap.contributions.keys()).sort(
      (a, b) => Math.abs(shap.contributions[b]!) - Math.abs(shap.contributions[a]!) || a - b,
    );
    const chosen = topK > 0 ? order.slice(0, topK) : order;
    return {
      baseValue: shap.baseValue,
      output: shap.output,
      method: explainer.coverSource === "recorded" ? "tree_shap" : "tree_shap_uniform_cover",
      contributions: chosen.map((i) => ({
        feature: model.featureNames[i] ?? `f${i}`,
        value: row[i]!,
        contribution: shap.contributions[i]!,
      })),
    };
  });
}
