import { createHash } from "node:crypto";
import type { InputField } from "@valora/kit";

export interface ExportSpec {
  fields: InputField[];
  /** The input fields holding the sale's year and month (filled from the sale date when a record lacks them). */
  soldAt?: { year: string; month: string };
}

const cell = (v: unknown): string => {
  if (v === undefined || v === null) return "";
  const s =
    typeof v === "boolean"
      ? v
        ? "1"
        : "0"
      : typeof v === "number" || typeof v === "string"
        ? String(v)
        : "";
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

/** The training columns of a field: its feature, or a one-hot field's one column per value. */
const columnsOf = (f: InputField): { column: string; value?: string }[] =>
  f.oneHot
    ? Object.entries(f.oneHot).map(([value, column]) => ({ column, value }))
    : f.feature
      ? [{ column: f.feature }]
      : [];

/**
 * Pure: gold sales as a training CSV the trainer reads as it reads the seed data — one column per
 * input field named by its model feature (a one-hot field: a 0/1 column per value), booleans as
 * 1/0, missing values empty, the price in the `target` column — and its sha256, the snapshot's id.
 */
export function goldCsv(
  sales: { price: number; soldAt: string | null; attributes: Record<string, unknown> }[],
  spec: ExportSpec,
  target: string,
): { csv: string; sha256: string } {
  const header = [...spec.fields.flatMap((f) => columnsOf(f).map((c) => c.column)), target];
  const lines = sales.map((s) => {
    const values = spec.fields.flatMap((f) => {
      const v = s.attributes[f.name];
      if (f.oneHot) return columnsOf(f).map((c) => (v === c.value ? "1" : "0"));
      if (v !== undefined || !s.soldAt) return cell(v);
      if (f.name === spec.soldAt?.year) return s.soldAt.slice(0, 4);
      if (f.name === spec.soldAt?.month) return String(Number(s.soldAt.slice(5, 7)));
      return "";
    });
    return [...values, cell(s.price)].join(",");
  });
  const csv = `${[header.map(cell).join(","), ...lines].join("\n")}\n`;
  return { csv, sha256: createHash("sha256").update(csv).digest("hex") };
}
