import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ExplanationSchema } from "@valora/proto/valora/v1/common_pb";
import { ValoraError } from "@valora/kit";
import { ensembleBaseValue, shapValues } from "@valora/kit/onnx";
import type { LoadedModel } from "./loaded-model.js";

export type ExplanationInit = MessageInitShape<typeof ExplanationSchema>;

const baseValues = new WeakMap<LoadedModel, number>();

/**
 * Exact TreeSHAP contributions for rows of a tree-ensemble model, largest absolute first and cut
 * to topK (0 = all). Models without one additive tree ensemble get UNIMPLEMENTED with the reason.
 */
export function explainRows(model: LoadedModel, rows: ArrayLike<number>[], topK: number): ExplanationInit[] {
  const located = model.explainer;
  if (typeof located === "string") {
    throw new ValoraError("UNIMPLEMENTED", `model ${model.name} cannot be explained exactly: ${located}; TreeSHAP needs an ai.onnx.ml TreeEnsembleRegressor`);
  }
  const width = located.ensemble.featureCount;
  let base = baseValues.get(model);
  if (base === undefined) {
    base = ensembleBaseValue(located.ensemble);
    baseValues.set(model, base);
  }
  return rows.map((row, r) => {
    if (row.length !== width) {
      throw new ValoraError("INVALID_ARGUMENT", `row ${r} has ${row.length} features, model ${model.name} takes ${width}`, { details: [{ field: `rows[${r}].values`, description: `expected ${width} values` }] });
    }
    const shap = shapValues(located.ensemble, row, base);
    const order = Array.from(shap.contributions.keys()).sort((a, b) => Math.abs(shap.contributions[b]!) - Math.abs(shap.contributions[a]!) || a - b);
    const chosen = topK > 0 ? order.slice(0, topK) : order;
    return {
      baseValue: shap.baseValue,
      output: shap.output,
      method: located.ensemble.coverSource === "recorded" ? "tree_shap" : "tree_shap_uniform_cover",
      contributions: chosen.map((i) => ({ feature: model.featureNames[i] ?? `f${i}`, value: row[i]!, contribution: shap.contributions[i]! })),
    };
  });
}
