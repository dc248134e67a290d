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

/** A group of mutually exclusive 0/1 columns (one-hot) the AssetPipeline shows as one categorical field. */
export interface OneHotGroup {
  /** The field's name, e.g. `make`. */
  name: string;
  /** The training columns, e.g. `Buick`, `Cadillac`, ... */
  columns: string[];
  /** The most common value (its column is 1 most often): optional fields default to it. */
  typical: string;
}

/**
 * Pure: a named one-hot group checked against the data — every column present and 0/1, at most one
 * 1 per row (a row of all 0 is "none of these") — with its most common value. Throws what is wrong.
 */
export function oneHotGroup(
  name: string,
  columns: string[],
  header: string[],
  records: string[][],
): OneHotGroup {
  const at = columns.map((c) => header.indexOf(c));
  const absent = columns.filter((_, k) => at[k]! < 0);
  if (absent.length > 0) throw new Error(`one-hot ${name}: no column ${absent.join(", ")}`);
  const nonBinary = columns.filter((_, k) => !isBinary(records, at[k]!));
  if (nonBinary.length > 0) throw new Error(`one-hot ${name}: ${nonBinary.join(", ")} not 0/1`);
  const ones = at.map((i) => records.filter((r) => r[i] === "1").length);
  const clash = records.findIndex((r) => at.filter((i) => r[i] === "1").length > 1);
  if (clash >= 0)
    throw new Error(`one-hot ${name}: row ${clash + 1} has more than one of ${columns.join(", ")}`);
  const group = { name, columns, typical: "" };
  return { ...group, typical: valueOf(group, columns[ones.indexOf(Math.max(...ones))]!) };
}

const isBinary = (records: string[][], i: number): boolean =>
  records.every((r) => r[i] === "0" || r[i] === "1");

/**
 * Pure: one-hot groups in a CSV — runs of adjacent 0/1 columns with exactly one 1 per row (what
 * dummy encoding writes). A run sharing a prefix (`make_Buick`, `make_Saab`) is named by it;
 * others `one_hot_1`, `one_hot_2`, ... (name them with `--one-hot NAME=COL,...`).
 */
export function detectOneHotGroups(
  header: string[],
  records: string[][],
  exclude: Set<string>,
): OneHotGroup[] {
  const groups: OneHotGroup[] = [];
  let i = 0;
  while (i < header.length) {
    let end = -1;
    const sums = new Int32Array(records.length);
    for (let j = i; j < header.length && !exclude.has(header[j]!) && isBinary(records, j); j++) {
      let clash = false;
      records.forEach((r, k) => {
        sums[k]! += r[j] === "1" ? 1 : 0;
        if (sums[k]! > 1) clash = true;
      });
      if (clash) break;
      if (j > i && sums.every((x) => x === 1)) end = j;
    }
    // Two columns with one 1 per row are a boolean and its negation, unless named as a group (make_A, make_B).
    if (end < 0 || (end - i < 2 && !sharedPrefix(header.slice(i, end + 1)))) {
      i++;
      continue;
    }
    const columns = header.slice(i, end + 1);
    const prefix = sharedPrefix(columns);
    groups.push(
      oneHotGroup(prefix ? fieldName(prefix) : `one_hot_${groups.length + 1}`, columns, header, records),
    );
    i = end + 1;
  }
  return groups;
}

/** The `prefix` of columns all named `prefix_value`, if they are. */
const sharedPrefix = (columns: string[]): string | undefined => {
  const prefix = /^(.+?)_/.exec(columns[0]!)?.[1];
  return prefix && columns.every((c) => c.startsWith(`${prefix}_`)) ? prefix : undefined;
};

/** A one-hot column's value in its field: `make_Buick` → `Buick`, `Buick` → `Buick`. */
const valueOf = (group: { columns: string[] }, column: string): string => {
  const prefix = sharedPrefix(group.columns);
  return prefix ? column.slice(prefix.length + 1) : column;
};

/**
 * Pure: the validity bounds of a numeric column — what can be true of any such asset, not what the
 * training data happened to hold: coordinates within the globe, and counts, areas, years and prices
 * (columns never negative in training) at least 0. Everything else is the training domain's business.
 */
export function validityOf(column: string, trainingMin: number): { min?: number; max?: number } {
  if (isLatitudeColumn(column)) return { min: -90, max: 90 };
  if (isLongitudeColumn(column)) return { min: -180, max: 180 };
  return trainingMin >= 0 ? { min: 0 } : {};
}

