import type { ValueRows } from "../src/index.js";

/** The one field of the jobs the job tests create. */
export const areaFields = [{ name: "area", type: "number" as const, required: true, feature: "Area" }];

/**
 * A deterministic valuation of `area` rows (100 per unit; a non-number is a row error): for tests
 * of the job machinery, whose valuation is tested elsewhere.
 */
export const valueByArea: ValueRows = async (_tenant, _class, rows) =>
  rows.map((r) =>
    Number.isFinite(Number(r["area"]))
      ? {
          value: Number(r["area"]) * 100,
          low: 1,
          high: 2,
          coverage: 0.8,
          confidence: 0.5,
          modelVersion: "v1",
          route: "champion",
        }
      : { error: { code: "INVALID_ARGUMENT", message: "area: not a number" } },
  );
