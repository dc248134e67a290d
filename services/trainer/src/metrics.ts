import { quantile } from "@valora/kit";

export { quantile, residualQuantiles, intervalFor, RESIDUAL_LEVELS } from "@valora/kit";

/** Valuation accuracy measures (pure). Errors are relative to the actual value. */
export interface Accuracy {
  /** Median absolute percentage error, in %. */
  mdape: number;
  /** Share of predictions within 10% / 20% of the actual value, in %. */
  ppe10: number;
  ppe20: number;
  /** Root mean squared error of log values. */
  rmseLog: number;
  n: number;
}

export function accuracy(actual: ArrayLike<number>, predicted: ArrayLike<number>): Accuracy {
  const n = actual.length;
  const ape: number[] = [];
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const a = actual[i]!;
    const p = predicted[i]!;
    ape.push(Math.abs(p - a) / Math.abs(a));
    if (a > 0 && p > 0) sq += (Math.log(p) - Math.log(a)) ** 2;
  }
  ape.sort((x, y) => x - y);
  const within = (t: number): number => (100 * ape.filter((e) => e <= t).length) / n;
  return {
    mdape: 100 * quantile(ape, 0.5),
    ppe10: within(0.1),
    ppe20: within(0.2),
    rmseLog: Math.sqrt(sq / n),
    n,
  };
}
