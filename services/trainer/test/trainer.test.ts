import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { seededRandom } from "@valora/kit";
import { locateTreeEnsemble, metadataOf, parseModel, predict } from "@valora/kit/onnx";
import {
  accuracy,
  binIndex,
  defaultFolds,
  detectOneHotGroups,
  oneHotGroup,
  buildDataset,
  computeEdges,
  encodeRecord,
  fieldName,
  intervalFor,
  keepRows,
  parseCsv,
  residualQuantiles,
  trainModel,
} from "../src/index.js";

const root = join(import.meta.dirname, "..", "..", "..");

/** A synthetic market: price from size, age, a categorical neighbourhood, noise and missing values. */
function syntheticCsv(rows: number, seed: number): string {
  const rnd = seededRandom(seed);
  const hoods = ["Old_Town", "Riverside", "Hilltop", "Downtown"];
  const lines = ["sqft,age,hood,garage,price"];
  for (let i = 0; i < rows; i++) {
    const sqft = Math.round(600 + rnd() * 2400);
    const age = Math.round(rnd() * 80);
    const hood = hoods[Math.floor(rnd() * hoods.length)]!;
    const garage = rnd() < 0.1 ? "NA" : String(Math.round(rnd() * 3));
    const price = Math.round(
      (50000 +
        sqft * 120 -
        age * 400 +
        hoods.indexOf(hood) * 25000 +
        (garage === "NA" ? 0 : Number(garage) * 8000)) *
        Math.exp((rnd() - 0.5) * 0.1),
    );
    lines.push(`${sqft},${age},${hood},${garage},${price}`);
  }
  return `${lines.join("\n")}\n`;
}

describe("dataset and binning", () => {
  it("types columns, orders categories by mean target, treats NA as missing", () => {
    const { header, records } = parseCsv("a,b,c,y\n1,x,NA,10\n2,z,3,30\n3,x,4,12\n");
    const ds = buildDataset(header, records, "y");
    expect(ds.columns.map((c) => [c.name, c.kind])).toEqual([
      ["a", "numeric"],
      ["b", "categorical"],
      ["c", "numeric"],
    ]);
    const b = ds.columns[1]!;
    expect(b.kind === "categorical" && b.categories).toEqual(["x", "z"]);
    expect(Number.isNaN(ds.features[2]!)).toBe(true);
    expect(Array.from(encodeRecord(ds.columns, { a: 5, b: "z", c: null }))).toEqual([5, 1, Number.NaN]);
    expect(Number.isNaN(encodeRecord(ds.columns, { b: "never seen" })[1]!)).toBe(true);
  });

  it("refuses a missing or non-numeric target with the row at fault", () => {
    const { header, records } = parseCsv("a,y\n1,10\n2,abc\n");
    expect(() => buildDataset(header, records, "nope")).toThrow(/target column "nope"/);
    expect(() => buildDataset(header, records, "y")).toThrow(/row 3: target "y" is "abc"/);
  });

  it("bins so that bin <= b exactly when the float32 value <= edge b (the ONNX test)", () => {
    const rnd = seededRandom(3);
    const values = Float64Array.from({ length: 5000 }, () => rnd() * 1000);
    const edges = computeEdges(values, 64);
    expect(edges.length).toBeLessThanOrEqual(65);
    for (let k = 0; k < 2000; k++) {
      const x = rnd() * 1100 - 50;
      const bin = binIndex(edges, x);
      for (let b = 0; b < edges.length - 1; b++) expect(bin <= b).toBe(Math.fround(x) <= edges[b]!);
    }
  });

  it("computes MdAPE, PPE10/20 and RMSE of logs", () => {
    const a = accuracy([100, 100, 100, 100], [105, 92, 130, 100]);
    expect(a.mdape).toBeCloseTo(6.5, 9);
    expect(a.ppe10).toBe(75);
    expect(a.ppe20).toBe(75);
    const q = residualQuantiles([-0.2, -0.1, 0, 0.1, 0.2]);
    const iv = intervalFor(100, q, 0.8);
    expect(iv.low).toBeLessThan(100);
    expect(iv.high).toBeGreaterThan(100);
    expect(fieldName("Gr_Liv_Area")).toBe("gr_liv_area");
    expect(fieldName("TotRmsAbvGrd")).toBe("tot_rms_abv_grd");
  });
});

