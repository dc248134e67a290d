import { createHash } from "node:crypto";
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

function coerce(field: InputField, raw: unknown, path: string): { value?: number | string | boolean; error?: FieldViolation } {
  const bad = (description: string) => ({ error: { field: path, description } });
  switch (field.type) {
    case "number":
    case "integer": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : Number.NaN;
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
      if (typeof raw !== "string" && typeof raw !== "number") return bad(`must be a string, got ${JSON.stringify(raw)}`);
      const s = String(raw).trim();
      if (!field.enum) return { value: s };
      const exact = field.enum.find((e) => e === s) ?? field.enum.find((e) => e.toLowerCase() === s.toLowerCase().replace(/[\s-]+/g, "_"));
      if (exact) return { value: exact };
      const hint = closest(s, field.enum);
      return bad(`must be one of ${field.enum.length <= 12 ? field.enum.join(", ") : `${field.enum.length} values`}${hint ? ` (did you mean ${hint}?)` : ""}, got ${JSON.stringify(s)}`);
    }
  }
}

/**
 * Pure: validates and normalises request attributes against the pipeline's declared fields —
 * types, ranges, enums (case- and separator-insensitive), required fields, defaults — and refuses
 * unknown attributes with a suggestion. Every problem is reported at once, each with its field.
 */
export function normaliseAttributes(fields: InputField[], attributes: Record<string, unknown>): Normalised {
  const violations: FieldViolation[] = [];
  const out: Normalised = {};
  const names = fields.map((f) => f.name);
  for (const key of Object.keys(attributes)) {
    if (!names.includes(key)) {
      const hint = closest(key, names);
      violations.push({ field: `attributes.${key}`, description: `unknown attribute${hint ? ` (did you mean ${hint}?)` : ""}` });
    }
  }
  for (const f of fields) {
    const raw = attributes[f.name];
    const path = `attributes.${f.name}`;
    if (raw === undefined || raw === null || raw === "") {
      if (f.default !== undefined) out[f.name] = f.default;
      else if (f.required) violations.push({ field: path, description: "is required" });
      continue;
    }
    const { value, error } = coerce(f, raw, path);
    if (error) violations.push(error);
    else if (value !== undefined) out[f.name] = value;
  }
  if (violations.length > 0) {
    throw new ValoraError("INVALID_ARGUMENT", `invalid attributes: ${violations.map((v) => `${v.field} ${v.description}`).join("; ")}`, { details: violations });
  }
  return out;
}

/** A stable key for an asset: its registry id, or a hash of its normalised attributes. */
export function assetKey(attrs: Normalised, assetId?: string): string {
  if (assetId) return `id:${assetId}`;
  const canonical = JSON.stringify(Object.keys(attrs).sort().map((k) => [k, attrs[k]]));
  return `attr:${createHash("sha256").update(canonical).digest("hex").slice(0, 24)}`;
}

