import type { InputField, Normalised } from "./input.js";

/** What a pipeline needs from a model's ONNX metadata to build its input row. */
export interface ModelSchema {
  /** Feature names in input order (valora.features). */
  features: string[];
  /** Category codes per categorical feature (valora.encodings). */
  encodings: Record<string, Record<string, number>>;
  /** How the model's output maps back to a value (valora.target). */
  targetTransform: "log" | "none";
}

/** Parses the metadata the trainer writes; models without it get positional features and no transform. */
export function modelSchemaFrom(metadata: Record<string, string>, width: number): ModelSchema {
  const parse = <T>(key: string, fallback: T): T => {
    try {
      return metadata[key] ? (JSON.parse(metadata[key]) as T) : fallback;
    } catch {
      return fallback;
    }
  };
  const features = parse<string[]>(
    "valora.features",
    Array.from({ length: width }, (_, i) => `f${i}`),
  );
  const target = parse<{ transform?: string }>("valora.target", {});
  return {
    features,
    encodings: parse("valora.encodings", {}),
    targetTransform: target.transform === "log" ? "log" : "none",
  };
}

/** How each model feature is read from attributes: a field's value, or one value of a one-hot field. */
export type FeatureSource = { field: string; hot?: string } | undefined;

const sources = new WeakMap<InputField[], Map<string, FeatureSource>>();

/** Which field (and, for a one-hot group, which of its values) each model feature reads; memoised per field list. */
export function sourcesOf(fields: InputField[]): Map<string, FeatureSource> {
  let m = sources.get(fields);
  if (m) return m;
  m = new Map();
  for (const f of fields) {
    if (f.feature) m.set(f.feature, { field: f.name });
    for (const [value, feature] of Object.entries(f.oneHot ?? {}))
      m.set(feature, { field: f.name, hot: value });
  }
  sources.set(fields, m);
  return m;
}

/**
 * Pure: the model input row for normalised attributes. Each feature takes the value of the field
 * declaring it (`feature:`); categories become their training codes, booleans 1/0, and anything
 * absent or unseen NaN, which the trees route as missing. A one-hot field sets its value's
 * feature to 1 and the others of its group to 0 (all 0 when absent or unseen: none of the known values).
 */
export function featureRow(schema: ModelSchema, fields: InputField[], attrs: Normalised): Float32Array {
  const bySource = sourcesOf(fields);
  return Float32Array.from(schema.features, (feature) => {
    const source = bySource.get(feature);
    const v = source ? attrs[source.field] : undefined;
    if (source?.hot !== undefined) return v === source.hot ? 1 : 0;
    if (v === undefined) return Number.NaN;
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "number") return v;
    return schema.encodings[feature]?.[v] ?? Number.NaN;
  });
}

export function toValue(schema: ModelSchema, output: number): number {
  return schema.targetTransform === "log" ? Math.exp(output) : output;
}
