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

/**
 * Pure: the model input row for normalised attributes. Each feature takes the value of the field
 * declaring it (`feature:`); categories become their training codes, booleans 1/0, and anything
 * absent or unseen NaN, which the trees route as missing.
 */
export function featureRow(schema: ModelSchema, fields: InputField[], attrs: Normalised): Float32Array {
  const byFeature = new Map(fields.map((f) => [f.feature, f]));
  return Float32Array.from(schema.features, (feature) => {
    const field = byFeature.get(feature);
    const v = field ? attrs[field.name] : undefined;
    if (v === undefined) return Number.NaN;
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "number") return v;
    return schema.encodings[feature]?.[v] ?? Number.NaN;
  });
}

export function toValue(schema: ModelSchema, output: number): number {
  return schema.targetTransform === "log" ? Math.exp(output) : output;
}
