import { parse } from "csv-parse/sync";
import { ValoraError, type InputField } from "@valora/kit";

export interface ParsedJobCsv {
  /** Attributes per row, keyed by field name; cells left empty are absent. */
  rows: Record<string, string>[];
  /** CSV columns that match no input field (ignored). */
  ignored: string[];
}

const key = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");

/**
 * Pure: a job's CSV mapped to the asset class's input fields. A header cell may name a field
 * (`gr_liv_area`) or the model feature it feeds (`Gr_Liv_Area`), in any case or separator style.
 * Values stay strings: each row is validated like a single valuation when its chunk runs, so one
 * bad row is reported in the results, never fatal to the job.
 */
export function parseJobCsv(csv: Buffer | string, fields: InputField[], maxRows: number): ParsedJobCsv {
  let records: string[][];
  try {
    records = parse(csv, {
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
      bom: true,
      max_record_size: 64 * 1024,
    });
  } catch (err) {
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `the CSV cannot be read: ${err instanceof Error ? err.message : String(err)}`,
      { details: [{ field: "body", description: "RFC 4180 CSV with a header row" }] },
    );
  }
  const [header, ...data] = records;
  if (!header || header.length === 0)
    throw new ValoraError("INVALID_ARGUMENT", "the CSV has no header row", {
      details: [{ field: "body", description: "a header row naming input fields" }],
    });
  if (data.length === 0)
    throw new ValoraError("INVALID_ARGUMENT", "the CSV has no data rows", {
      details: [{ field: "body", description: "at least one row" }],
    });
  if (data.length > maxRows)
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `${data.length} rows is more than the ${maxRows} a job may hold`,
      { details: [{ field: "body", description: `at most ${maxRows} rows` }] },
    );
  const byKey = new Map<string, string>();
  for (const f of fields) {
    byKey.set(key(f.name), f.name);
    byKey.set(key(f.feature), f.name);
  }
  const mapped = header.map((h) => byKey.get(key(h)));
  const missing = fields.filter((f) => f.required && !mapped.includes(f.name)).map((f) => f.name);
  if (missing.length > 0)
    throw new ValoraError("INVALID_ARGUMENT", `the CSV header lacks required fields: ${missing.join(", ")}`, {
      details: missing.map((m) => ({ field: `header.${m}`, description: "required column missing" })),
    });
  const rows = data.map((r) => {
    const out: Record<string, string> = {};
    mapped.forEach((name, i) => {
      const v = r[i];
      if (name && v !== undefined && v !== "") out[name] = v;
    });
    return out;
  });
  return { rows, ignored: header.filter((_, i) => mapped[i] === undefined) };
}
