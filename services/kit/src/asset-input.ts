import { hash } from "node:crypto";
import { ValoraError, type FieldViolation } from "./errors.js";

/** One declared input field of an AssetPipeline (spec.input.fields[]). */
export interface InputField {
  name: string;
  type: "number" | "integer" | "string" | "boolean";
  required: boolean;
  /** Validity: what can be true of such an asset. Outside it, a 400 naming the field. */
  min?: number;
  max?: number;
  /** Validity of a string field whose domain is closed: the values it can take. */
  enum?: string[];
  /** The model feature (training column) the field feeds; absent when `oneHot` maps it. */
  feature?: string;
  /** A categorical field the model sees as one-hot features: value → feature (others 0; absent: all 0). */
  oneHot?: Record<string, string>;
  /** Deprecated attribute names read as a value of this field when true (old one-hot booleans). */
  aliases?: Record<string, string>;
  /** The training domain: range and categories the model saw. Outside it, valued with a warning. */
  training?: { min?: number; max?: number; categories?: string[] };
  /** Refuse (400) values outside the training domain instead of warning. */
  strict?: boolean;
  default?: number | string | boolean;
}

export type Normalised = Record<string, number | string | boolean>;

/** Stable codes of what an answer warns about (valued anyway). */
export type ValuationWarningCode = "OUTSIDE_TRAINING_RANGE" | "UNSEEN_CATEGORY" | "DEPRECATED_ATTRIBUTE";

export interface ValuationWarning {
  /** The attribute at fault, e.g. `attributes.mileage`. */
  field: string;
  code: ValuationWarningCode;
  message: string;
}

/** The categories a string field's model knows: its one-hot values, else its training categories. */
export const knownCategories = (f: InputField): string[] | undefined =>
  f.oneHot ? Object.keys(f.oneHot) : f.training?.categories;

/** Pure: a value's canonical spelling among `values` (exact, else case- and separator-insensitive). */
function canonical(values: string[], s: string): string | undefined {
  const loose = (v: string) => v.toLowerCase().replace(/[\s_-]+/g, "_");
  return values.find((e) => e === s) ?? values.find((e) => loose(e) === loose(s));
}

/** Pure: why a normalised value lies outside its field's training domain, or undefined when inside. */
function outsideTraining(f: InputField, v: number | string | boolean): ValuationWarning | undefined {
  const t = f.training;
  const field = `attributes.${f.name}`;
  if (typeof v === "number" && t) {
    const range = `${t.min ?? "-∞"}..${t.max ?? "∞"}`;
    if ((t.min !== undefined && v < t.min) || (t.max !== undefined && v > t.max))
      return {
        field,
        code: "OUTSIDE_TRAINING_RANGE",
        message: `${v} is outside the range the model was trained on (${range}); valued by extrapolation, with a wider interval`,
      };
    return undefined;
  }
  const known = typeof v === "string" ? knownCategories(f) : undefined;
  if (known && !known.includes(v as string)) {
    const hint = closest(v as string, known);
    return {
      field,
      code: "UNSEEN_CATEGORY",
      message: `${JSON.stringify(v)} was not seen in training${hint ? ` (did you mean ${hint}?)` : ""}; valued as if unknown, with a wider interval`,
    };
  }
  return undefined;
}

/**
 * Pure: the training-domain warnings of normalised attributes — numbers outside the range the
 * model saw, categories it never saw. What a pipeline attaches to an answer (and widens its
 * interval for); strict fields never get here, they were refused.
 */
export function domainWarnings(fields: InputField[], attrs: Normalised): ValuationWarning[] {
  const out: ValuationWarning[] = [];
  for (const f of fields) {
    const v = attrs[f.name];
    if (v === undefined || (!f.training && !f.oneHot)) continue;
    const w = outsideTraining(f, v);
    if (w) out.push(w);
  }
  return out;
}

