import { parse } from "csv-parse/sync";
import { ValoraError, attributeColumns, columnKey, putColumn, type InputField } from "@valora/kit";

export interface ParsedJobCsv {
  /** Attributes per row, keyed by field name; cells left empty are absent. */
  rows: Record<string, string>[];
  /** CSV columns that match no input field (ignored). */
  ignored: string[];
}

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
  const byKey = attributeColumns(fields);
  const mapped = header.map((h) => byKey.get(columnKey(h)));
  const named = new Set(mapped.map((m) => m?.attribute));
  const aliasOwner = new Map(
    fields.flatMap((f) => Object.keys(f.aliases ?? {}).map((a) => [a, f.name] as const)),
  );
  for (const a of [...named]) if (a && aliasOwner.has(a)) named.add(aliasOwner.get(a));
  const missing = fields.filter((f) => f.required && !named.has(f.name)).map((f) => f.name);
  if (missing.length > 0)
    throw new ValoraError("INVALID_ARGUMENT", `the CSV header lacks required fields: ${missing.join(", ")}`, {
      details: missing.map((m) => ({ field: `header.${m}`, description: "required column missing" })),
    });
  const rows = data.map((r) => {
    const out: Record<string, string> = {};
    mapped.forEach((target, i) => {
      const v = r[i];
      if (target && v !== undefined && v !== "") putColumn(out, target, v);
    });
    return out;
  });
  return { rows, ignored: header.filter((_, i) => mapped[i] === undefined) };
}
