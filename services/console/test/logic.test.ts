import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/client";
import {
  checkCsvHeader,
  exampleValues,
  fieldHint,
  fieldLabel,
  formToAttributes,
} from "../src/lib/attributes";
import { fit, mercator, tilesFor, toScreen } from "../src/lib/geo";
import { csvOutline, progressPct, throughput } from "../src/lib/jobs";
import type { Explanation, Field } from "../src/lib/types";
import { usageByDay } from "../src/lib/usage";
import { contributionLabel, waterfallSteps } from "../src/lib/waterfall";
import { pagesFor } from "../src/nav";
import { consoleCsp, wantsConsolePage } from "../../gateway/src/console";

const fields: Field[] = [
  { name: "mileage", type: "integer", required: true, min: 0, training: { min: 266, max: 50387 } },
  { name: "cruise", type: "boolean", required: false, default: true },
  { name: "make", type: "string", required: true, training: { categories: ["Buick", "Saab"] } },
  { name: "latitude", type: "number", required: true, min: -90, max: 90, training: { min: 41.9, max: 42.1 } },
  { name: "note", type: "string", required: false },
];

describe("asset forms", () => {
  it("sends numbers as numbers, booleans as booleans, leaves blanks out and keeps the unparsable as typed", () => {
    expect(
      formToAttributes(fields, {
        mileage: "12,500",
        cruise: "false",
        make: " Saab ",
        note: "",
        latitude: "abc",
      }),
    ).toEqual({
      mileage: 12500,
      cruise: false,
      make: "Saab",
      latitude: "abc",
    });
  });
  it("fills an example from defaults, training ranges and categories", () => {
    expect(exampleValues(fields)).toEqual({
      mileage: "25327",
      cruise: "true",
      make: "Buick",
      latitude: "42",
    });
  });
  it("labels and hints fields as people read them", () => {
    expect(fieldLabel("bsmt_full_bath")).toBe("Bsmt full bath");
    expect(fieldHint(fields[0]!)).toBe("at least 0 · trained on 266 to 50387");
    expect(fieldHint(fields[3]!)).toBe("valid -90 to 90 · trained on 41.9 to 42.1");
  });
  it("checks a CSV header: required columns missing (defaults excused), columns not read", () => {
    expect(checkCsvHeader(fields, ["mileage", "colour", "cruise"])).toEqual({
      missing: ["make", "latitude"],
      unknown: ["colour"],
    });
  });
});

describe("the explanation's waterfall", () => {
  const e: Explanation = {
    baseValue: 100,
    output: 130,
    method: "tree_shap",
    scale: "identity",
    contributions: [
      { feature: "a", value: 1, contribution: 50, field: null, category: null },
      { feature: "b", value: 2.5, contribution: -30, field: null, category: null },
      { feature: "c", value: 3, contribution: 6, field: null, category: null },
      { feature: "d", value: 4, contribution: 4, field: null, category: null },
    ],
  };
  it("walks from the base value to the value, largest effects first, the rest in one step", () => {
    const s = waterfallSteps(e, 130, 2);
    expect(s.map((x) => [x.label, x.from, x.to, x.kind])).toEqual([
      ["Base value", 0, 100, "base"],
      ["a = 1", 100, 150, "up"],
      ["b = 2.50", 150, 120, "down"],
      ["Other features", 120, 130, "up"],
      ["Value", 0, 130, "total"],
    ]);
  });
  it("shows the comparables' correction when the value is not the model's output", () => {
    const s = waterfallSteps(e, 140);
    expect(s.at(-2)).toEqual({ label: "Comparables' correction", from: 130, to: 140, kind: "up" });
  });
  it("turns a log-price model's additive contributions into money steps that meet at the value", () => {
    const log: Explanation = {
      baseValue: Math.log(20_000),
      output: Math.log(22_000),
      method: "tree_shap",
      scale: "log",
      contributions: [
        { feature: "Mileage", value: 8000, contribution: Math.log(1.2), field: "mileage", category: null },
        {
          feature: "make",
          value: 1,
          contribution: Math.log(22_000 / 24_000),
          field: "make",
          category: "Saab",
        },
      ],
    };
    const s = waterfallSteps(log, 22_000);
    expect(s[0]!.to).toBeCloseTo(20_000, 6);
    expect(s[1]).toMatchObject({ kind: "up" });
    expect(s[1]!.to).toBeCloseTo(24_000, 6);
    expect(s[2]!.to).toBeCloseTo(22_000, 6);
    // Labelled by the fields and the category as sent, not the model's columns.
    expect(s.map((x) => x.label)).toEqual(["Base value", "mileage = 8000", "make = Saab", "Value"]);
  });
});

describe("a contribution's label", () => {
  it("names a one-hot field sent with none of its categories", () => {
    expect(
      contributionLabel({ feature: "body", value: 0, contribution: 0.1, field: "body", category: null }),
    ).toBe("body = none");
    expect(
      contributionLabel({
        feature: "Gr_Liv_Area",
        value: 1500.5,
        contribution: 0.1,
        field: null,
        category: null,
      }),
    ).toBe("Gr_Liv_Area = 1500.50");
  });
});

