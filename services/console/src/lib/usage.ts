/** Pure: usage rows (day × class × kind) as one row per day with a column per asset class. */
export function usageByDay(days: { day: string; assetClass: string; units: number }[]): {
  rows: Record<string, string | number>[];
  classes: string[];
} {
  const classes = [...new Set(days.map((d) => d.assetClass))].sort();
  const byDay = new Map<string, Record<string, string | number>>();
  for (const d of days) {
    const row = byDay.get(d.day) ?? { day: d.day, ...Object.fromEntries(classes.map((c) => [c, 0])) };
    row[d.assetClass] = Number(row[d.assetClass] ?? 0) + d.units;
    byDay.set(d.day, row);
  }
  return {
    rows: [...byDay.values()].sort((a, b) => String(a["day"]).localeCompare(String(b["day"]))),
    classes,
  };
}
