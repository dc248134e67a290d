import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  MAX_SHAP_TABLE,
  buildEnsembleModel,
  compileTreeShap,
  compiledFor,
  packedShap,
  ensembleBaseValue,
  recursiveShapValues,
  treeShapTableSize,
  goesTrue,
  loadNativeTreeShap,
  locateTreeEnsemble,
  parseModel,
  predict,
  serializeModel,
  shapValues,
  type Tree,
  type TreeEnsemble,
} from "@valora/kit/onnx";
import { randomEnsemble, seededRandom } from "@valora/kit/testing";

/** E[f(x) | x_S] under the trees' cover distribution: the value function path-dependent SHAP explains. */
function conditionalExpectation(tree: Tree, x: number[], known: Set<number>): number {
  const visit = (id: number): number => {
    const node = tree.nodes[id]!;
    if (node.mode === "LEAF") return node.value;
    if (known.has(node.feature))
      return visit(goesTrue(node, x[node.feature]!) ? node.trueChild : node.falseChild);
    const t = tree.nodes[node.trueChild]!;
    const f = tree.nodes[node.falseChild]!;
    return (t.cover * visit(node.trueChild) + f.cover * visit(node.falseChild)) / node.cover;
  };
  return visit(0);
}

function bruteForceShapley(ensemble: TreeEnsemble, x: number[]): number[] {
  const m = ensemble.featureCount;
  const fact = (k: number): number => (k <= 1 ? 1 : k * fact(k - 1));
  const value = (s: Set<number>) =>
    ensemble.trees.reduce((acc, t) => acc + conditionalExpectation(t, x, s), 0);
  const phi = new Array<number>(m).fill(0);
  for (let i = 0; i < m; i++) {
    for (let mask = 0; mask < 1 << m; mask++) {
      if (mask & (1 << i)) continue;
      const s = new Set<number>();
      for (let j = 0; j < m; j++) if (mask & (1 << j)) s.add(j);
      const weight = (fact(s.size) * fact(m - s.size - 1)) / fact(m);
      const withI = new Set(s).add(i);
      phi[i]! += weight * (value(withI) - value(s));
    }
  }
  return phi;
}

const randomRow = (rnd: () => number, features: number, missing = 0.1) =>
  Array.from({ length: features }, () => (rnd() < missing ? Number.NaN : rnd() * 10));

describe("TreeSHAP", () => {
  it("matches brute-force Shapley values on small trees, including repeated features and missing values", () => {
    const rnd = seededRandom(7);
    for (let seed = 1; seed <= 20; seed++) {
      const ensemble = randomEnsemble(seed, { trees: 2, depth: 4, features: 4 });
      const x = randomRow(rnd, 4);
      const exact = bruteForceShapley(ensemble, x);
      // The recursive algorithm is exact in doubles; the leaf tables hold float32 entries.
      const recursive = recursiveShapValues(ensemble, x);
      const fast = shapValues(ensemble, x);
      for (let i = 0; i < 4; i++) expect(recursive.contributions[i]).toBeCloseTo(exact[i]!, 9);
      for (let i = 0; i < 4; i++) expect(fast.contributions[i]).toBeCloseTo(exact[i]!, 6);
    }
  });

  it("is additive: base value plus contributions equals the prediction", () => {
    const rnd = seededRandom(11);
    for (let seed = 100; seed < 130; seed++) {
      const ensemble = randomEnsemble(seed, { trees: 8, depth: 6, features: 7 });
      const x = randomRow(rnd, 7);
      const r = shapValues(ensemble, x);
      expect(r.output).toBeCloseTo(predict(ensemble, x), 6); // float32 leaf tables
      expect(recursiveShapValues(ensemble, x).output).toBeCloseTo(predict(ensemble, x), 9);
      expect(r.baseValue).toBeCloseTo(ensembleBaseValue(ensemble), 12);
    }
  });

  it("computes the same values from precomputed leaf tables as the recursive algorithm, deep trees and missing values included", () => {
    const rnd = seededRandom(21);
    for (let seed = 300; seed < 330; seed++) {
      const ensemble = randomEnsemble(seed, { trees: 6, depth: 7, features: 5 });
      const x = randomRow(rnd, 5).map((v, i) => (i === seed % 5 ? Number.NaN : v));
      const table = shapValues(ensemble, x).contributions;
      const recursive = recursiveShapValues(ensemble, x).contributions;
      expect(compiledFor(ensemble)).not.toBeNull();
      for (let i = 0; i < 5; i++) expect(table[i]).toBeCloseTo(recursive[i]!, 6);
    }
  });

  it("explains many packed rows leaf by leaf exactly as it explains each row alone, past one pass of rows", () => {
    const ensemble = randomEnsemble(77, { trees: 30, depth: 6, features: 7 });
    const tables = compileTreeShap(ensemble);
    expect(tables.allLeq).toBe(false); // mixed split modes take the general comparison
    const rnd = seededRandom(8);
    const rows = Array.from({ length: 150 }, () =>
      randomRow(rnd, 7).map((v) => (rnd() < 0.1 ? Number.NaN : v)),
    );
    const out = packedShap(tables, Float64Array.from(rows.flat()), rows.length);
    expect(out).toHaveLength(150 * 7);
    rows.forEach((x, r) => {
      const alone = packedShap(tables, Float64Array.from(x), 1);
      for (let j = 0; j < 7; j++) expect(out[r * 7 + j]).toBe(alone[j]);
      const recursive = recursiveShapValues(ensemble, x).contributions;
      for (let j = 0; j < 7; j++) expect(out[r * 7 + j]).toBeCloseTo(recursive[j]!, 6);
    });
  });

  it("falls back to the recursive algorithm when the leaf tables would be too large", () => {
    const ensemble = randomEnsemble(5, { trees: 2, depth: 4, features: 4 });
    expect(treeShapTableSize(ensemble)).toBeGreaterThan(0);
    const big = {
      ...ensemble,
      trees: Array.from(
        { length: Math.ceil(MAX_SHAP_TABLE / treeShapTableSize(ensemble)) * 2 + 2 },
        (_, i) => ensemble.trees[i % 2]!,
      ),
    };
    expect(treeShapTableSize(big)).toBeGreaterThan(MAX_SHAP_TABLE);
    expect(compiledFor(big)).toBeNull();
    const x = [0.1, 0.5, 0.9, 0.3];
    expect(shapValues(big, x).output).toBeCloseTo(predict(big, x), 6);
  });

  it("gives zero contribution to features the trees never split on", () => {
    const ensemble = randomEnsemble(3, { trees: 3, depth: 3, features: 3 });
    const wide: TreeEnsemble = { ...ensemble, featureCount: 5 };
    const r = shapValues(wide, [1, 2, 3, 4, 5]);
    expect(r.contributions[3]).toBe(0);
    expect(r.contributions[4]).toBe(0);
  });

  it("round-trips an ensemble through ONNX, covers included", () => {
    const ensemble = randomEnsemble(5, { trees: 4, depth: 4, features: 6 });
    const bytes = serializeModel(buildEnsembleModel(ensemble, { recordCovers: true, metadata: { a: "b" } }));
    const located = locateTreeEnsemble(parseModel(bytes));
    if (typeof located === "string") throw new Error(located);
    expect(located.inputName).toBe("features");
    expect(located.ensemble.coverSource).toBe("recorded");
    const rnd = seededRandom(1);
    for (let k = 0; k < 50; k++) {
      const x = randomRow(rnd, 6);
      expect(predict(located.ensemble, x)).toBeCloseTo(predict(ensemble, x), 6);
    }
    const noCovers = locateTreeEnsemble(parseModel(serializeModel(buildEnsembleModel(ensemble))));
    expect(typeof noCovers !== "string" && noCovers.ensemble.coverSource).toBe("uniform");
  });
});

