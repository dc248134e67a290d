import { parse } from "csv-parse/sync";
import { ValoraError, excludedBy, type RowFilter } from "@valora/kit";

/** How one CSV column feeds the model. */
export type ColumnSpec =
  | { name: string; kind: "numeric"; min: number; max: number; missing: number }
  | {
      name: string;
      kind: "categorical";
      categories: string[];
      codes: Record<string, number>;
      missing: number;
    };

export interface Dataset {
  columns: ColumnSpec[];
  /** Row-major feature matrix, NaN for missing values. */
  features: Float64Array;
  rows: number;
  /** Raw target (e.g. price). */
  target: Float64Array;
}

const MISSING = new Set(["", "NA", "N/A", "null", "NULL", "NaN", "nan"]);

export function parseCsv(text: string): { header: string[]; records: string[][] } {
  let records: string[][];
  try {
    const parsed: unknown = parse(text, { relax_column_count: false, skip_empty_lines: true, trim: true });
    records = parsed as string[][];
  } catch (err) {
    throw new ValoraError("INVALID_ARGUMENT", `CSV: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  const header = records.shift();
  if (!header || header.length === 0) throw new ValoraError("INVALID_ARGUMENT", "CSV has no header row");
  return { header, records };
}

export type { RowFilter };

/**
 * Pure: the records a row filter keeps. IAAO-style sales validation: a model of market value learns
 * from, and is scored on, qualified (arm's-length) sales only; the filter is recorded in the card.
 */
export function keepRows(header: string[], records: string[][], filter: RowFilter = {}): string[][] {
  const at = new Map<string, number>();
  for (const column of Object.keys(filter)) {
    const i = header.indexOf(column);
    if (i < 0)
      throw new ValoraError("INVALID_ARGUMENT", `row filter column "${column}" is not in the CSV header`, {
        details: [{ field: "excludeRows", description: "unknown column" }],
      });
    at.set(column, i);
  }
  return at.size === 0 ? records : records.filter((r) => !excludedBy(filter, (column) => r[at.get(column)!]));
}

/**
 * Pure: types each column (numeric when every present value parses as a number, categorical
 * otherwise) and encodes categories by ascending mean target, so one threshold split can separate
 * cheap from dear categories; codes are recorded so a pipeline can map request values.
 */
export function buildDataset(
  header: string[],
  records: string[][],
  targetName: string,
  exclude: string[] = [],
): Dataset {
  const targetIndex = header.indexOf(targetName);
  if (targetIndex < 0)
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `target column "${targetName}" is not in the CSV header (${header.join(", ")})`,
      { details: [{ field: "target", description: "unknown column" }] },
    );
  for (const e of exclude)
    if (!header.includes(e))
      throw new ValoraError("INVALID_ARGUMENT", `excluded column "${e}" is not in the CSV header`, {
        details: [{ field: "exclude", description: "unknown column" }],
      });
  const target = new Float64Array(records.length);
  records.forEach((r, i) => {
    const v = Number(r[targetIndex]);
    if (!Number.isFinite(v))
      throw new ValoraError(
        "INVALID_ARGUMENT",
        `row ${i + 2}: target "${targetName}" is ${JSON.stringify(r[targetIndex])}, not a number`,
        { details: [{ field: `rows[${i}].${targetName}`, description: "not a number" }] },
      );
    target[i] = v;
  });
  const used = header
    .map((name, i) => ({ name, i }))
    .filter(({ name, i }) => i !== targetIndex && !exclude.includes(name));
  const columns: ColumnSpec[] = used.map(({ name, i }) => {
    const values = records.map((r) => r[i] ?? "");
    const present = values.filter((v) => !MISSING.has(v));
    const missing = values.length - present.length;
    if (present.length > 0 && present.every((v) => Number.isFinite(Number(v)))) {
      const nums = present.map(Number);
      return { name, kind: "numeric", min: Math.min(...nums), max: Math.max(...nums), missing };
    }
    const sums = new Map<string, { sum: number; n: number }>();
    values.forEach((v, r) => {
      if (MISSING.has(v)) return;
      const s = sums.get(v) ?? { sum: 0, n: 0 };
      s.sum += target[r]!;
      s.n += 1;
      sums.set(v, s);
    });
    const categories = [...sums.entries()]
      .sort((a, b) => a[1].sum / a[1].n - b[1].sum / b[1].n || a[0].localeCompare(b[0]))
      .map(([c]) => c);
    return {
      name,
      kind: "categorical",
      categories,
      codes: Object.fromEntries(categories.map((c, k) => [c, k])),
      missing,
    };
  });
  const features = new Float64Array(records.length * columns.length);
  records.forEach((r, row) => {
    used.forEach(({ i }, c) => {
      const raw = r[i] ?? "";
      const spec = columns[c]!;
      let v = Number.NaN;
      if (!MISSING.has(raw)) v = spec.kind === "numeric" ? Number(raw) : (spec.codes[raw] ?? Number.NaN);
      features[row * columns.length + c] = v;
    });
  });
  return { columns, features, rows: records.length, target };
}

/** Encodes one record the way training did (for pipelines and tests). */
export function encodeRecord(columns: ColumnSpec[], record: Record<string, unknown>): Float64Array {
  const out = new Float64Array(columns.length);
  columns.forEach((c, k) => {
    const v = record[c.name];
    if (v === undefined || v === null || v === "") out[k] = Number.NaN;
    else if (c.kind === "numeric") out[k] = Number(v);
    else
      out[k] =
        typeof v === "string" || typeof v === "number" || typeof v === "boolean"
          ? (c.codes[String(v)] ?? Number.NaN)
          : Number.NaN;
  });
  return out;
}

/** Encodes raw CSV records (by header) with columns learnt elsewhere; unseen categories are missing. */
export function encodeRows(columns: ColumnSpec[], header: string[], records: string[][]): Float64Array {
  const index = columns.map((c) => header.indexOf(c.name));
  const out = new Float64Array(records.length * columns.length);
  records.forEach((r, row) => {
    columns.forEach((c, k) => {
      const raw = r[index[k]!] ?? "";
      let v = Number.NaN;
      if (!MISSING.has(raw)) v = c.kind === "numeric" ? Number(raw) : (c.codes[raw] ?? Number.NaN);
      out[row * columns.length + k] = v;
    });
  });
  return out;
}
