import { hash } from "node:crypto";
import { ValoraError, type FieldViolation } from "./errors.js";

/** One declared input field of an AssetPipeline (spec.input.fields[]). */
export interface InputField {
  name: string;
  type: "number" | "integer" | "string" | "boolean";
  required: boolean;
  min?: number;
  max?: number;
  enum?: string[];
  feature: string;
  default?: number | string | boolean;
}

export type Normalised = Record<string, number | string | boolean>;

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
      if (!field.enum) return { value: s };
      const exact =
        field.enum.find((e) => e === s) ??
        field.enum.find((e) => e.toLowerCase() === s.toLowerCase().replace(/[\s-]+/g, "_"));
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
      (f) => new Map<unknown, string>((f.enum ?? []).map((v) => [v, JSON.stringify([f.name, v])])),
    ),
  };
  plans.set(fields, plan);
  return plan;
}

function validate(
  fields: InputField[],
  plan: InputPlan,
  attributes: Record<string, unknown>,
): (number | string | boolean | undefined)[] {
  const violations: FieldViolation[] = [];
  for (const key of Object.keys(attributes)) {
    if (!plan.names.has(key)) {
      const hint = closest(key, plan.nameList);
      violations.push({
        field: `attributes.${key}`,
        description: `unknown attribute${hint ? ` (did you mean ${hint}?)` : ""}`,
      });
    }
  }
  const values = new Array<number | string | boolean | undefined>(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const raw = attributes[f.name];
    if (raw === undefined || raw === null || raw === "") {
      if (f.default !== undefined) values[i] = f.default;
      else if (f.required) violations.push({ field: plan.paths[i]!, description: "is required" });
      continue;
    }
    const { value, error } = coerce(f, raw, plan.paths[i]!);
    if (error) violations.push(error);
    else values[i] = value;
  }
  if (violations.length > 0) {
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `invalid attributes: ${violations.map((v) => `${v.field} ${v.description}`).join("; ")}`,
      { details: violations },
    );
  }
  return values;
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
  return attributesOf(plan, validate(fields, plan, attributes));
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
): { key: string; attributes: () => Normalised } {
  const plan = planOf(fields);
  const values = validate(fields, plan, attributes);
  let normalised: Normalised | undefined;
  const lazy = () => (normalised ??= attributesOf(plan, values));
  if (assetId) return { key: `id:${assetId}`, attributes: lazy };
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
  return { key: keyOf(`[${pairs.join(",")}]`), attributes: lazy };
}