describe("compiled TreeSHAP kernel (services/kit/native)", () => {
  const native = loadNativeTreeShap();

  it("is built wherever the build has a C compiler (CI requires it)", () => {
    if (process.env["VALORA_REQUIRE_NATIVE"] === "1")
      expect(native, "npm run build made no kernel").toBeDefined();
    expect(loadNativeTreeShap({ VALORA_TREE_SHAP: "typescript" })).toBeUndefined();
  });

  it.skipIf(!native)(
    "gives the TypeScript passes' exact bits: mixed split modes, NaNs, one row and many",
    () => {
      const ensemble = randomEnsemble(31, { trees: 40, depth: 6, features: 9 });
      const tables = compileTreeShap(ensemble);
      expect(tables.allLeq).toBe(false);
      const rnd = seededRandom(3);
      for (const count of [1, 2, 64, 150]) {
        const rows = Float64Array.from({ length: count * 9 }, () =>
          rnd() < 0.1 ? Number.NaN : rnd() * 10 - 5,
        );
        expect(packedShap(tables, rows, count, native)).toEqual(packedShap(tables, rows, count, null));
      }
    },
  );

  it.skipIf(!native)(
    "gives the shipped Ames model's contributions bit for bit, single-row and leaf-major",
    () => {
      const located = locateTreeEnsemble(
        parseModel(
          readFileSync(join(import.meta.dirname, "..", "..", "..", "models", "real-estate", "model.onnx")),
        ),
      );
      if (typeof located === "string") throw new Error(located);
      const tables = compiledFor(located.ensemble)!;
      expect(tables.allLeq).toBe(true);
      const width = tables.featureCount;
      const rnd = seededRandom(11);
      for (const count of [1, 17]) {
        const rows = Float64Array.from({ length: count * width }, () =>
          rnd() < 0.05 ? Number.NaN : Math.round(rnd() * 3000) / 10,
        );
        const compiled = packedShap(tables, rows, count, native);
        expect(compiled).toEqual(packedShap(tables, rows, count, null));
        // Additive: base + contributions = the trees' prediction, for every row.
        for (let r = 0; r < count; r++) {
          const x = Array.from(rows.subarray(r * width, (r + 1) * width));
          const sum = compiled.subarray(r * width, (r + 1) * width).reduce((s, v) => s + v, 0);
          expect(ensembleBaseValue(located.ensemble) + sum).toBeCloseTo(predict(located.ensemble, x), 4);
        }
      }
    },
  );

  it.skipIf(!native)("refuses arguments that are not its tables and arrays with a TypeError", () => {
    const tables = compileTreeShap(randomEnsemble(2, { trees: 2, depth: 3, features: 3 }));
    const k = native!;
    expect(() =>
      k.packedShap(
        { ...tables, table: new Float64Array(3) } as never,
        new Float64Array(3),
        1,
        new Float64Array(3),
      ),
    ).toThrow(TypeError);
    expect(() => k.packedShap(tables, new Float64Array(2), 1, new Float64Array(3))).toThrow(
      /hold count rows/,
    );
    expect(() => k.packedShap(tables, [1, 2, 3] as never, 1, new Float64Array(3))).toThrow(/Float64Array/);
  });
});
