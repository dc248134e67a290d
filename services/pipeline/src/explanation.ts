import type { DenseExplanation, ExplanationOut } from "./model-client.js";
import { sourcesOf } from "./features.js";
import type { InputField, Normalised } from "./input.js";

/** Pure: whether an explanation must be asked for in full to be told by field (a one-hot group spans several features). */
export const foldsFeatures = (fields: InputField[]): boolean =>
  fields.some((f) => f.oneHot && Object.keys(f.oneHot).length > 0);

/**
 * Pure: an explanation told in the asset class's terms. Each contribution names the input field
 * its feature reads and, for a categorical field, the category the client sent; a one-hot group
 * (`oneHot: {Saab: Saab, ...}`) becomes one contribution, the sum of its features' (exact: SHAP
 * values add), named by the field, valued 1 when a known category was sent and 0 when none was.
 * Sorted largest absolute first and cut to `topK` (0 = all). Base value and output are unchanged.
 */
export function explanationByField(
  e: ExplanationOut,
  fields: InputField[],
  attrs: Normalised,
  topK: number,
): ExplanationOut {
  const bySource = sourcesOf(fields);
  const folded = new Map<string, ExplanationOut["contributions"][number]>();
  const out: ExplanationOut["contributions"] = [];
  for (const c of e.contributions) {
    const source = bySource.get(c.feature);
    if (!source) {
      out.push(c);
      continue;
    }
    const sent = attrs[source.field];
    const category = typeof sent === "string" ? { category: sent } : {};
    if (source.hot === undefined) {
      out.push({ ...c, field: source.field, ...category });
      continue;
    }
    const group = folded.get(source.field);
    if (group) {
      group.contribution += c.contribution;
      continue;
    }
    const known = typeof sent === "string" && isKnown(fields, source.field, sent);
    const entry = {
      feature: source.field,
      value: known ? 1 : 0,
      contribution: c.contribution,
      field: source.field,
      ...category,
    };
    folded.set(source.field, entry);
    out.push(entry);
  }
  out.sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
  return { ...e, contributions: topK > 0 ? out.slice(0, topK) : out };
}

const isKnown = (fields: InputField[], field: string, value: string): boolean =>
  Object.hasOwn(fields.find((f) => f.name === field)?.oneHot ?? {}, value);

/** Pure: a dense explanation named by the model's features, with the values the row sent (NaN: missing). */
export const namedExplanation = (
  e: DenseExplanation,
  features: readonly string[],
  row: ArrayLike<number>,
): ExplanationOut => ({
  baseValue: e.baseValue,
  output: e.output,
  method: e.method,
  contributions: Array.from(e.contributions, (contribution, i) => ({
    feature: features[i] ?? `f${i}`,
    value: row[i]!,
    contribution,
  })),
});
