import { stringify } from "yaml";
import type { InputField } from "@valora/kit";
import type { TreeEnsemble } from "@valora/kit/onnx";
import type { ColumnSpec } from "./dataset.js";

/** An AssetPipeline input field, as the pipelines read it. */
export type { InputField };

/** `Gr_Liv_Area` -> `gr_liv_area`, `Mileage` -> `mileage`. */
export function fieldName(column: string): string {
  return column
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_|_$/g, "")
    .toLowerCase();
}

/** How often each feature is split on: the fields a client must send are the ones the trees use most. */
export function splitCounts(ensemble: TreeEnsemble): number[] {
  const counts = new Array<number>(ensemble.featureCount).fill(0);
  for (const t of ensemble.trees) for (const n of t.nodes) if (n.mode !== "LEAF") counts[n.feature]! += 1;
  return counts;
}

/**
 * Pure: a typical value per column — median of numbers (rounded for integer columns), most common
 * category (ties: first in sort order). Optional fields default to it, so a client sending only
 * the required fields is valued as a typical asset rather than through the trees' missing-value
 * branches, which the training data (with few missing values) never exercised.
 */
export function columnDefaults(
  header: string[],
  records: string[][],
  integerColumns: Set<string>,
): Map<string, number | string> {
  const out = new Map<string, number | string>();
  header.forEach((name, i) => {
    const present = records.map((r) => r[i] ?? "").filter((v) => v !== "" && v !== "NA");
    if (present.length === 0) return;
    if (present.every((v) => Number.isFinite(Number(v)))) {
      const nums = present.map(Number).sort((a, b) => a - b);
      const mid = nums.length / 2;
      const median = nums.length % 2 ? nums[Math.floor(mid)]! : (nums[mid - 1]! + nums[mid]!) / 2;
      out.set(name, integerColumns.has(name) ? Math.round(median) : median);
      return;
    }
    const counts = new Map<string, number>();
    for (const v of present) counts.set(v, (counts.get(v) ?? 0) + 1);
    out.set(name, [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0]);
  });
  return out;
}

/** Column names read as a location: geo comparables use them, and they are required together. */
export const isLatitudeColumn = (name: string): boolean => /^lat(itude)?$/i.test(name);
export const isLongitudeColumn = (name: string): boolean => /^(lon|lng|longitude)$/i.test(name);

/**
 * Pure: input fields for an AssetPipeline from the training columns. The `requiredCount` most used
 * features are required; a location is one thing, so when latitude or longitude is among them, both are.
 */
export function inputFields(
  columns: ColumnSpec[],
  integerColumns: Set<string>,
  ensemble: TreeEnsemble,
  requiredCount = 5,
  defaults: Map<string, number | string> = new Map(),
): InputField[] {
  const counts = splitCounts(ensemble);
  const ranked = counts.map((c, i) => ({ c, i })).sort((a, b) => b.c - a.c || a.i - b.i);
  const required = new Set(
    ranked
      .slice(0, requiredCount)
      .filter((r) => r.c > 0)
      .map((r) => r.i),
  );
  const geo = columns.flatMap((c, i) => (isLatitudeColumn(c.name) || isLongitudeColumn(c.name) ? [i] : []));
  if (geo.some((i) => required.has(i))) for (const i of geo) required.add(i);
  return columns.map((col, i): InputField => {
    const base = { name: fieldName(col.name), required: required.has(i), feature: col.name };
    const typical = required.has(i) ? undefined : defaults.get(col.name);
    if (col.kind === "categorical")
      return {
        ...base,
        type: "string",
        enum: [...col.categories].sort(),
        ...(typeof typical === "string" ? { default: typical } : {}),
      };
    if (col.min === 0 && col.max === 1 && integerColumns.has(col.name))
      return { ...base, type: "boolean", ...(typical !== undefined ? { default: typical === 1 } : {}) };
    return {
      ...base,
      type: integerColumns.has(col.name) ? "integer" : "number",
      min: col.min,
      max: col.max,
      ...(typeof typical === "number" ? { default: typical } : {}),
    };
  });
}

export interface ManifestOptions {
  assetClass: string;
  version: string;
  uri: string;
  sha256: string;
  currency: string;
  fields: InputField[];
  /** Latitude / longitude columns when the data has coordinates (geo comparables). */
  geo?: { latitude: string; longitude: string };
  /** Year / month columns of the sale, when the data has them: comparables get aged and time-adjusted by the sales index. */
  soldAt?: { year: string; month: string };
  target: string;
}

/** A ValuationModel and an AssetPipeline for a freshly trained model, as one YAML stream. */
export function renderManifests(o: ManifestOptions): string {
  const valuationModel = {
    apiVersion: "valora.dev/v1alpha1",
    kind: "ValuationModel",
    metadata: { name: o.assetClass, labels: { "valora.dev/asset-class": o.assetClass } },
    spec: {
      assetClass: o.assetClass,
      champion: { version: o.version, uri: o.uri, sha256: o.sha256 },
      serving: {
        minReplicas: 1,
        maxReplicas: 4,
        targetCPUUtilization: 70,
        batching: { maxBatchSize: 64, maxDelayMicros: 500 },
      },
    },
  };
  const dated = o.soldAt
    ? {
        soldAt: { year: fieldName(o.soldAt.year), month: fieldName(o.soldAt.month) },
        marketIndex: `sales-index.${o.assetClass}`,
      }
    : {};
  const similarity = o.fields
    .filter((f) => f.required && f.type !== "string" && f.type !== "boolean")
    .map((f) => ({ field: f.name, weight: 1 }));
  const assetPipeline = {
    apiVersion: "valora.dev/v1alpha1",
    kind: "AssetPipeline",
    metadata: { name: o.assetClass, labels: { "valora.dev/asset-class": o.assetClass } },
    spec: {
      assetClass: o.assetClass,
      currency: o.currency,
      model: { name: o.assetClass },
      input: { fields: o.fields },
      comparables: o.geo
        ? {
            mode: "geo",
            latitude: fieldName(o.geo.latitude),
            longitude: fieldName(o.geo.longitude),
            h3Resolution: 8,
            maxRings: 6,
            count: 8,
            maxAgeMonths: 60,
            similarity,
            blend: 0.15,
            ...dated,
          }
        : { mode: "attributes", count: 8, maxAgeMonths: 60, similarity, blend: 0.1, ...dated },
      explain: { topK: 5 },
      interval: { coverage: 0.8 },
      fallback: { mode: "comparables" },
      cache: { ttlSeconds: 3600 },
      // Landed sales: a positive price, dated no later than tomorrow; drift above 15% realised MdAPE.
      contract: { price: { min: 1 }, maxFutureDays: 1, driftMdapePct: 15 },
    },
  };
  return `# Generated by valora train (${o.target} model ${o.version}); edit freely.\n${stringify(valuationModel)}---\n${stringify(assetPipeline)}`;
}