describe("the map", () => {
  it("projects in Web Mercator and fits every point inside the frame", () => {
    const pts = [mercator(42.0, -93.6), mercator(42.05, -93.65), mercator(41.98, -93.58)];
    const v = fit(pts, 640, 400);
    for (const p of pts.map((q) => toScreen(v, q))) {
      expect(p.x).toBeGreaterThanOrEqual(23.9);
      expect(p.x).toBeLessThanOrEqual(616.1);
      expect(p.y).toBeGreaterThanOrEqual(23.9);
      expect(p.y).toBeLessThanOrEqual(376.1);
    }
    // North is up: a higher latitude is higher on screen.
    expect(toScreen(v, mercator(42.05, -93.6)).y).toBeLessThan(toScreen(v, mercator(41.98, -93.6)).y);
  });
  it("covers the frame with tiles of the nearest zoom", () => {
    const v = fit([mercator(42.0, -93.6), mercator(42.05, -93.65)], 640, 400);
    const tiles = tilesFor(v, 640, 400);
    expect(tiles.length).toBeGreaterThan(0);
    expect(Math.min(...tiles.map((t) => t.left))).toBeLessThanOrEqual(0);
    expect(Math.max(...tiles.map((t) => t.left + t.size))).toBeGreaterThanOrEqual(640);
    expect(new Set(tiles.map((t) => t.z)).size).toBe(1);
  });
});

describe("jobs", () => {
  it("outlines a CSV: header, rows, a preview", () => {
    expect(csvOutline('a,"b"\n1,2\r\n3,4\n\n')).toEqual({
      header: ["a", "b"],
      rows: 2,
      preview: [
        ["1", "2"],
        ["3", "4"],
      ],
    });
  });
  it("counts failed rows as finished and measures throughput between events", () => {
    expect(progressPct({ doneRows: 700, failedRows: 300, totalRows: 1000 })).toBe(100);
    expect(progressPct({ doneRows: 0, failedRows: 0, totalRows: 0 })).toBe(100);
    expect(throughput({ rows: 100, at: 1000 }, { rows: 600, at: 2000 })).toBe(500);
    expect(throughput(undefined, { rows: 600, at: 2000 })).toBe(0);
  });
  it("groups usage by day with a column per asset class", () => {
    expect(
      usageByDay([
        { day: "2026-12-02", assetClass: "autos", units: 2 },
        { day: "2026-12-01", assetClass: "real-estate", units: 5 },
        { day: "2026-12-02", assetClass: "autos", units: 1 },
      ]),
    ).toEqual({
      classes: ["autos", "real-estate"],
      rows: [
        { day: "2026-12-01", autos: 0, "real-estate": 5 },
        { day: "2026-12-02", autos: 3, "real-estate": 0 },
      ],
    });
  });
});

describe("roles, errors and the CSP", () => {
  it("shows each role the pages its API roles allow", () => {
    expect(pagesFor(["viewer"]).map((p) => p.path)).toEqual([
      "/jobs",
      "/models",
      "/data",
      "/market",
      "/account",
    ]);
    expect(pagesFor(["auditor"]).map((p) => p.path)).toEqual(["/account"]);
    expect(pagesFor(["api"]).map((p) => p.path)).toContain("/value");
  });
  it("reads the API's error envelope, and names a network failure", () => {
    const e = ApiError.of(400, {
      error: {
        code: "INVALID_ARGUMENT",
        message: "bad",
        details: [{ field: "attributes.x", description: "too big" }],
      },
      meta: { requestId: "r1" },
    });
    expect([e.code, e.message, e.details[0]!.field, e.requestId]).toEqual([
      "INVALID_ARGUMENT",
      "bad",
      "attributes.x",
      "r1",
    ]);
    expect(ApiError.of(0, undefined).code).toBe("NETWORK");
    expect(ApiError.of(502, "<html>").code).toBe("HTTP_502");
  });
  it("sends a page's URL opened in a browser to the app, and keeps API and operations paths JSON", () => {
    const html = { accept: "text/html,application/xhtml+xml" };
    const page = (method: string, url: string, headers: Record<string, string> = html) =>
      wantsConsolePage({ method, url, headers });
    expect(page("GET", "/jobs/1b2c")).toBe(true);
    expect(page("HEAD", "/account/keys")).toBe(true);
    for (const url of [
      "/v1/nope",
      "/v1/valuations:batch",
      "/docs/x",
      "/metrics",
      "/assets/gone.js",
      "/healthz?x=1",
    ])
      expect(page("GET", url), url).toBe(false);
    expect(page("POST", "/jobs")).toBe(false);
    expect(page("GET", "/jobs", { accept: "application/json" })).toBe(false);
  });
  it("allows scripts only from the console's origin and opens exactly the issuer and tile hosts", () => {
    const csp = consoleCsp({
      oidc: { issuer: "https://id.example.com/realms/x", clientId: "c" },
      tileUrl: "https://tiles.example.org/{z}/{x}/{y}.png",
    });
    expect(csp).toContain("script-src 'self';");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(csp).toContain("connect-src 'self' https://id.example.com;");
    expect(csp).toContain("img-src 'self' data: blob: https://tiles.example.org;");
    expect(consoleCsp({})).toContain("connect-src 'self';");
  });
});
