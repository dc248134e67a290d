/**
 * Calendar months as integers (year * 12 + month - 1), so month arithmetic is subtraction:
 * sale ages, monthly series, index lookups.
 */

/** Pure: the month index of a "YYYY-MM" or "YYYY-MM-DD…" string (not validated: callers check formats). */
export const monthIndex = (text: string): number =>
  Number(text.slice(0, 4)) * 12 + Number(text.slice(5, 7)) - 1;

/** Pure: the month index of a moment (UTC). */
export const monthOfDate = (d: Date): number => d.getUTCFullYear() * 12 + d.getUTCMonth();

/** Pure: "YYYY-MM" of a month index. */
export const periodOf = (index: number): string =>
  `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`;