describe("trainModel", () => {
  const csv = syntheticCsv(600, 1);
  const run = () =>
    trainModel({ csv, target: "price", logTarget: true, exclude: [], seed: 7, params: { maxRounds: 400 } });

  it("is deterministic: same data and seed give a byte-identical model and card", () => {
    const a = run();
    const b = run();
    expect(Buffer.from(a.onnx).equals(Buffer.from(b.onnx))).toBe(true);
    expect(JSON.stringify(a.card)).toBe(JSON.stringify(b.card));
    const c = trainModel({
      csv,
      target: "price",
      logTarget: true,
      exclude: [],
      seed: 8,
      params: { maxRounds: 400 },
    });
    expect(Buffer.from(c.onnx).equals(Buffer.from(a.onnx))).toBe(false);
  });

  it("cross-validates small data on 10 folds and larger on 5; refuses a fold count it cannot use", () => {
    expect([defaultFolds(200), defaultFolds(999), defaultFolds(1000), defaultFolds(2138)]).toEqual([
      10, 10, 5, 5,
    ]);
    expect(run().card.crossValidation.folds).toBe(10);
    for (const folds of [1, 2.5, 601])
      expect(() =>
        trainModel({
          csv,
          target: "price",
          logTarget: true,
          exclude: [],
          seed: 7,
          folds,
          params: { maxRounds: 5 },
        }),
      ).toThrow(/folds must be an integer from 2 to the 600 rows/);
  });

  it("learns the market, and onnxruntime serves exactly what training predicted", async () => {
    const out = run();
    expect(out.card.crossValidation.mdape).toBeLessThan(6);
    expect(out.card.crossValidation.intervalCoverage80).toBeGreaterThan(70);
    const meta = metadataOf(parseModel(out.onnx));
    expect(JSON.parse(meta["valora.features"]!)).toEqual(["sqft", "age", "hood", "garage"]);
    expect(JSON.parse(meta["valora.target"]!)).toEqual({ name: "price", transform: "log" });
    expect(JSON.parse(meta["valora.encodings"]!).hood).toBeDefined();
    expect(meta["valora.training_data_sha256"]).toMatch(/^[0-9a-f]{64}$/);
    const located = locateTreeEnsemble(parseModel(out.onnx));
    expect(typeof located !== "string" && located.ensemble.coverSource).toBe("recorded");

    const session = await ort.InferenceSession.create(out.onnx);
    const rnd = seededRandom(5);
    const rows = Array.from({ length: 200 }, () => [
      600 + rnd() * 2400,
      rnd() * 80,
      Math.floor(rnd() * 5) - 0.0,
      rnd() < 0.3 ? Number.NaN : Math.round(rnd() * 3),
    ]);
    const served = (
      await session.run({
        features: new ort.Tensor("float32", Float32Array.from(rows.flat()), [rows.length, 4]),
      })
    )["value"]!.data as Float32Array;
    rows.forEach((r, i) => expect(served[i]!).toBeCloseTo(predict(out.ensemble, r), 4));
    await session.release();
  });
});

describe("sales validation and robust loss", () => {
  it("leaves out rows by column value, records the filter in the card, and names an unknown column", () => {
    const { header, records } = parseCsv("a,cond,y\n1,Normal,10\n2,Abnorml,30\n3,Family,12\n4,Normal,11\n");
    expect(keepRows(header, records, { cond: ["Abnorml", "Family"] }).map((r) => r[0])).toEqual(["1", "4"]);
    expect(keepRows(header, records)).toBe(records);
    expect(() => keepRows(header, records, { condition: ["x"] })).toThrow(/row filter column "condition"/);
    const lines = syntheticCsv(400, 3).trimEnd().split("\n");
    // A quarter of the sales are family transfers at a third of the price: noise a market model must not learn.
    const csv = `${lines[0]},cond\n${lines
      .slice(1)
      .map((l, i) =>
        i % 4 === 0
          ? `${l.replace(/,(\d+)$/, (_, p) => `,${Math.round(Number(p) / 3)}`)},Family`
          : `${l},Normal`,
      )
      .join("\n")}\n`;
    const filtered = trainModel({
      csv,
      target: "price",
      logTarget: true,
      exclude: ["cond"],
      excludeRows: { cond: ["Family"] },
      seed: 7,
      params: { maxRounds: 300 },
    });
    expect(filtered.card.data).toMatchObject({
      rows: 300,
      excludedRows: { filter: { cond: ["Family"] }, count: 100 },
    });
    expect(filtered.card.crossValidation.mdape).toBeLessThan(6);
    const unfiltered = trainModel({
      csv,
      target: "price",
      logTarget: true,
      exclude: ["cond"],
      seed: 7,
      params: { maxRounds: 300 },
    });
    expect(unfiltered.card.data.excludedRows).toBeUndefined();
    expect(unfiltered.card.crossValidation.mdape).toBeGreaterThan(filtered.card.crossValidation.mdape * 2);
  });

  it("with Huber loss, a few wild prices bend the model less than with squared loss", () => {
    const clean = syntheticCsv(500, 4).trimEnd().split("\n");
    // One sale in ten recorded at five times its price (a data-entry slip), all in one neighbourhood.
    const dirty = [
      clean[0],
      ...clean
        .slice(1)
        .map((l, i) =>
          i % 10 === 0 && l.includes("Hilltop") ? l.replace(/,(\d+)$/, (_, p) => `,${Number(p) * 5}`) : l,
        ),
    ].join("\n");
    const truth = parseCsv(`${clean.join("\n")}\n`);
    const errorOf = (huberDelta: number) => {
      const out = trainModel({
        csv: `${dirty}\n`,
        target: "price",
        logTarget: true,
        exclude: [],
        seed: 7,
        params: { maxRounds: 600, huberDelta },
      });
      const hood = truth.header.indexOf("hood");
      const rows = truth.records.filter((r) => r[hood] === "Hilltop");
      const predicted = rows.map((r) =>
        Math.exp(
          predict(
            out.ensemble,
            encodeRecord(out.card.data.columns, Object.fromEntries(truth.header.map((h, k) => [h, r[k]]))),
          ),
        ),
      );
      return accuracy(
        rows.map((r) => Number(r.at(-1))),
        predicted,
      ).mdape;
    };
    const squared = errorOf(0);
    const huber = errorOf(0.05);
    expect(huber).toBeLessThan(squared * 0.8);
  });
});

