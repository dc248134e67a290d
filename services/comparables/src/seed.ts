import { parse } from "csv-parse/sync";
import { excludedBy, type RowFilter } from "@valora/kit";
import type { AttributeValue, Sale } from "./engine.js";

export interface SeedField {
  name: string;
  type: "number" | "integer" | "string" | "boolean";
  feature?: string;
  /** One-hot field: value → column; the value whose column holds 1. */
  oneHot?: Record<string, string>;
}

export interface SeedOptions {
  idPrefix: string;
  target: string;
  fields: SeedField[];
  /** Columns holding latitude / longitude, when the data has coordinates. */
  latitude?: string;
  longitude?: string;
  /** Year and month columns of the sale date, when the data has them. */
  year?: string;
  month?: string;
  /** Rows left out by column value: the model card's `data.excludedRows.filter` (sales validation). */
  excludeRows?: RowFilter;
}

/** Pure: sales from a training CSV, attributes keyed by the pipeline's field names. */
export function salesFromCsv(text: string, o: SeedOptions): Sale[] {
  const parsed: unknown = parse(text, { columns: true, skip_empty_lines: true, trim: true });
  const rows = parsed as Record<string, string>[];
  return rows.flatMap((row, i): Sale[] => {
    if (o.excludeRows && excludedBy(o.excludeRows, (column) => row[column])) return [];
    const price = Number(row[o.target]);
    if (!Number.isFinite(price) || price <= 0) return [];
    const attributes: Record<string, AttributeValue> = {};
    for (const f of o.fields) {
      if (f.oneHot) {
        const hot = Object.entries(f.oneHot).find(([, column]) => row[column] === "1");
        if (hot) attributes[f.name] = hot[0];
        continue;
      }
      const raw = f.feature === undefined ? undefined : row[f.feature];
      if (raw === undefined || raw === "" || raw === "NA") continue;
      if (f.type === "boolean") attributes[f.name] = raw === "1" || raw.toLowerCase() === "true";
      else if (f.type === "string") attributes[f.name] = raw;
      else if (Number.isFinite(Number(raw))) attributes[f.name] = Number(raw);
    }
    const year = o.year ? Number(row[o.year]) : Number.NaN;
    const month = o.month ? Number(row[o.month]) : Number.NaN;
    const lat = o.latitude ? Number(row[o.latitude]) : Number.NaN;
    const lon = o.longitude ? Number(row[o.longitude]) : Number.NaN;
    return [
      {
        id: `${o.idPrefix}-${i + 1}`,
        price,
        ...(Number.isFinite(year) && Number.isFinite(month)
          ? { soldAt: `${year}-${String(month).padStart(2, "0")}-15` }
          : {}),
        ...(Number.isFinite(lat) && Number.isFinite(lon) ? { lat, lon } : {}),
        attributes,
      },
    ];
  });
}
