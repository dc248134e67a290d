/**
 * Buckets of the paired comparison pipelines record during a canary or a shadow (the same asset
 * valued by candidate and champion), in %: 0.1 pp wide within ±20 %, coarser beyond, so the
 * operator's quantiles (bias, |delta| median and p90) resolve 0.1 percentage points.
 */
export const PAIRED_DELTA_BUCKETS: number[] = (() => {
  const fine = Array.from({ length: 401 }, (_, i) => Math.round((i - 200) * 10) / 100);
  const coarse = [25, 30, 40, 50, 75, 100, 200, 500];
  return [...coarse.map((b) => -b).reverse(), ...fine, ...coarse];
})();

/** The absolute-delta buckets: the positive half of PAIRED_DELTA_BUCKETS. */
export const PAIRED_ABS_DELTA_BUCKETS: number[] = PAIRED_DELTA_BUCKETS.filter((b) => b > 0);

/** Pure: the signed paired delta of a candidate's value against the champion's, in %. */
export const pairedDeltaPct = (candidate: number, champion: number): number =>
  (100 * (candidate - champion)) / champion;
