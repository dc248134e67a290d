import type { RealisedRow } from "./store.js";

/**
 * Pure: drift when the most recent month with at least `minCount` scored valuations, for the
 * version valued most recently, has a realised MdAPE (percent) above the threshold.
 */
export function driftOf(
  periods: RealisedRow[],
  thresholdPct: number,
  minCount = 5,
): { drift: boolean; latest?: RealisedRow } {
  const usable = periods
    .filter((p) => p.count >= minCount)
    .sort((a, b) =>
      a.month === b.month ? a.modelVersion.localeCompare(b.modelVersion) : a.month.localeCompare(b.month),
    );
  const latest = usable[usable.length - 1];
  return { drift: latest !== undefined && latest.mdape > thresholdPct, ...(latest ? { latest } : {}) };
}
