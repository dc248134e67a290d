import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import {
  MAX_SHAP_TABLE,
  buildEnsembleModel,
  compileTreeShap,
  ensembleBaseValue,
  recursiveShapValues,
  serializeModel,
  treeShapTableSize,
  META,
} from "@valora/kit/onnx";
import { randomEnsemble } from "@valora/kit/testing";
import { treeExplainer } from "../src/loaded-model.js";
import { explainRows } from "../src/explain.js";
import type { LoadedModel } from "../src/loaded-model.js";
import { readModelOffThread } from "../src/model-reader.js";
import { widenExplainer } from "../src/tree-explainer.js";
import { writeFixtures } from "./fixtures.js";

const modelWith = (explainer: LoadedModel["explainer"]): LoadedModel =>
  ({ name: "m", version: "1", explainer, featureNames: ["a", "b", "c", "d", "e"] }) as unknown as LoadedModel;

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
    for (const c of explained!.contributions!)
      expect(c.contribution).toBeCloseTo(expected[["a", "b", "c", "d", "e"].indexOf(c.feature!)]!, 6);
    expect(explained!.contributions!.find((c) => c.feature === "e")!.contribution).toBe(0);
  });

  it("keeps the parsed trees for the recursive algorithm when the tables would be too large", async () => {
    const big = {
      ...ensemble,
      trees: Array.from(
        { length: Math.ceil(MAX_SHAP_TABLE / treeShapTableSize(ensemble)) * 8 + 8 },
        (_, i) => ensemble.trees[i % 8]!,
      ),
    };
    const e = treeExplainer(big, 4);
    expect(e.tables).toBeNull();
    expect(e.ensemble).toBeDefined();
    const x = [0.1, 0.5, 0.9, 0.3];
    const [explained] = await explainRows({ ...modelWith(e), featureNames: ["a", "b", "c", "d"] }, [x], 0);
    expect(explained!.output).toBeCloseTo(recursiveShapValues(big, x).output, 9);
  });
});

describe("reading a model off the event loop (readModelOffThread)", () => {
  const fx = writeFixtures();

  it("brings back the metadata and the leaf tables, on SharedArrayBuffers, equal to tables built here", async () => {
    const facts = await readModelOffThread(readFileSync(fx.trees));
    expect(JSON.parse(facts.metadata[META.features]!)).toEqual([
      "sqft",
      "beds",
      "baths",
      "year",
      "lat",
      "lon",
    ]);
    if (typeof facts.explainer === "string" || !facts.explainer.tables)
      throw new Error("expected leaf tables");
    const here = compileTreeShap(fx.ensemble);
    expect(facts.explainer.tables.table.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Array.from(facts.explainer.tables.table)).toEqual(Array.from(here.table));
    expect(Array.from(facts.explainer.tables.pathNode)).toEqual(Array.from(here.pathNode));
    expect(facts.explainer.baseValue).toBeCloseTo(ensembleBaseValue(fx.ensemble), 12);
    // Widened to a session input with more columns than the trees split on.
    const wide = widenExplainer(facts.explainer, fx.ensemble.featureCount + 2);
    expect([wide.featureCount, wide.tables?.featureCount]).toEqual([
      fx.ensemble.featureCount + 2,
      fx.ensemble.featureCount + 2,
    ]);
    expect(widenExplainer(facts.explainer, 1)).toBe(facts.explainer);
  });

  it("says why a model without trees cannot be explained, and reads very large forests here, keeping their trees", async () => {
    expect((await readModelOffThread(readFileSync(fx.linear))).explainer).toMatch(
      /TreeEnsembleRegressor|tree/i,
    );
    // Deep trees on many features: tables past the limit from a model small enough to write.
    const big = randomEnsemble(11, { trees: 24, depth: 12, features: 14 });
    expect(treeShapTableSize(big)).toBeGreaterThan(MAX_SHAP_TABLE);
    const facts = await readModelOffThread(serializeModel(buildEnsembleModel(big, { recordCovers: true })));
    if (typeof facts.explainer === "string") throw new Error(facts.explainer);
    expect(facts.explainer.tables).toBeNull();
    expect(facts.explainer.ensemble?.trees.length).toBe(big.trees.length);
    await expect(readModelOffThread(new Uint8Array([0xff, 0xff, 0xff]))).rejects.toThrow();
  });
});