function closest(name: string, candidates: string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0]!;
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const tmp = d[j]!;
        d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = tmp;
      }
    }
    return d[b.length]!;
  };
  const best = candidates.map((c) => ({ c, d: dist(name, c) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(2, Math.floor(name.length / 4)) ? best.c : undefined;
}

function coerce(
  field: InputField,
  raw: unknown,
  path: string,
): { value?: number | string | boolean; error?: FieldViolation } {
  const bad = (description: string) => ({ error: { field: path, description } });
  switch (field.type) {
    case "number":
    case "integer": {
      const n =
        typeof raw === "number"
          ? raw
          : typeof raw === "string" && raw.trim() !== ""
            ? Number(raw)
            : Number.NaN;
      if (!Number.isFinite(n)) return bad(`must be a number, got ${JSON.stringify(raw)}`);
      if (field.type === "integer" && !Number.isInteger(n)) return bad(`must be an integer, got ${n}`);
      if (field.min !== undefined && n < field.min) return bad(`must be at least ${field.min}, got ${n}`);
      if (field.max !== undefined && n > field.max) return bad(`must be at most ${field.max}, got ${n}`);
      return { value: n };
    }
    case "boolean": {
      if (raw === true || raw === 1 || raw === "true" || raw === "1") return { value: true };
      if (raw === false || raw === 0 || raw === "false" || raw === "0") return { value: false };
      return bad(`must be true or false, got ${JSON.stringify(raw)}`);
    }
    case "string": {
      if (typeof raw !== "string" && typeof raw !== "number")
        return bad(`must be a string, got ${JSON.stringify(raw)}`);
      const s = String(raw).trim();
      if (!field.enum) {
        const known = knownCategories(field);
        return { value: (known && canonical(known, s)) ?? s };
      }
      const exact = canonical(field.enum, s);
      if (exact) return { value: exact };
      const hint = closest(s, field.enum);
      const allowed = field.enum.length <= 12 ? field.enum.join(", ") : `${field.enum.length} values`;
      const suggestion = hint ? ` (did you mean ${hint}?)` : "";
      return bad(`must be one of ${allowed}${suggestion}, got ${JSON.stringify(s)}`);
    }
  }
}

/** What validating against one field list needs, worked out once per list (fields never change in place). */
interface InputPlan {
  names: Set<string>;
  nameList: string[];
  paths: string[];
  /** Field indices in key order (the order assetKey sorts names in). */
  keyOrder: number[];
  /** Per field, `["name",`: the start of its pair in the canonical form. */
  pairStart: string[];
  /** Per field, the pair for its default (most fields of a request hold theirs). */
  defaultPair: (string | undefined)[];
  /** Per field, the whole pair for each enum value, so known values are not re-encoded. */
  enumPairs: Map<unknown, string>[];
  /** Deprecated attribute names: the field they set and the value they stand for when true. */
  aliasOf: Map<string, { index: number; value: string }>;
  /** Names a misspelt attribute may be meant as (fields first, then aliases). */
  suggestions: string[];
}

const plans = new WeakMap<InputField[], InputPlan>();

function planOf(fields: InputField[]): InputPlan {
  let plan = plans.get(fields);
  if (plan) return plan;
  const nameList = fields.map((f) => f.name);
  const sorted = [...nameList].sort();
  plan = {
    names: new Set(nameList),
    nameList,
    paths: nameList.map((n) => `attributes.${n}`),
    keyOrder: sorted.map((n) => nameList.indexOf(n)),
    pairStart: nameList.map((n) => `[${JSON.stringify(n)},`),
    defaultPair: fields.map((f) =>
      f.default !== undefined ? JSON.stringify([f.name, f.default]) : undefined,
    ),
    enumPairs: fields.map(
      (f) =>
        new Map<unknown, string>(
          (f.enum ?? knownCategories(f) ?? []).map((v) => [v, JSON.stringify([f.name, v])]),
        ),
    ),
    aliasOf: new Map(
      fields.flatMap((f, index) =>
        Object.entries(f.aliases ?? {}).map(([alias, value]) => [alias, { index, value }] as const),
      ),
    ),
    suggestions: [...nameList, ...fields.flatMap((f) => Object.keys(f.aliases ?? {}))],
  };
  plans.set(fields, plan);
  return plan;
}

interface Validated {
  values: (number | string | boolean | undefined)[];
  /** Deprecated attribute names used (the fields' training-domain warnings come from domainWarnings). */
  warnings?: ValuationWarning[];
}

/**
 * Reads deprecated attribute names (old one-hot booleans): `buick: true` stands for `make: Buick`.
 * Returns the values they set per field index, with a deprecation warning per name used.
 */
function readAliases(
  plan: InputPlan,
  key: string,
  raw: unknown,
  set: Map<number, string>,
  violations: FieldViolation[],
  warnings: ValuationWarning[],
  fields: InputField[],
): void {
  const alias = plan.aliasOf.get(key)!;
  const target = fields[alias.index]!.name;
  warnings.push({
    field: `attributes.${key}`,
    code: "DEPRECATED_ATTRIBUTE",
    message: `"${key}" is deprecated and will be removed: send ${target}: ${JSON.stringify(alias.value)}`,
  });
  const on = coerce({ name: key, type: "boolean", required: false }, raw, `attributes.${key}`);
  if (on.error) violations.push(on.error);
  else if (on.value === true) {
    const prior = set.get(alias.index);
    if (prior !== undefined && prior !== alias.value)
      violations.push({
        field: `attributes.${key}`,
        description: `conflicts with another attribute setting ${target} to ${JSON.stringify(prior)}`,
      });
    set.set(alias.index, alias.value);
  }
}

function validate(fields: InputField[], plan: InputPlan, attributes: Record<string, unknown>): Validated {
  const violations: FieldViolation[] = [];
  let aliased: Map<number, string> | undefined;
  let warnings: ValuationWarning[] | undefined;
  for (const key of Object.keys(attributes)) {
    if (plan.names.has(key)) continue;
    if (plan.aliasOf.has(key)) {
      readAliases(
        plan,
        key,
        attributes[key],
        (aliased ??= new Map<number, string>()),
        violations,
        (warnings ??= []),
        fields,
      );
      continue;
    }
    const hint = closest(key, plan.suggestions);
    violations.push({
      field: `attributes.${key}`,
      description: `unknown attribute${hint ? ` (did you mean ${hint}?)` : ""}`,
    });
  }
  const values = new Array<number | string | boolean | undefined>(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    let raw = attributes[f.name];
    const alias = aliased?.get(i);
    if (raw === undefined || raw === null || raw === "") raw = alias;
    if (raw === undefined || raw === null || raw === "") {
      if (f.default !== undefined) values[i] = f.default;
      else if (f.required) violations.push({ field: plan.paths[i]!, description: "is required" });
      continue;
    }
    const { value, error } = coerce(f, raw, plan.paths[i]!);
    if (error) violations.push(error);
    else if (alias !== undefined && value !== alias)
      violations.push({
        field: plan.paths[i]!,
        description: `is ${JSON.stringify(value)} but a deprecated attribute says ${JSON.stringify(alias)}`,
      });
    else {
      const refused = f.strict && value !== undefined ? outsideTraining(f, value) : undefined;
      if (!refused) values[i] = value;
      else
        violations.push({
          field: plan.paths[i]!,
          description: `${refused.message.replace(/; valued .*$/, "")}, and the field is strict`,
        });
    }
  }
  if (violations.length > 0) {
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `invalid attributes: ${violations.map((v) => `${v.field} ${v.description}`).join("; ")}`,
      { details: violations },
    );
  }
  return warnings ? { values, warnings } : { values };
}

function attributesOf(plan: InputPlan, values: (number | string | boolean | undefined)[]): Normalised {
  const out: Normalised = {};
  for (let i = 0; i < values.length; i++) if (values[i] !== undefined) out[plan.nameList[i]!] = values[i]!;
  return out;
}

/**
 * Pure: validates and normalises request attributes against the pipeline's declared fields —
 * types, ranges, enums (case- and separator-insensitive), required fields, defaults — and refuses
 * unknown attributes with a suggestion. Every problem is reported at once, each with its field.
 */
export function normaliseAttributes(fields: InputField[], attributes: Record<string, unknown>): Normalised {
  const plan = planOf(fields);
  return attributesOf(plan, validate(fields, plan, attributes).values);
}

/** A stable key for an asset: its registry id, or a hash of its normalised attributes. */
export function assetKey(attrs: Normalised, assetId?: string): string {
  if (assetId) return `id:${assetId}`;
  return keyOf(
    JSON.stringify(
      Object.keys(attrs)
        .sort()
        .map((k) => [k, attrs[k]]),
    ),
  );
}

const keyOf = (canonical: string): string => `attr:${hash("sha256", canonical, "hex").slice(0, 24)}`;

/**
 * normaliseAttributes and assetKey in one pass, for the valuation hot path: the same attributes
 * and the same key, with the canonical form built from per-field pieces worked out once (sorting
 * and re-encoding some seventy fields per request cost more than the rest of a cached valuation's
 * bookkeeping). The attributes object is built when asked for: a cache hit needs only the key.
 */
export function normaliseWithKey(
  fields: InputField[],
  attributes: Record<string, unknown>,
  assetId?: string,
): { key: string; attributes: () => Normalised; warnings?: ValuationWarning[] } {
  const plan = planOf(fields);
  const { values, warnings } = validate(fields, plan, attributes);
  let normalised: Normalised | undefined;
  const lazy = () => (normalised ??= attributesOf(plan, values));
  const extra = warnings ? { warnings } : {};
  if (assetId) return { key: `id:${assetId}`, attributes: lazy, ...extra };
  const pairs: string[] = [];
  for (const i of plan.keyOrder) {
    const v = values[i];
    if (v === undefined) continue;
    // JSON of a finite number or a boolean is its string; strings are escaped (known ones looked up).
    pairs.push(
      (v === fields[i]!.default ? plan.defaultPair[i] : plan.enumPairs[i]!.get(v)) ??
        `${plan.pairStart[i]}${typeof v === "string" ? JSON.stringify(v) : String(v)}]`,
    );
  }
  return { key: keyOf(`[${pairs.join(",")}]`), attributes: lazy, ...extra };
}

/** A column header as matched to attributes: case and separators ignored (`Gr_Liv_Area` = `gr-liv-area`). */
export const columnKey = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, "");

