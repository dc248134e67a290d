import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { ValoraError, normaliseWithKey, seededRandom } from "@valora/kit";
import { metadataOf, parseModel } from "@valora/kit/onnx";
import {
  assetKey,
  bucketOf,
  chooseRoute,
  featureRow,
  modelSchemaFrom,
  normaliseAttributes,
  type InputField,
  type Route,
} from "../src/index.js";

const root = join(import.meta.dirname, "..", "..", "..");
const pipeline = parseAllDocuments(
  readFileSync(join(root, "manifests", "real-estate.yaml"), "utf8"),
)[1]!.toJS() as { spec: { input: { fields: InputField[] } } };
const fields = pipeline.spec.input.fields;

function violations(attrs: Record<string, unknown>): string[] {
  try {
    normaliseAttributes(fields, attrs);
  } catch (err) {
    if (err instanceof ValoraError) return err.details.map((d) => `${d.field} ${d.description}`);
    throw err;
  }
  return [];
}

// The first sale of the training data, as a client would send it (field names, not columns).
const [header, first] = readFileSync(join(root, "models", "data", "ames.csv"), "utf8")
  .split("\n")
  .slice(0, 2)
  .map((l) => l.replace(/\r$/, "").split(","));
const house: Record<string, unknown> = Object.fromEntries(
  fields.map((f) => [f.name, first![header!.indexOf(f.feature!)]]),
);

describe("input normalisation against the AssetPipeline's fields", () => {
  it("normalises types and enum spellings", () => {
    const n = normaliseAttributes(fields, { ...house, neighborhood: "north ames", gr_liv_area: "1656" });
    expect(n["neighborhood"]).toBe("North_Ames");
    expect(n["gr_liv_area"]).toBe(1656);
  });

  it("reports every bad field at once, with suggestions for typos", () => {
    const v = violations({ gr_liv_aera: 1000, latitude: 142, year_built: 1960.5, gr_liv_area: -5 });
    expect(v).toEqual(
      expect.arrayContaining([
        "attributes.gr_liv_aera unknown attribute (did you mean gr_liv_area?)",
        "attributes.latitude must be at most 90, got 142",
        "attributes.year_built must be an integer, got 1960.5",
        "attributes.gr_liv_area must be at least 0, got -5",
      ]),
    );
    expect(violations({}).some((x) => x.endsWith("is required"))).toBe(true);
  });

  it("normaliseWithKey gives the attributes and key of normaliseAttributes then assetKey, for any input", () => {
    const rnd = seededRandom(11);
    // A field list with every type, names out of order, defaults and free strings that need escaping.
    const mixed: InputField[] = [
      { name: "zeta", type: "number", required: false, feature: "Z", default: 1.5 },
      { name: "alpha", type: "string", required: false, feature: "A" },
      { name: "Mid", type: "boolean", required: false, feature: "M", default: false },
      { name: "beta", type: "integer", required: false, feature: "B" },
      {
        name: "kind",
        type: "string",
        required: false,
        feature: "K",
        enum: ["One_Story", "Two_Story"],
        default: "One_Story",
      },
    ];
    const strings = ["plain", 'quo"te', "back\\slash", "line\nbreak", "ünïcödé", "\u2028", " padded "];
    const numbers = [0, -0, 0.1, 1e21, -3.25e-7, 42, 1960];
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    for (let i = 0; i < 300; i++) {
      const attrs: Record<string, unknown> = {};
      if (rnd() < 0.7) attrs["zeta"] = pick(numbers);
      if (rnd() < 0.7) attrs["alpha"] = pick(strings);
      if (rnd() < 0.7) attrs["Mid"] = pick([true, false, "true", 0]);
      if (rnd() < 0.7) attrs["beta"] = pick([0, 7, 1960, "12"]);
      if (rnd() < 0.7) attrs["kind"] = pick(["one story", "Two_Story", "TWO-STORY"]);
      const assetId = rnd() < 0.1 ? `asset-${i}` : undefined;
      const one = normaliseWithKey(mixed, attrs, assetId);
      const attributes = normaliseAttributes(mixed, attrs);
      expect(one.attributes()).toEqual(attributes);
      expect(one.key).toBe(assetKey(attributes, assetId));
    }
    const realEstate = normaliseWithKey(fields, house);
    expect(realEstate.key).toBe(assetKey(normaliseAttributes(fields, house)));
    expect(() => normaliseWithKey(fields, { ...house, gr_liv_aera: 1 })).toThrow(
      /gr_liv_aera unknown attribute/,
    );
  });
});

describe("feature mapping from the model's own metadata", () => {
  it("builds the row in the model's feature order with training codes, the declared default or NaN for what is missing", () => {
    const meta = metadataOf(parseModel(readFileSync(join(root, "models", "real-estate", "model.onnx"))));
    const schema = modelSchemaFrom(meta, 0);
    expect(schema.targetTransform).toBe("log");
    const { pool_qc: _pool, ...withoutPool } = house;
    const row = featureRow(schema, fields, normaliseAttributes(fields, withoutPool));
    expect(row.length).toBe(schema.features.length);
    expect(row[schema.features.indexOf("Gr_Liv_Area")]).toBe(1656);
    expect(row[schema.features.indexOf("Neighborhood")]).toBe(
      schema.encodings["Neighborhood"]!["North_Ames"],
    );
    const pool = fields.find((f) => f.name === "pool_qc")!;
    expect(pool.default).toBe("No_Pool");
    expect(row[schema.features.indexOf("Pool_QC")]).toBe(schema.encodings["Pool_QC"]!["No_Pool"]);
    const noDefaults = fields.map(({ default: _d, ...f }) => f);
    const bare = featureRow(schema, noDefaults, normaliseAttributes(noDefaults, withoutPool));
    expect(Number.isNaN(bare[schema.features.indexOf("Pool_QC")]!)).toBe(true);
  });
});

describe("sticky routing", () => {
  const routes: Route[] = [
    { version: "v1", role: "champion", endpoint: "a", weight: 80 },
    { version: "v2", role: "canary", endpoint: "b", weight: 20 },
    { version: "v3", role: "shadow", endpoint: "c", weight: 0 },
  ];
  it("sends the same asset the same way every time and honours weights within tolerance", () => {
    const key = assetKey({ a: 1, b: "x" });
    expect(assetKey({ b: "x", a: 1 })).toBe(key);
    expect(chooseRoute(routes, key).serve).toEqual(chooseRoute(routes, key).serve);
    let canary = 0;
    for (let i = 0; i < 10_000; i++)
      if (chooseRoute(routes, assetKey({ i })).serve.role === "canary") canary++;
    expect(canary / 10_000).toBeGreaterThan(0.18);
    expect(canary / 10_000).toBeLessThan(0.22);
    expect(chooseRoute(routes, key).shadows.map((r) => r.version)).toEqual(["v3"]);
    expect(bucketOf("x")).toBeLessThan(10_000);
  });
});
