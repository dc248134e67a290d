/**
 * Issue 22: real assets outside the training data are valued, with warnings, not refused. Models
 * are trained here on the project's held-out split (heldOutSplit, as bench:accuracy makes it), given
 * the fields `valora train --emit-manifests` would give them, served by a real model server on
 * loopback, and every held-out asset is valued through the pipeline.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValoraError, VALUE_ONLY, domainWarnings, normaliseWithKey, type InputField } from "@valora/kit";
import { captureLogs } from "@valora/kit/testing";
import { metadataOf, parseModel } from "@valora/kit/onnx";
import { salesFromCsv, type Sale } from "@valora/comparables";
import { heldOutSplit, parseCsv, pipelineFields, trainModel } from "@valora/trainer";
import {
  featureRow,
  grpcModelClient,
  modelSchemaFrom,
  normaliseAttributes,
  ValuationPipeline,
  type ModelClient,
  type ModelSchema,
  type PipelineSpec,
  type ValuationOut,
} from "../src/index.js";
import { startModelServer } from "./support/model-server.js";

const root = join(import.meta.dirname, "..", "..", "..");
const bin = join(root, "services", "cli", "dist", "bin.js");

interface Trained {
  fields: InputField[];
  schema: ModelSchema;
  held: Sale[];
  metadata: Record<string, string>;
  file: string;
}

/** A quick model (few rounds: refusals and warnings do not depend on accuracy) on the split's 80%. */
function trainOnSplit(
  dir: string,
  name: string,
  o: {
    csv: string;
    target: string;
    exclude: string[];
    oneHot?: { name: string; columns: string[] }[];
    excludeRows?: Record<string, string[]>;
  },
): Trained {
  const text = readFileSync(join(root, "models", "data", o.csv), "utf8");
  const split = heldOutSplit(text, o.excludeRows ? { excludeRows: o.excludeRows } : {});
  const out = trainModel({
    csv: split.train,
    target: o.target,
    logTarget: true,
    exclude: o.exclude,
    seed: 42,
    folds: 2,
    params: { maxRounds: 60 },
  });
  const parsed = parseCsv(split.train);
  const { fields } = pipelineFields(parsed.header, parsed.records, out, {
    target: o.target,
    exclude: o.exclude,
    ...(o.oneHot ? { oneHot: o.oneHot } : {}),
  });
  const file = join(dir, `${name}.onnx`);
  writeFileSync(file, out.onnx);
  const metadata = metadataOf(parseModel(out.onnx));
  const held = salesFromCsv(split.test, { idPrefix: "held", target: o.target, fields });
  return { fields, schema: modelSchemaFrom(metadata, 0), held, metadata, file };
}

const MAKES = ["Buick", "Cadillac", "Chevy", "Pontiac", "Saab", "Saturn"];
/** A car well inside the training data. */
const CHEVY = {
  mileage: 20_000,
  cylinder: 6,
  doors: 4,
  cruise: true,
  sound: true,
  leather: true,
  make: "Chevy",
  body: "sedan",
};
const BODIES = ["convertible", "coupe", "hatchback", "sedan", "wagon"];

