import type { DenseExplanation, ExplanationOut } from "./model-client.js";
import { sourcesOf } from "./features.js";
import type { InputField, Normalised } from "./input.js";

/**
 * Pure: an explanation told in the asset class's terms, from every contribution of a row in the
 * model's feature order (`features`, with the `row` sent). Each contribution names the input field
 * its feature reads and, for a categorical field, the category the client sent; a one-hot group
 * (`oneHot: {Saab: Saab, ...}`) becomes one contribution, the sum of its features' (exact: SHAP
 * values add), named by the field, valued 1 when a known category was sent and 0 when none was.
 * Largest absolute first (ties in feature order), cut to `topK` (0 = all); only those are built.
 */
export function explanationByField(
  e: DenseExplanation,
  features: readonly string[],
  row: ArrayLike<number>,
  fields: InputField[],
  attrs: Normalised,
  topK: number,
): ExplanationOut {
  const bySource = sourcesOf(fields);
  // One slot per contribution told: a feature, or a one-hot group (the first feature of it stands for it).
  const first: number[] = [];
  const sums: number[] = [];
  const groups = new Map<string, number>();
  for (let i = 0; i < e.contributions.length; i++) {
    const source = bySource.get(features[i] ?? "");
    if (source?.hot !== undefined) {
      const slot = groups.get(source.field);
      if (slot !== undefined) {
        sums[slot]! += e.contributions[i]!;
        continue;
      }
      groups.set(source.field, sums.length);
    }
    first.push(i);
    sums.push(e.contributions[i]!);
  }
  const order = Array.from(sums.keys()).sort((a, b) => Math.abs(sums[b]!) - Math.abs(sums[a]!) || a - b);
  const told = (slot: number): ExplanationOut["contributions"][number] => {
    const i = first[slot]!;
    const feature = features[i] ?? `f${i}`;
    const contribution = sums[slot]!;
    const source = bySource.get(feature);
    if (!source) return { feature, value: row[i]!, contribution };
    const sent = attrs[source.field];
    const category = typeof sent === "string" ? { category: sent } : {};
    if (source.hot === undefined)
      return { feature, value: row[i]!, contribution, field: source.field, ...category };
    const known = typeof sent === "string" && isKnown(fields, source.field, sent);
    return { feature: source.field, value: known ? 1 : 0, contribution, field: source.field, ...category };
  };
  return {
    baseValue: e.baseValue,
    output: e.output,
    method: e.method,
    contributions: (topK > 0 ? order.slice(0, topK) : order).map(told),
  };
}

const isKnown = (fields: InputField[], field: string, value: string): boolean =>
  Object.hasOwn(fields.find((f) => f.name === field)?.oneHot ?? {}, value);
