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

export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
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
  return { mdape: 100 * quantile(ape, 0.5), ppe10: within(0.1), ppe20: within(0.2), rmseLog: Math.sqrt(sq / n), n };
}

/** Residual quantile levels stored in model cards (log-ratio residuals actual/predicted). */
export const RESIDUAL_LEVELS = [0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975] as const;

export function residualQuantiles(residuals: ArrayLike<number>): Record<string, number> {
  const sorted = Array.from(residuals).sort((a, b) => a - b);
  return Object.fromEntries(RESIDUAL_LEVELS.map((q) => [String(q), quantile(sorted, q)]));
}

/** Split-conformal interval of nominal coverage c from residual quantiles (log ratios). */
export function intervalFor(prediction: number, quantiles: Record<string, number>, coverage: number): { low: number; high: number } {
  const lo = quantiles[String(Math.round(((1 - coverage) / 2) * 1000) / 1000)];
  const hi = quantiles[String(Math.round((1 - (1 - coverage) / 2) * 1000) / 1000)];
  if (lo === undefined || hi === undefined) throw new Error(`no residual quantiles for coverage ${coverage}`);
  return { low: prediction * Math.exp(lo), high: prediction * Math.exp(hi) };
}