describe.skipIf(!existsSync(bin))("valuing assets outside the training data (held-out split)", () => {
  const dir = mkdtempSync(join(tmpdir(), "valora-domain-"));
  const houses = trainOnSplit(dir, "houses", {
    csv: "ames.csv",
    target: "Sale_Price",
    exclude: ["Sale_Type", "Sale_Condition"],
    excludeRows: { Sale_Condition: ["Abnorml", "Family", "Alloca", "AdjLand"] },
  });
  const cars = trainOnSplit(dir, "cars", {
    csv: "car_prices.csv",
    target: "Price",
    exclude: [],
    oneHot: [
      { name: "make", columns: MAKES },
      { name: "body", columns: BODIES },
    ],
  });
  let server: ChildProcess;
  const clients: ModelClient[] = [];
  const pipelines = new Map<string, ValuationPipeline>();
  const grpcPort = 18947;
  /** The cars' pipeline as served, explaining its three largest contributions. */
  const explaining = (client: ModelClient, topK: number) =>
    new ValuationPipeline({
      spec: {
        assetClass: "cars",
        currency: "USD",
        model: { name: "cars" },
        input: { fields: cars.fields },
        explain: { topK },
        fallback: { mode: "none" },
      },
      schema: cars.schema,
      residualQuantiles: JSON.parse(cars.metadata["valora.residual_quantiles"]!) as Record<string, number>,
      routes: () => [{ version: "v1", role: "champion", endpoint: `127.0.0.1:${grpcPort}`, weight: 100 }],
      client: () => client,
      logger: captureLogs().logger,
      timeoutMs: 10_000,
    });

  beforeAll(async () => {
    server = await startModelServer(
      bin,
      [
        { name: "houses", file: houses.file, version: "v1" },
        { name: "cars", file: cars.file, version: "v1" },
      ],
      grpcPort,
    );
    const endpoint = `127.0.0.1:${grpcPort}`;
    for (const [name, t] of [
      ["houses", houses],
      ["cars", cars],
    ] as const) {
      const client = grpcModelClient(endpoint, name, "v1");
      clients.push(client);
      const spec: PipelineSpec = {
        assetClass: name,
        currency: "USD",
        model: { name },
        input: { fields: t.fields },
        explain: { topK: 0 },
        interval: { coverage: 0.8 },
        fallback: { mode: "none" },
      };
      pipelines.set(
        name,
        new ValuationPipeline({
          spec,
          schema: t.schema,
          residualQuantiles: JSON.parse(t.metadata["valora.residual_quantiles"]!) as Record<string, number>,
          residualBands: JSON.parse(t.metadata["valora.residual_bands"]!),
          routes: () => [{ version: "v1", role: "champion", endpoint, weight: 100 }],
          client: () => client,
          logger: captureLogs().logger,
          timeoutMs: 10_000,
        }),
      );
    }
  }, 60_000);
  afterAll(() => {
    for (const c of clients) c.close();
    server?.kill("SIGTERM");
  });

  const valueAll = async (name: string, t: Trained) => {
    const items = t.held.map((s) => {
      const { key, attributes } = normaliseWithKey(t.fields, s.attributes);
      return { attributes: attributes(), assetKey: key };
    });
    return pipelines.get(name)!.valueMany(items, { parts: VALUE_ONLY });
  };

  it("values every held-out house and car — none refused — and warns on those outside the training domain", async () => {
    for (const [name, t] of [
      ["houses", houses],
      ["cars", cars],
    ] as const) {
      const out = await valueAll(name, t);
      const errors = out.filter((v) => v instanceof Error);
      expect(errors, `${name}: ${String(errors[0])}`).toEqual([]);
      const valued = out as ValuationOut[];
      expect(valued.every((v) => v.value > 0 && v.interval.low < v.value && v.value < v.interval.high)).toBe(
        true,
      );
      const warned = valued.filter((v) => v.warnings.length > 0);
      // What the issue found refused (unseen categories, counts and miles beyond training) is warned instead.
      if (name === "houses") {
        expect(warned.length).toBeGreaterThanOrEqual(3);
        expect(new Set(warned.flatMap((v) => v.warnings.map((w) => w.code)))).toEqual(
          new Set(["UNSEEN_CATEGORY", "OUTSIDE_TRAINING_RANGE"]),
        );
      } else expect(warned.length).toBeGreaterThanOrEqual(1);
      // Warned answers are less sure: their confidence is below the median of the rest.
      const calm = valued
        .filter((v) => v.warnings.length === 0)
        .map((v) => v.confidence)
        .sort((a, b) => a - b);
      const median = calm[Math.floor(calm.length / 2)]!;
      expect(warned.every((v) => v.confidence < median)).toBe(true);
    }
  });

  it("values a car with 150,000 miles: warned, a wider interval and lower confidence than at 20,000", async () => {
    const car = CHEVY;
    const pipeline = pipelines.get("cars")!;
    const near = normaliseAttributes(cars.fields, car);
    const far = normaliseAttributes(cars.fields, { ...car, mileage: 150_000 });
    const a = await pipeline.value(near, "a");
    const b = await pipeline.value(far, "b");
    expect(a.warnings).toEqual([]);
    expect(b.warnings).toEqual([
      expect.objectContaining({
        field: "attributes.mileage",
        code: "OUTSIDE_TRAINING_RANGE",
        message: expect.stringMatching(/150000 is outside the range the model was trained on \(\d+\.\.\d+\)/),
      }),
    ]);
    const logWidth = (v: ValuationOut) => Math.log(v.interval.high / v.interval.low);
    expect(logWidth(b)).toBeGreaterThan(1.4 * logWidth(a));
    expect(b.confidence).toBeLessThan(a.confidence);
    expect(b.value).toBeLessThanOrEqual(a.value); // more miles, not more money
  });

  it("values a house with a category the model never saw as missing, with its warning and a suggestion", async () => {
    const house = { ...houses.held[0]!.attributes };
    const functional = houses.fields.find((f) => f.name === "functional")!;
    expect(functional.training?.categories).toContain("Typ");
    const attrs = normaliseAttributes(houses.fields, { ...house, functional: "Typc" });
    expect(attrs["functional"]).toBe("Typc");
    const warnings = domainWarnings(houses.fields, attrs);
    expect(warnings).toEqual([
      {
        field: "attributes.functional",
        code: "UNSEEN_CATEGORY",
        message: expect.stringMatching(
          /"Typc" was not seen in training \(did you mean Typ\?\); valued as if unknown/,
        ),
      },
    ]);
    // The trees' learnt missing direction: the feature goes to the model as NaN.
    const at = houses.schema.features.indexOf("Functional");
    expect(Number.isNaN(featureRow(houses.schema, houses.fields, attrs)[at]!)).toBe(true);
    const v = await pipelines.get("houses")!.value(attrs, "h");
    expect(v.value).toBeGreaterThan(0);
    expect(v.warnings.map((w) => w.code)).toEqual(["UNSEEN_CATEGORY"]);
  });

  it("still refuses what no asset can be (a 400 naming the field), and what is outside a strict field's domain", () => {
    const refusal = (fields: InputField[], attrs: Record<string, unknown>) => {
      try {
        normaliseAttributes(fields, attrs);
      } catch (err) {
        if (err instanceof ValoraError)
          return { code: err.code, fields: err.details.map((d) => d.field), message: err.message };
        throw err;
      }
      return undefined;
    };
    const house = houses.held[0]!.attributes;
    expect(refusal(houses.fields, { ...house, gr_liv_area: -10, latitude: 200 })).toMatchObject({
      code: "INVALID_ARGUMENT",
      fields: ["attributes.gr_liv_area", "attributes.latitude"],
    });
    const car = { ...CHEVY, mileage: 150_000 };
    expect(refusal(cars.fields, car)).toBeUndefined();
    const strict = cars.fields.map((f) => (f.name === "mileage" ? { ...f, strict: true } : f));
    expect(refusal(strict, car)).toMatchObject({
      fields: ["attributes.mileage"],
      message: expect.stringMatching(/outside the range the model was trained on .* and the field is strict/),
    });
    expect(refusal(cars.fields, { ...car, mileage: -1 })).toMatchObject({ fields: ["attributes.mileage"] });
  });

  it("explains a car by its fields: a one-hot group is one contribution, the exact sum of its columns", async () => {
    const client = clients[1]!;
    const attrs = normaliseAttributes(cars.fields, { ...CHEVY, make: "Saab", body: "wagon" });
    const row = featureRow(cars.schema, cars.fields, attrs);
    const [full] = await client.explainMany([row], 0, 10_000);
    const sum = (cols: string[]) =>
      full!.contributions.filter((c) => cols.includes(c.feature)).reduce((s, c) => s + c.contribution, 0);
    const everything = await explaining(client, 100).value(attrs, "k");
    const byField = new Map(everything.explanation!.contributions.map((c) => [c.field ?? c.feature, c]));
    expect(byField.get("make")).toMatchObject({ feature: "make", value: 1, field: "make", category: "Saab" });
    expect(byField.get("make")!.contribution).toBeCloseTo(sum(MAKES), 9);
    expect(byField.get("body")!.contribution).toBeCloseTo(sum(BODIES), 9);
    expect(byField.get("mileage")).toMatchObject({ feature: "Mileage", value: 20_000, field: "mileage" });
    // Every field once, no model column of a group left: 6 plain fields + make + body; still additive.
    expect(everything.explanation!.contributions.map((c) => c.feature).sort()).toEqual(
      ["Cruise", "Cylinder", "Doors", "Leather", "Mileage", "Sound", "body", "make"].sort(),
    );
    const total = everything.explanation!.contributions.reduce((s, c) => s + c.contribution, 0);
    expect(everything.explanation!.baseValue + total).toBeCloseTo(everything.explanation!.output, 4);
    // Cut to topK after folding, largest first; a make the model never saw is "none of the group".
    const top = await explaining(client, 3).value(
      normaliseAttributes(cars.fields, { ...CHEVY, make: "Lada" }),
      "k2",
    );
    const shown = top.explanation!.contributions;
    expect(shown).toHaveLength(3);
    expect(shown.map((c) => Math.abs(c.contribution))).toEqual(
      [...shown.map((c) => Math.abs(c.contribution))].sort((a, b) => b - a),
    );
    const lada = await explaining(client, 100).value(
      normaliseAttributes(cars.fields, { ...CHEVY, make: "Lada" }),
      "k3",
    );
    expect(lada.explanation!.contributions.find((c) => c.field === "make")).toMatchObject({
      value: 0,
      category: "Lada",
    });
  });

  it("takes make and body as people write them; old one-hot names are aliases with a deprecation warning", () => {
    const { make: _make, body: _body, ...base } = CHEVY;
    const modern = normaliseWithKey(cars.fields, { ...base, make: "saab", body: "Sedan" });
    expect(modern.attributes()).toMatchObject({ make: "Saab", body: "sedan" });
    expect(modern.warnings).toBeUndefined();
    const old = normaliseWithKey(cars.fields, { ...base, saab: true, buick: false, sedan: 1 });
    expect(old.key).toBe(modern.key); // the same asset, the same cache entry
    expect(old.warnings?.map((w) => [w.field, w.code])).toEqual([
      ["attributes.saab", "DEPRECATED_ATTRIBUTE"],
      ["attributes.buick", "DEPRECATED_ATTRIBUTE"],
      ["attributes.sedan", "DEPRECATED_ATTRIBUTE"],
    ]);
    // The model sees what it was trained on: the value's column 1, the group's others 0; none known, all 0.
    const row = featureRow(cars.schema, cars.fields, modern.attributes());
    const hot = (r: Float32Array, cols: string[]) => cols.map((c) => r[cars.schema.features.indexOf(c)]);
    expect(hot(row, MAKES)).toEqual([0, 0, 0, 0, 1, 0]);
    expect(hot(row, BODIES)).toEqual([0, 0, 0, 1, 0]);
    const ford = normaliseAttributes(cars.fields, { ...base, make: "Ford", body: "sedan" });
    expect(hot(featureRow(cars.schema, cars.fields, ford), MAKES)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(domainWarnings(cars.fields, ford).map((w) => w.code)).toEqual(["UNSEEN_CATEGORY"]);
    expect(() =>
      normaliseAttributes(cars.fields, { ...base, saab: true, buick: true, body: "sedan" }),
    ).toThrow(/attributes.buick conflicts with another attribute setting make to "Saab"/);
    expect(() =>
      normaliseAttributes(cars.fields, { ...base, make: "Chevy", saab: true, body: "sedan" }),
    ).toThrow(/attributes.make is "Chevy" but a deprecated attribute says "Saab"/);
  });
});