/**
 * Pure: input fields for an AssetPipeline from the training columns. Each carries its validity
 * (breaking it is a 400) and its training domain (outside it, a warning). One-hot groups become one
 * enum-like field (`oneHot`), their old per-column names kept as deprecated aliases. The
 * `requiredCount` most used features (a group counting as one) are required; a location is one
 * thing, so when latitude or longitude is among them, both are.
 */
export function inputFields(
  columns: ColumnSpec[],
  integerColumns: Set<string>,
  ensemble: TreeEnsemble,
  requiredCount = 5,
  defaults: Map<string, number | string> = new Map(),
  groups: OneHotGroup[] = [],
): InputField[] {
  const counts = splitCounts(ensemble);
  const groupOf = new Map(groups.flatMap((g) => g.columns.map((c) => [c, g] as const)));
  // One entry per field: a plain column, or a group at the position of its first column.
  const entries: { column?: ColumnSpec; group?: OneHotGroup; uses: number; at: number }[] = [];
  const placed = new Set<OneHotGroup>();
  columns.forEach((col, i) => {
    const group = groupOf.get(col.name);
    if (!group) return entries.push({ column: col, uses: counts[i]!, at: entries.length });
    if (placed.has(group)) return;
    placed.add(group);
    const uses = columns.reduce((n, c, k) => n + (group.columns.includes(c.name) ? counts[k]! : 0), 0);
    entries.push({ group, uses, at: entries.length });
  });
  const ranked = [...entries].sort((a, b) => b.uses - a.uses || a.at - b.at);
  const required = new Set(ranked.slice(0, requiredCount).filter((e) => e.uses > 0));
  const geo = entries.filter(
    (e) => e.column && (isLatitudeColumn(e.column.name) || isLongitudeColumn(e.column.name)),
  );
  if (geo.some((e) => required.has(e))) for (const e of geo) required.add(e);
  return entries.map((e): InputField => {
    if (e.group) return oneHotField(e.group, required.has(e));
    const col = e.column!;
    const base = { name: fieldName(col.name), required: required.has(e), feature: col.name };
    const typical = required.has(e) ? undefined : defaults.get(col.name);
    if (col.kind === "categorical")
      return {
        ...base,
        type: "string",
        training: { categories: [...col.categories].sort() },
        ...(typeof typical === "string" ? { default: typical } : {}),
      };
    if (col.min === 0 && col.max === 1 && integerColumns.has(col.name))
      return { ...base, type: "boolean", ...(typical !== undefined ? { default: typical === 1 } : {}) };
    return {
      ...base,
      type: integerColumns.has(col.name) ? "integer" : "number",
      ...validityOf(col.name, col.min),
      training: { min: col.min, max: col.max },
      ...(typeof typical === "number" ? { default: typical } : {}),
    };
  });
}

/** One categorical field for a one-hot group; an optional one defaults to the most common value. */
function oneHotField(group: OneHotGroup, required: boolean): InputField {
  const values = group.columns.map((c) => valueOf(group, c));
  return {
    name: group.name,
    type: "string",
    required,
    oneHot: Object.fromEntries(group.columns.map((c, k) => [values[k]!, c])),
    aliases: Object.fromEntries(group.columns.map((c, k) => [fieldName(c), values[k]!])),
    training: { categories: [...values].sort() },
    ...(required ? {} : { default: group.typical }),
  };
}

/**
 * Pure: the AssetPipeline fields for a trained model, as `valora train --emit-manifests` writes
 * them — integer columns, typical values for defaults, one-hot groups (named ones checked, others
 * detected among the remaining columns) — from the rows it was trained on.
 */
export function pipelineFields(
  header: string[],
  records: string[][],
  trained: { card: { data: { columns: ColumnSpec[] } }; ensemble: TreeEnsemble },
  o: { target: string; exclude?: string[]; oneHot?: { name: string; columns: string[] }[] },
): { fields: InputField[]; groups: OneHotGroup[] } {
  const integerColumns = new Set(
    header.filter((_, i) => records.every((r) => r[i] === "" || r[i] === "NA" || /^-?\d+$/.test(r[i] ?? ""))),
  );
  const named = (o.oneHot ?? []).map((g) => oneHotGroup(g.name, g.columns, header, records));
  const taken = new Set([o.target, ...(o.exclude ?? []), ...named.flatMap((g) => g.columns)]);
  const groups = [...named, ...detectOneHotGroups(header, records, taken)];
  const defaults = columnDefaults(header, records, integerColumns);
  return {
    fields: inputFields(trained.card.data.columns, integerColumns, trained.ensemble, 5, defaults, groups),
    groups,
  };
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
