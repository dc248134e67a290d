/**
 * Histogram binning: each feature gets up to maxBins float32 upper edges from its quantiles; a
 * row's bin is the first edge its float32 value does not exceed. Because ONNX compares float32
 * inputs with `x <= threshold`, a split after bin b is exactly `x <= edges[b]` at serving time.
 */
export const MISSING_BIN = 255;

export interface Binned {
  /** Column-major bins: bins[f * rows + r]; MISSING_BIN for NaN. */
  bins: Uint8Array;
  edges: Float32Array[];
  rows: number;
  features: number;
}

export function computeEdges(values: Float64Array, maxBins = 254): Float32Array {
  const present = Array.from(values)
    .filter((v) => !Number.isNaN(v))
    .map(Math.fround)
    .sort((a, b) => a - b);
  const distinct: number[] = [];
  for (const v of present) if (distinct.at(-1) !== v) distinct.push(v);
  if (distinct.length <= maxBins) return Float32Array.from(distinct);
  const edges: number[] = [];
  for (let k = 1; k <= maxBins; k++) {
    const v = present[Math.min(present.length - 1, Math.floor((k * present.length) / maxBins) - 1)]!;
    if (edges.at(-1) !== v) edges.push(v);
  }
  if (edges.at(-1) !== distinct.at(-1)) edges.push(distinct.at(-1)!);
  return Float32Array.from(edges);
}

export function binIndex(edges: Float32Array, x: number): number {
  if (Number.isNaN(x)) return MISSING_BIN;
  const v = Math.fround(x);
  let lo = 0;
  let hi = edges.length - 1;
  if (v > edges[hi]!) return hi; // beyond the training range: the last bin
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v <= edges[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Bins a row-major matrix with edges learnt from the rows given (training rows only). */
export function binMatrix(
  features: Float64Array,
  rows: number,
  width: number,
  edges?: Float32Array[],
): Binned {
  const learnt =
    edges ??
    Array.from({ length: width }, (_, f) => {
      const col = new Float64Array(rows);
      for (let r = 0; r < rows; r++) col[r] = features[r * width + f]!;
      return computeEdges(col);
    });
  const bins = new Uint8Array(rows * width);
  for (let f = 0; f < width; f++) {
    const e = learnt[f]!;
    for (let r = 0; r < rows; r++)
      bins[f * rows + r] = e.length === 0 ? MISSING_BIN : binIndex(e, features[r * width + f]!);
  }
  return { bins, edges: learnt, rows, features: width };
}
