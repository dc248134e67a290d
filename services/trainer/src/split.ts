import { seededRandom } from "@valora/kit";
import { keepRows, parseCsv, type RowFilter } from "./dataset.js";

export interface HeldOutSplit {
  /** Training rows (the rows `excludeRows` leaves out removed), as CSV with the header. */
  train: string;
  /** Held-out rows, the left-out ones removed: what accuracy is scored on. */
  test: string;
  /** Every held-out row, left-out ones included. */
  testAll: string;
}

/**
 * Pure: the project's held-out split of a one-record-per-line CSV — each row drawn with a seeded
 * random number, the first `1 - share` for training — made over every row, then the rows
 * `excludeRows` leaves out (sales that are not arm's length) dropped from both sides, as a ratio
 * study does. `npm run bench:accuracy` and the held-out tests use the same split (seed 2024).
 */
export function heldOutSplit(
  text: string,
  o: { seed?: number; share?: number; excludeRows?: RowFilter } = {},
): HeldOutSplit {
  const lines = text.trimEnd().split("\n");
  const header = lines[0]!;
  const rnd = seededRandom(o.seed ?? 2024);
  const parsed = parseCsv(text);
  const order = lines
    .slice(1)
    .map((l, i) => ({ l, i, rec: parsed.records[i]!, r: rnd() }))
    .sort((a, b) => a.r - b.r);
  const cut = Math.floor(order.length * (1 - (o.share ?? 0.2)));
  const csvOf = (rows: typeof order) =>
    `${header}\n${[...rows]
      .sort((a, b) => a.i - b.i)
      .map((x) => x.l)
      .join("\n")}\n`;
  const kept = new Set(keepRows(parsed.header, parsed.records, o.excludeRows));
  const qualified = (rows: typeof order) => rows.filter((x) => kept.has(x.rec));
  return {
    train: csvOf(qualified(order.slice(0, cut))),
    test: csvOf(qualified(order.slice(cut))),
    testAll: csvOf(order.slice(cut)),
  };
}
