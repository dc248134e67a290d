import type { Field } from "./types";

/** What a form holds per field: text as typed (numbers too), so half-typed input is not lost. */
export type FormValues = Record<string, string>;

/**
 * Pure: the request's attributes from the form. Blank fields are left out (the pipeline applies
 * its defaults and reports what is missing); numbers are sent as numbers, booleans as booleans,
 * anything unparsable as typed so the API names the field in its 400.
 */
export function formToAttributes(
  fields: Field[],
  values: FormValues,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const f of fields) {
    const raw = values[f.name]?.trim();
    if (raw === undefined || raw === "") continue;
    if (f.type === "number" || f.type === "integer") {
      const n = Number(raw.replace(/,/g, ""));
      out[f.name] = Number.isFinite(n) ? n : raw;
    } else if (f.type === "boolean") out[f.name] = raw === "true";
    else out[f.name] = raw;
  }
  return out;
}

/** Pure: the hint under a field: its valid range and what the model saw in training. */
export function fieldHint(f: Field): string {
  const parts: string[] = [];
  if (f.min !== undefined && f.max !== undefined) parts.push(`valid ${f.min} to ${f.max}`);
  else if (f.min !== undefined) parts.push(`at least ${f.min}`);
  else if (f.max !== undefined) parts.push(`at most ${f.max}`);
  if (f.training?.min !== undefined || f.training?.max !== undefined)
    parts.push(`trained on ${f.training.min ?? "…"} to ${f.training.max ?? "…"}`);
  if (f.strict) parts.push("strict");
  return parts.join(" · ");
}

/** Pure: a field's label as people read it (`bsmt_full_bath` → `Bsmt full bath`). */
export function fieldLabel(name: string): string {
  const words = name
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .replace(/[_-]+/g, " ")
    .trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Pure: the header problems of a CSV for an asset class: required fields missing, columns it does not know. */
export function checkCsvHeader(fields: Field[], header: string[]): { missing: string[]; unknown: string[] } {
  const known = new Set(fields.flatMap((f) => [f.name, ...(f.deprecatedAliases ?? [])]));
  const given = new Set(header);
  return {
    missing: fields
      .filter((f) => f.required && f.default === undefined && !given.has(f.name))
      .map((f) => f.name),
    unknown: header.filter((h) => !known.has(h)),
  };
}

/**
 * Pure: a plausible asset of the class, for a first try: each field's default, else the middle of
 * its training range (whole for integers), else its first known category; booleans true.
 */
export function exampleValues(fields: Field[]): FormValues {
  const out: FormValues = {};
  for (const f of fields) {
    const t = f.training;
    const options = f.enum ?? t?.categories;
    if (f.default !== undefined) out[f.name] = String(f.default);
    else if (f.type === "boolean") out[f.name] = "true";
    else if (options?.length) out[f.name] = options[0]!;
    else if (t?.min !== undefined && t.max !== undefined) {
      const mid = (t.min + t.max) / 2;
      out[f.name] = String(f.type === "integer" ? Math.round(mid) : Number(mid.toFixed(6)));
    } else if (f.min !== undefined) out[f.name] = String(f.min);
  }
  return out;
}
