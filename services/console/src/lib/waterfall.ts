import type { Explanation } from "./types";

export interface WaterfallStep {
  label: string;
  /** Where the bar starts and ends on the value axis (money). */
  from: number;
  to: number;
  kind: "base" | "up" | "down" | "total";
}

/**
 * Pure: the waterfall from the model's base value to the valuation, in money: the `topK` largest
 * contributions in turn, the rest as one "other features" step, the comparables' correction when
 * the value differs from the model's output, then the value. On a log scale (a model of log
 * prices) contributions add in log space and multiply in money, so each step is measured where
 * it applies and the steps still meet exactly at the value.
 */
export function waterfallSteps(e: Explanation, value: number, topK = 8): WaterfallStep[] {
  const money = e.scale === "log" ? Math.exp : (x: number) => x;
  const sorted = [...e.contributions].sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
  const shown = sorted.slice(0, topK);
  // Contributions are the model's top K; what they leave of output − base is the rest.
  const rest = e.output - e.baseValue - shown.reduce((s, c) => s + c.contribution, 0);
  const steps: WaterfallStep[] = [{ label: "Base value", from: 0, to: money(e.baseValue), kind: "base" }];
  let at = e.baseValue;
  const push = (label: string, delta: number) => {
    const [from, to] = [money(at), money(at + delta)];
    steps.push({ label, from, to, kind: to >= from ? "up" : "down" });
    at += delta;
  };
  for (const c of shown) push(contributionLabel(c), c.contribution);
  if (Math.abs(rest) > 1e-9) push("Other features", rest);
  const modelValue = money(e.output);
  if (Math.abs(value - modelValue) > Math.max(1, Math.abs(value) * 1e-4))
    steps.push({
      label: "Comparables' correction",
      from: modelValue,
      to: value,
      kind: value >= modelValue ? "up" : "down",
    });
  steps.push({ label: "Value", from: 0, to: value, kind: "total" });
  return steps;
}

const formatFeature = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

/** Pure: a contribution as a person wrote the asset: the field and the category sent, else the model's feature and value. */
export function contributionLabel(c: Explanation["contributions"][number]): string {
  if (c.category) return `${c.field ?? c.feature} = ${c.category}`;
  // A one-hot field with none of its categories sent.
  if (c.field && c.field === c.feature && c.value === 0) return `${c.field} = none`;
  return `${c.field ?? c.feature} = ${formatFeature(c.value)}`;
}
