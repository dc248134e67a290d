import { parse } from "csv-parse/sync";
import { ValoraError } from "@valora/kit";

export type BatchFormat = "csv" | "json" | "ndjson";

/** Pure: a batch's records as received — CSV with a header row, a JSON array of objects, or NDJSON. */
export function parseBatch(content: Buffer, format: BatchFormat): Record<string, unknown>[] {
  const text = content.toString("utf8");
  const refuse = (message: string) =>
    new ValoraError("INVALID_ARGUMENT", message, { details: [{ field: "content", description: message }] });
  if (format === "csv") {
    try {
      return parse<Record<string, unknown>>(text, {
        columns: true,
        skip_empty_lines: true,
        trim: true,
        bom: true,
      });
    } catch (err) {
      throw refuse(`not readable as CSV: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const lines =
    format === "ndjson"
      ? text
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean)
      : [text];
  const out: Record<string, unknown>[] = [];
  lines.forEach((line, i) => {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw refuse(
        `${format === "ndjson" ? `line ${i + 1}: ` : ""}not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const items = format === "json" ? v : [v];
    if (!Array.isArray(items) || items.some((x) => !x || typeof x !== "object" || Array.isArray(x)))
      throw refuse(
        format === "json"
          ? "JSON content must be an array of objects"
          : `line ${i + 1}: each line must be a JSON object`,
      );
    out.push(...(items as Record<string, unknown>[]));
  });
  return out;
}
