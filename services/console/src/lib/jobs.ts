import type { Job } from "./types";

/** Pure: the header and data rows of a CSV's text (enough to check it before upload). */
export function csvOutline(
  text: string,
  previewRows = 5,
): { header: string[]; rows: number; preview: string[][] } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const split = (l: string) => l.split(",").map((c) => c.trim().replace(/^"(.*)"$/, "$1"));
  return {
    header: lines[0] ? split(lines[0]) : [],
    rows: Math.max(0, lines.length - 1),
    preview: lines.slice(1, 1 + previewRows).map(split),
  };
}

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** Pure: percent of the job's rows finished (valued or failed). */
export function progressPct(j: Pick<Job, "doneRows" | "failedRows" | "totalRows">): number {
  return j.totalRows === 0 ? 100 : Math.min(100, ((j.doneRows + j.failedRows) / j.totalRows) * 100);
}

/** Pure: rows per second between two observations of a job (0 when nothing moved). */
export function throughput(
  a: { rows: number; at: number } | undefined,
  b: { rows: number; at: number },
): number {
  if (!a || b.at <= a.at) return 0;
  return ((b.rows - a.rows) * 1000) / (b.at - a.at);
}
