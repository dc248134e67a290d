import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { createPgPool } from "@valora/kit";
import {
  ComparablesIndex,
  comparablesEstimate,
  haversineKm,
  insertSales,
  loadSales,
  migrateSales,
  salesFromCsv,
  type ComparablesSpec,
  type Sale,
  type SeedField,
} from "../src/index.js";

const root = join(import.meta.dirname, "..", "..", "..");
const ap = parseAllDocuments(
  readFileSync(join(root, "manifests", "real-estate.yaml"), "utf8"),
)[1]!.toJS() as { spec: { input: { fields: SeedField[] }; comparables: ComparablesSpec } };
const ames = salesFromCsv(readFileSync(join(root, "models", "data", "ames.csv"), "utf8"), {
  idPrefix: "ames",
  target: "Sale_Price",
  fields: ap.spec.input.fields,
  latitude: "Latitude",
  longitude: "Longitude",
  year: "Year_Sold",
  month: "Mo_Sold",
});

describe("seeding sales from the training data", () => {
  it("reads every Ames sale with its date, coordinates and attributes by field name", () => {
    expect(ames).toHaveLength(2344);
    expect(ames[0]).toMatchObject({
      id: "ames-1",
      price: 215000,
      soldAt: "2010-05-15",
      lat: 42.054035,
      lon: -93.619754,
    });
    expect(ames[0]!.attributes["gr_liv_area"]).toBe(1656);
    expect(ames[0]!.attributes["neighborhood"]).toBe("North_Ames");
  });
});

describe("ComparablesIndex", () => {
  const spec: ComparablesSpec = { ...ap.spec.comparables, count: 8, maxAgeMonths: 60 };
  const index = new ComparablesIndex(ames, spec);

  it("finds nearby, similar sales by growing H3 grid disks, never the subject itself", () => {
    const subject = ames[100]!;
    const comps = index.find(
      { lat: subject.lat!, lon: subject.lon!, attributes: subject.attributes },
      { excludeId: subject.id },
    );
    expect(comps).toHaveLength(8);
    expect(comps.some((c) => c.id === subject.id)).toBe(false);
    for (const c of comps) {
      expect(c.distanceKm).toBeLessThan(5);
      expect(c.similarity).toBeGreaterThan(0);
      expect(c.similarity).toBeLessThanOrEqual(1);
    }
    expect(comps.map((c) => c.similarity)).toEqual([...comps.map((c) => c.similarity)].sort((a, b) => b - a));
    expect(haversineKm(42.05, -93.62, 42.06, -93.62)).toBeCloseTo(1.112, 2);
  });

  it("estimates value from comparables alone to within a useful error on held-out sales", () => {
    const errors: number[] = [];
    for (let i = 0; i < ames.length; i += 10) {
      const s = ames[i]!;
      const est = comparablesEstimate(
        index.find({ lat: s.lat!, lon: s.lon!, attributes: s.attributes }, { excludeId: s.id }),
      );
      if (est) errors.push(Math.abs(est.value - s.price) / s.price);
    }
    errors.sort((a, b) => a - b);
    const mdape = errors[Math.floor(errors.length / 2)]!;
    expect(errors.length).toBeGreaterThan(200);
    expect(mdape).toBeLessThan(0.2);
  });

  it("time-adjusts prices with a market index and drops sales older than maxAgeMonths", () => {
    const sales: Sale[] = [
      { id: "a", price: 100_000, soldAt: "2020-01-15", attributes: { x: 1 } },
      { id: "b", price: 100_000, soldAt: "2024-01-15", attributes: { x: 1 } },
      { id: "old", price: 100_000, soldAt: "2010-01-15", attributes: { x: 1 } },
    ];
    const idx = new ComparablesIndex(sales, {
      mode: "attributes",
      h3Resolution: 8,
      maxRings: 1,
      count: 5,
      maxAgeMonths: 60,
      similarity: [{ field: "x", weight: 1 }],
    });
    const index = { valueAt: (d: Date) => (d.getUTCFullYear() >= 2024 ? 150 : 100) };
    const comps = idx.find({ attributes: { x: 1 } }, { index });
    expect(comps.map((c) => [c.id, c.adjustedPrice])).toEqual([
      ["a", 150_000],
      ["b", 100_000],
    ]);
    expect(comparablesEstimate(comps)!.value).toBeCloseTo(Math.sqrt(150_000 * 100_000), 6);
  });
});

const url = process.env["DATABASE_URL"];
describe.skipIf(!url)("sales store (real PostgreSQL)", () => {
  const pool = url ? createPgPool({ url, max: 2 }) : undefined;
  const cls = `test-${process.pid}`;
  afterAll(async () => {
    await pool?.query("DELETE FROM sales WHERE asset_class = $1", [cls]);
    await pool?.end();
  });
  it("seeds idempotently and loads the same sales back", async () => {
    await migrateSales(pool!);
    const some = ames.slice(0, 700);
    expect(await insertSales(pool!, cls, some)).toBe(700);
    expect(await insertSales(pool!, cls, some)).toBe(0);
    const back = await loadSales(pool!, cls);
    expect(back).toHaveLength(700);
    expect(back.find((s) => s.id === "ames-1")).toEqual(ames[0]);
  });
});

describe("top-k selection", () => {
  it("returns exactly what ranking every candidate would (similarity, then distance, then id), ties included", () => {
    // Attribute mode: every sale is a candidate, so a full ranking is the reference.
    const spec: ComparablesSpec = {
      mode: "attributes",
      h3Resolution: 7,
      maxRings: 0,
      count: 8,
      maxAgeMonths: 24,
      similarity: [
        { field: "gr_liv_area", weight: 1 },
        { field: "overall_cond", weight: 1 },
      ],
    };
    const sales: Sale[] = [
      ...ames.slice(0, 600),
      ...ames.slice(0, 100).map((s) => ({ ...s, id: `${s.id}-copy` })),
    ];
    const index = new ComparablesIndex(sales, spec);
    const asOf = new Date("2009-06-15T00:00:00Z");
    const month = (d: string) => Number(d.slice(0, 4)) * 12 + Number(d.slice(5, 7)) - 1;
    for (const subject of ames.slice(600, 660)) {
      const got = index.find({ attributes: subject.attributes }, { asOf });
      const reference = sales
        .filter(
          (s) =>
            !s.soldAt ||
            (month("2009-06") - month(s.soldAt) >= 0 && month("2009-06") - month(s.soldAt) <= 24),
        )
        .map((s) => ({
          id: s.id,
          similarity: index.similarity(subject.attributes, s.attributes),
          distanceKm: 0,
        }))
        .sort(
          (a, b) => b.similarity - a.similarity || a.distanceKm - b.distanceKm || a.id.localeCompare(b.id),
        )
        .slice(0, spec.count);
      expect(got.map((c) => [c.id, c.similarity])).toEqual(reference.map((r) => [r.id, r.similarity]));
    }
  });
});
