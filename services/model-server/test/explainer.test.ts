import { describe, expect, it } from "vitest";
import { MAX_SHAP_TABLE, ensembleBaseValue, recursiveShapValues, treeShapTableSize } from "@valora/kit/onnx";
import { randomEnsemble } from "@valora/kit/testing";
import { treeExplainer } from "../src/loaded-model.js";
import { explainRows } from "../src/explain.js";
import type { LoadedModel } from "../src/loaded-model.js";

const modelWith = (explainer: LoadedModel["explainer"]): LoadedModel => ({ name: "m", version: "1", explainer, featureNames: ["a", "b", "c", "d", "e"] }) as unknown as LoadedModel;

describe("treeExplainer: what a loaded model keeps to explain itself", () => {
  const ensemble = randomEnsemble(11, { trees: 8, depth: 4, features: 4 });

  it("keeps the leaf tables and drops the parsed trees, widened to the input's columns", async () => {
    const e = treeExplainer(ensemble, 5);
    expect(e.tables).not.toBeNull();
    expect(e.ensemble).toBeUndefined();
    expect(e.featureCount).toBe(5);
    expect(e.trees).toBe(8);
    expect(e.baseValue).toBeCloseTo(ensembleBaseValue(ensemble), 12);
    const x = [0.2, 0.7, Number.NaN, 0.4, 9];
    const [explained] = await explainRows(modelWith(e), [x], 0);
    const expected = recursiveShapValues({ ...ensemble, featureCount: 5 }, x).contributions;
    for (const c of explained!.contributions!) expect(c.contribution).toBeCloseTo(expected[["a", "b", "c", "d", "e"].indexOf(c.feature!)]!, 6);
    expect(explained!.contributions!.find((c) => c.feature === "e")!.contribution).toBe(0);
  });

  it("keeps the parsed trees for the recursive algorithm when the tables would be too large", async () => {
    const big = { ...ensemble, trees: Array.from({ length: Math.ceil(MAX_SHAP_TABLE / treeShapTableSize(ensemble)) * 8 + 8 }, (_, i) => ensemble.trees[i % 8]!) };
    const e = treeExplainer(big, 4);
    expect(e.tables).toBeNull();
    expect(e.ensemble).toBeDefined();
    const x = [0.1, 0.5, 0.9, 0.3];
    const [explained] = await explainRows({ ...modelWith(e), featureNames: ["a", "b", "c", "d"] }, [x], 0);
    expect(explained!.output).toBeCloseTo(recursiveShapValues(big, x).output, 9);
  });
});
