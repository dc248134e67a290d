/** Small statistics shared by the trainer (calibration) and pipelines (serving intervals). */

/** Linear-interpolated quantile of an ascending array. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Residual quantile levels stored in model cards and ONNX metadata (log ratios actual/predicted). */
export const RESIDUAL_LEVELS = [
  0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975,
] as const;

export function residualQuantiles(residuals: ArrayLike<number>): Record<string, number> {
  const sorted = Array.from(residuals).sort((a, b) => a - b);
  return Object.fromEntries(RESIDUAL_LEVELS.map((q) => [String(q), quantile(sorted, q)]));
}

/** Split-conformal interval of nominal coverage c from residual quantiles (log ratios). */
export function intervalFor(
  prediction: number,
  quantiles: Record<string, number>,
  coverage: number,
): { low: number; high: number } {
  const lo = quantiles[String(Math.round(((1 - coverage) / 2) * 1000) / 1000)];
  const hi = quantiles[String(Math.round((1 - (1 - coverage) / 2) * 1000) / 1000)];
  if (lo === undefined || hi === undefined) throw new Error(`no residual quantiles for coverage ${coverage}`);
  return { low: prediction * Math.exp(lo), high: prediction * Math.exp(hi) };
}

/**
 * Residual quantiles per band of predicted value (Mondrian split-conformal): errors are not the
 * same across a market (cheap houses and rare cars err more in relative terms), so each band gets
 * its own interval width and confidence tells assets apart. `edges` are the predicted values
 * between bands (ascending); `quantiles[i]` are band i's residual quantiles.
 */
export interface ResidualBands {
  edges: number[];
  quantiles: Record<string, number>[];
}

/** Pure: bands of about equal size over predictions, each with at least `minPerBand` residuals (one band when too few). */
export function residualBands(
  predictions: ArrayLike<number>,
  residuals: ArrayLike<number>,
  bands = 3,
  minPerBand = 120,
): ResidualBands {
  const n = predictions.length;
  const count = Math.max(1, Math.min(bands, Math.floor(n / minPerBand)));
  const sorted = Array.from(predictions).sort((a, b) => a - b);
  const edges = Array.from({ length: count - 1 }, (_, i) => quantile(sorted, (i + 1) / count));
  const groups = Array.from({ length: count }, () => [] as number[]);
  for (let i = 0; i < n; i++) groups[bandOf(edges, predictions[i]!)]!.push(residuals[i]!);
  return { edges, quantiles: groups.map((g) => residualQuantiles(g)) };
}

const bandOf = (edges: number[], prediction: number): number => {
  let b = 0;
  while (b < edges.length && prediction > edges[b]!) b++;
  return b;
};

/** Pure: the residual quantiles for a prediction — its band's when the model has bands, else the model's. */
export function quantilesFor(
  prediction: number,
  quantiles: Record<string, number>,
  bands?: ResidualBands,
): Record<string, number> {
  return bands && bands.quantiles.length > 0 ? bands.quantiles[bandOf(bands.edges, prediction)]! : quantiles;
}

/** Pure: an interval's log half-widths scaled by `widen` (≥ 1) around the prediction, for answers the model is less sure of. */
export function widened(
  prediction: number,
  interval: { low: number; high: number },
  widen: number,
): { low: number; high: number } {
  if (widen <= 1) return interval;
  return {
    low: prediction * Math.exp(Math.log(interval.low / prediction) * widen),
    high: prediction * Math.exp(Math.log(interval.high / prediction) * widen),
  };
}

/** How close values came to the prices assets sold for (pure): what a backtest reports. */
export interface ValuationAccuracy {
  /** Median |value − price| / price, in %. */
  mdapePct: number;
  /** Share of values within 10 % of the price, in %. */
  ppe10Pct: number;
  /** Median (value − price) / price, in %: above 0, values run high. */
  biasPct: number;
  n: number;
}

export function valuationAccuracy(values: ArrayLike<number>, prices: ArrayLike<number>): ValuationAccuracy {
  const signed: number[] = [];
  for (let i = 0; i < values.length; i++) signed.push((values[i]! - prices[i]!) / prices[i]!);
  const absolute = signed.map(Math.abs).sort((a, b) => a - b);
  signed.sort((a, b) => a - b);
  const n = signed.length;
  if (n === 0) return { mdapePct: 0, ppe10Pct: 0, biasPct: 0, n };
  return {
    mdapePct: 100 * quantile(absolute, 0.5),
    ppe10Pct: (100 * absolute.filter((e) => e <= 0.1).length) / n,
    biasPct: 100 * quantile(signed, 0.5),
    n,
  };
}