const built = existsSync(join(root, "services", "cli", "dist", "bin.js"));

describe.skipIf(!built)("default models (make models)", () => {
  it("are reproduced byte-identically from models/data", () => {
    const out = mkdtempSync(join(tmpdir(), "valora-models-"));
    execFileSync("bash", [join(root, "scripts", "build-models.sh")], {
      cwd: root,
      env: { ...process.env, VALORA_MODELS_OUT: out, CI: "true" },
      stdio: "pipe",
    });
    for (const file of [
      "real-estate/model.onnx",
      "real-estate/model-card.json",
      "autos/model.onnx",
      "autos/model-card.json",
    ]) {
      expect(
        readFileSync(join(out, file)).equals(readFileSync(join(root, "models", file))),
        `${file} differs: run make models`,
      ).toBe(true);
    }
    for (const file of ["real-estate.yaml", "autos.yaml"]) {
      expect(
        readFileSync(join(out, "manifests", file)).equals(readFileSync(join(root, "manifests", file))),
        `manifests/${file} differs: run make models`,
      ).toBe(true);
    }
  }, 180_000);

  it("meet the quality targets in their cards", () => {
    const ames = JSON.parse(readFileSync(join(root, "models", "real-estate", "model-card.json"), "utf8"));
    expect(ames.crossValidation.folds).toBe(5);
    // Issue 6's real-estate targets, on the card's cross-validation (bench:accuracy checks a held-out split).
    expect(ames.crossValidation.mdape).toBeLessThanOrEqual(5.5);
    expect(ames.crossValidation.ppe10).toBeGreaterThanOrEqual(75);
    expect(ames.crossValidation.intervalCoverage80).toBeGreaterThanOrEqual(77);
    expect(ames.crossValidation.intervalCoverage80).toBeLessThanOrEqual(83);
    expect(ames.data.excludedRows).toEqual({
      filter: { Sale_Condition: ["Abnorml", "Family", "Alloca", "AdjLand"] },
      count: 206,
    });
    const autos = JSON.parse(readFileSync(join(root, "models", "autos", "model-card.json"), "utf8"));
    expect(autos.crossValidation.mdape).toBeLessThanOrEqual(6.0);
    // 644 cars: ten folds, so the out-of-fold models that calibrate the intervals are closer to the served one.
    expect(autos.crossValidation.folds).toBe(10);
  });

  it("come with a ValuationModel and an AssetPipeline whose fields name their source columns", () => {
    const docs = readFileSync(join(root, "manifests", "real-estate.yaml"), "utf8")
      .split(/^---$/m)
      .map((d) => parse(d));
    expect(docs.map((d) => d.kind)).toEqual(["ValuationModel", "AssetPipeline"]);
    expect(docs[0].spec.champion.sha256).toMatch(/^[0-9a-f]{64}$/);
    const fields = docs[1].spec.input.fields as {
      name: string;
      type: string;
      feature: string;
      enum?: string[];
      min?: number;
      max?: number;
      training?: { min?: number; max?: number; categories?: string[] };
      required: boolean;
    }[];
    // Validity (what any house can be) apart from the training domain (what the model saw).
    const area = fields.find((f) => f.feature === "Gr_Liv_Area")!;
    expect(area).toMatchObject({ name: "gr_liv_area", type: "integer", min: 0 });
    expect(area.max).toBeUndefined();
    expect(area.training!.min).toBeGreaterThan(0);
    expect(area.training!.max).toBeGreaterThan(area.training!.min!);
    expect(fields.find((f) => f.feature === "Latitude")).toMatchObject({ min: -90, max: 90 });
    const neighborhood = fields.find((f) => f.feature === "Neighborhood")!;
    expect(neighborhood.enum).toBeUndefined();
    expect(neighborhood.training?.categories).toContain("North_Ames");
    expect(fields.some((f) => f.feature === "Sale_Condition")).toBe(false);
    // The five most used features, and a location whole: latitude and longitude together.
    const required = fields.filter((f) => f.required).map((f) => f.feature);
    expect(required.length).toBeGreaterThanOrEqual(5);
    expect(required.includes("Latitude")).toBe(required.includes("Longitude"));
    expect(docs[1].spec.comparables.mode).toBe("geo");
  });
});