/** What a column holds: an attribute, or one value of a one-hot field (the column is 1 for it). */
export type ColumnTarget = { attribute: string; hot?: string };

/**
 * Pure: what each column key names — a field by its name or the model feature it feeds, one value
 * of a one-hot field by its feature (`Buick` → `make: Buick` when 1: training data as it is
 * written), or a deprecated alias — for CSV jobs and ingested batches.
 */
export function attributeColumns(fields: InputField[]): Map<string, ColumnTarget> {
  const byKey = new Map<string, ColumnTarget>();
  for (const f of fields) {
    for (const alias of Object.keys(f.aliases ?? {})) byKey.set(columnKey(alias), { attribute: alias });
    for (const [value, feature] of Object.entries(f.oneHot ?? {}))
      byKey.set(columnKey(feature), { attribute: f.name, hot: value });
    if (f.feature) byKey.set(columnKey(f.feature), { attribute: f.name });
    byKey.set(columnKey(f.name), { attribute: f.name });
  }
  return byKey;
}

/** Pure: puts a cell into attributes as its column says; a one-hot column sets its field only when 1. */
export function putColumn(into: Record<string, unknown>, target: ColumnTarget, value: unknown): void {
  if (target.hot === undefined) into[target.attribute] = value;
  else if (value === 1 || value === true || value === "1" || String(value).toLowerCase() === "true")
    into[target.attribute] = target.hot;
}
