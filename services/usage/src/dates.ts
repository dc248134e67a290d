import { ValoraError } from "@valora/kit";

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Pure: the UTC day (YYYY-MM-DD) of a moment. */
export const dayOf = (d: Date): string => d.toISOString().slice(0, 10);

/** Pure: a YYYY-MM-DD that is a real calendar date, or INVALID_ARGUMENT naming the field. */
export function parseDay(value: string, field: string): string {
  const d = new Date(`${value}T00:00:00Z`);
  if (!DAY.test(value) || Number.isNaN(d.getTime()) || dayOf(d) !== value)
    throw new ValoraError("INVALID_ARGUMENT", `${field} must be a date YYYY-MM-DD`, {
      details: [{ field, description: `"${value}" is not a date YYYY-MM-DD` }],
    });
  return value;
}

/**
 * Pure: the inclusive range of a usage query. Defaults to the current calendar month (UTC); at
 * most `maxDays` long so one query cannot scan years of meters.
 */
export function usageRange(from: string, to: string, now: Date, maxDays = 366): { from: string; to: string } {
  const f = from ? parseDay(from, "from") : `${dayOf(now).slice(0, 7)}-01`;
  const t = to ? parseDay(to, "to") : dayOf(now);
  if (f > t)
    throw new ValoraError("INVALID_ARGUMENT", "from is after to", {
      details: [{ field: "from", description: `must not be after ${t}` }],
    });
  const days = (Date.parse(t) - Date.parse(f)) / 86_400_000 + 1;
  if (days > maxDays)
    throw new ValoraError("INVALID_ARGUMENT", `a usage query spans at most ${maxDays} days`, {
      details: [{ field: "from", description: `${days} days asked` }],
    });
  return { from: f, to: t };
}
