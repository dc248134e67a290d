/**
 * Paired comparison of a candidate with the champion: the same asset valued by both, as pipelines
 * record it (`valora_paired_delta_percent`, signed, and `valora_paired_abs_delta_percent`, with the
 * kit's PAIRED_DELTA_BUCKETS: 0.1 pp wide within ±20 %). Pure functions over cumulative histogram
 * buckets, so pod scraping and Prometheus give the same figures.
 */

/** What one interval's pairs say. */
export interface PairedFigures {
  pairs: number;
  /** Median of (candidate − champion) / champion, in %: the candidate's bias. */
  biasPct: number;
  medianAbsDeltaPct: number;
  absDeltaP90Pct: number;
}

/**
 * Pure: the q-quantile of a cumulative histogram (`le` → count), interpolated linearly within the
 * bucket that holds it, as Prometheus's histogram_quantile does: the resolution is the bucket
 * width (0.1 pp here). The lowest bucket's lower edge is `lowest` (its own bound when undefined).
 */
export function interpolatedQuantile(buckets: Map<number, number>, q: number, lowest?: number): number {
  const sorted = [...buckets.entries()].filter(([le]) => Number.isFinite(le)).sort((a, b) => a[0] - b[0]);
  const total = buckets.get(Number.POSITIVE_INFINITY) ?? sorted.at(-1)?.[1] ?? 0;
  if (total <= 0 || sorted.length === 0) return Number.NaN;
  const rank = q * total;
  let lower = lowest ?? sorted[0]![0];
  let below = 0;
  for (const [le, count] of sorted) {
    if (count >= rank && count > below) return lower + ((le - lower) * (rank - below)) / (count - below);
    lower = le;
    below = count;
  }
  return sorted.at(-1)![0];
}

/** Pure: the figures of one interval from its signed and absolute delta histograms. */
export function pairedFigures(signed: Map<number, number>, absolute: Map<number, number>): PairedFigures {
  const pairs = absolute.get(Number.POSITIVE_INFINITY) ?? 0;
  const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : 0);
  return {
    pairs,
    biasPct: round(interpolatedQuantile(signed, 0.5)),
    medianAbsDeltaPct: round(interpolatedQuantile(absolute, 0.5, 0)),
    absDeltaP90Pct: round(interpolatedQuantile(absolute, 0.9, 0)),
  };
}