describe("one-hot groups (pure)", () => {
  const cars = parseCsv(readFileSync(join(root, "models", "data", "car_prices.csv"), "utf8"));

  it("finds runs of 0/1 columns with one 1 per row, named by a shared prefix or numbered", () => {
    const groups = detectOneHotGroups(cars.header, cars.records, new Set(["Price"]));
    expect(groups.map((g) => [g.name, g.columns])).toEqual([
      ["one_hot_1", ["Buick", "Cadillac", "Chevy", "Pontiac", "Saab", "Saturn"]],
      ["one_hot_2", ["convertible", "coupe", "hatchback", "sedan", "wagon"]],
    ]);
    // Plain 0/1 columns (Cruise, Sound, Leather) are booleans, not a group: rows hold several 1s.
    expect(groups.flatMap((g) => g.columns)).not.toContain("Cruise");
    const dummies = parseCsv(
      "price,make_Saab,make_Buick,colour_red,colour_blue\n1,1,0,0,1\n2,0,1,1,0\n3,0,1,1,0\n",
    );
    expect(detectOneHotGroups(dummies.header, dummies.records, new Set(["price"]))).toEqual([
      { name: "make", columns: ["make_Saab", "make_Buick"], typical: "Buick" },
      { name: "colour", columns: ["colour_red", "colour_blue"], typical: "red" },
    ]);
  });

  it("checks a named group against the data and says what is wrong", () => {
    const make = oneHotGroup(
      "make",
      ["Buick", "Cadillac", "Chevy", "Pontiac", "Saab", "Saturn"],
      cars.header,
      cars.records,
    );
    expect(make.typical).toBe("Chevy");
    expect(() => oneHotGroup("x", ["Buick", "Ford"], cars.header, cars.records)).toThrow(/no column Ford/);
    expect(() => oneHotGroup("x", ["Buick", "Mileage"], cars.header, cars.records)).toThrow(
      /Mileage not 0\/1/,
    );
    expect(() => oneHotGroup("x", ["Buick", "Cruise"], cars.header, cars.records)).toThrow(/more than one/);
  });

  it("the default autos manifest asks for make and body, with the old one-hot names as aliases", () => {
    const docs = readFileSync(join(root, "manifests", "autos.yaml"), "utf8")
      .split(/^---$/m)
      .map((d) => parse(d));
    const fields = docs[1].spec.input.fields as {
      name: string;
      oneHot?: Record<string, string>;
      aliases?: Record<string, string>;
      training?: { min?: number; max?: number };
      min?: number;
      max?: number;
    }[];
    expect(fields.map((f) => f.name)).toEqual(expect.arrayContaining(["mileage", "make", "body"]));
    expect(fields.some((f) => f.name === "buick" || f.name === "sedan")).toBe(false);
    const make = fields.find((f) => f.name === "make")!;
    expect(make.oneHot).toMatchObject({ Saab: "Saab", Buick: "Buick" });
    expect(make.aliases).toMatchObject({ saab: "Saab" });
    // Mileage: any car has at least 0 miles; the model saw up to ~50,000 (a warning beyond, not a refusal).
    const mileage = fields.find((f) => f.name === "mileage")!;
    expect(mileage).toMatchObject({ min: 0, training: { min: 266, max: 50387 } });
    expect(mileage.max).toBeUndefined();
  });
});
