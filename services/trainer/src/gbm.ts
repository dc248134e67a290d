import type { Tree, TreeEnsemble, TreeNode } from "@valora/kit/onnx";
import { MISSING_BIN, type Binned } from "./binning.js";

export interface GbmParams {
  /** Most boosting rounds (early stopping usually ends sooner). */
  maxRounds: number;
  /** Shrinkage applied to every leaf. */
  learningRate: number;
  maxDepth: number;
  /** Fewest training rows a leaf may hold. */
  minChildSamples: number;
  /** L2 regularisation of leaf values. */
  lambda: number;
  /** Share of rows each tree sees. */
  subsample: number;
  /** Share of features each tree may split on. */
  colsample: number;
  /** Stop when the validation loss has not improved for this many rounds. */
  earlyStoppingRounds: number;
  /** Smallest loss reduction a split must bring. */
  minSplitGain: number;
  /**
   * Huber loss threshold on the (possibly log) target: residuals beyond it pull with a constant
   * force, so a few odd sales do not bend the trees. 0 = squared loss.
   */
  huberDelta: number;
}

export const DEFAULT_PARAMS: GbmParams = {
  maxRounds: 3000,
  learningRate: 0.03,
  maxDepth: 5,
  minChildSamples: 8,
  lambda: 1,
  subsample: 0.75,
  colsample: 0.5,
  earlyStoppingRounds: 150,
  minSplitGain: 0,
  huberDelta: 0,
};

export interface TrainResult {
  ensemble: TreeEnsemble;
  /** Rounds kept (the best validation round when early stopping ran). */
  rounds: number;
  trainLoss: number[];
  validLoss: number[];
}

export interface TrainInput {
  train: Binned;
  y: Float64Array;
  valid?: { data: Binned; y: Float64Array };
  params: GbmParams;
  random: () => number;
  onRound?: (round: number, trainLoss: number, validLoss: number | undefined) => void;
}

interface BuildNode {
  rows: Int32Array;
  depth: number;
  grad: number;
  count: number;
}

interface Split {
  feature: number;
  bin: number;
  missingLeft: boolean;
  gain: number;
}

const BINS = 256;
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Gradient boosting with squared (or Huber) loss on histogram-binned features: depth-wise trees, shrinkage,
 * row and column subsampling, L2 leaf regularisation, learnt missing-value direction per split,
 * early stopping on a validation set. Deterministic for a given random source.
 */
export function trainGbm(input: TrainInput): TrainResult {
  const { train, y, params } = input;
  const n = train.rows;
  const width = train.features;
  const base = y.reduce((a, b) => a + b, 0) / n;
  const pred = new Float64Array(n).fill(base);
  const validPred = input.valid ? new Float64Array(input.valid.data.rows).fill(base) : undefined;
  const grad = new Float64Array(n);
  const trees: Tree[] = [];
  const trainLoss: number[] = [];
  const validLoss: number[] = [];
  let best = Number.POSITIVE_INFINITY;
  let bestRound = 0;
  const histG = new Float64Array(width * BINS);
  const histC = new Int32Array(width * BINS);
  const nBins = train.edges.map((e) => e.length);

  for (let round = 0; round < params.maxRounds; round++) {
    const delta = params.huberDelta;
    for (let i = 0; i < n; i++) {
      const g = pred[i]! - y[i]!;
      grad[i] = delta > 0 ? Math.max(-delta, Math.min(delta, g)) : g;
    }
    const sampled: number[] = [];
    for (let i = 0; i < n; i++) if (input.random() < params.subsample) sampled.push(i);
    const features: number[] = [];
    for (let f = 0; f < width; f++) if (nBins[f]! > 0 && input.random() < params.colsample) features.push(f);
    if (features.length === 0) features.push(Math.floor(input.random() * width));

    const nodes: TreeNode[] = [];
    const rootRows = Int32Array.from(sampled);
    const stack: { node: BuildNode; id: number }[] = [];
    const makeNode = (rows: Int32Array, depth: number): { node: BuildNode; id: number } => {
      let g = 0;
      for (const r of rows) g += grad[r]!;
      const id = nodes.length;
      nodes.push({
        mode: "LEAF",
        feature: 0,
        threshold: 0,
        trueChild: 0,
        falseChild: 0,
        missingTracksTrue: false,
        value: (-g / (rows.length + params.lambda)) * params.learningRate,
        cover: rows.length,
      });
      return { node: { rows, depth, grad: g, count: rows.length }, id };
    };
    stack.push(makeNode(rootRows, 0));
    while (stack.length > 0) {
      const { node, id } = stack.pop()!;
      if (node.depth >= params.maxDepth || node.count < 2 * params.minChildSamples) continue;
      const split = bestSplit(node, features, train, grad, histG, histC, nBins, params);
      if (!split) continue;
      const left: number[] = [];
      const right: number[] = [];
      const col = split.feature * n;
      for (const r of node.rows) {
        const b = train.bins[col + r]!;
        const goLeft = b === MISSING_BIN ? split.missingLeft : b <= split.bin;
        (goLeft ? left : right).push(r);
      }
      const l = makeNode(Int32Array.from(left), node.depth + 1);
      const rr = makeNode(Int32Array.from(right), node.depth + 1);
      const t = nodes[id]!;
      t.mode = "BRANCH_LEQ";
      t.feature = split.feature;
      // Splitting after the last bin separates missing from present values: every present value
      // must go left, including ones above the training range, so the threshold is float32 max.
      t.threshold =
        split.bin === nBins[split.feature]! - 1 ? FLOAT32_MAX : train.edges[split.feature]![split.bin]!;
      t.trueChild = l.id;
      t.falseChild = rr.id;
      t.missingTracksTrue = split.missingLeft;
      t.value = 0;
      stack.push(rr, l);
    }
    const tree: Tree = { nodes };
    trees.push(tree);
    updatePredictions(tree, train, pred);
    let tl = 0;
    for (let i = 0; i < n; i++) tl += (pred[i]! - y[i]!) ** 2;
    trainLoss.push(Math.sqrt(tl / n));
    let vl: number | undefined;
    if (input.valid && validPred) {
      updatePredictions(tree, input.valid.data, validPred);
      vl = objective(validPred, input.valid.y, params.huberDelta);
      validLoss.push(vl);
      if (vl < best - 1e-12) {
        best = vl;
        bestRound = round + 1;
      } else if (round + 1 - bestRound >= params.earlyStoppingRounds) {
        input.onRound?.(round + 1, trainLoss.at(-1)!, vl);
        break;
      }
    } else {
      bestRound = round + 1;
    }
    input.onRound?.(round + 1, trainLoss.at(-1)!, vl);
  }
  const kept = trees.slice(0, bestRound);
  return {
    ensemble: {
      trees: kept,
      baseValue: base,
      aggregate: "SUM",
      featureCount: width,
      coverSource: "recorded",
    },
    rounds: kept.length,
    trainLoss,
    validLoss,
  };
}

/** Pure: the loss early stopping watches — RMSE, or the mean Huber loss when huberDelta > 0. */
function objective(pred: Float64Array, y: Float64Array, delta: number): number {
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const e = Math.abs(pred[i]! - y[i]!);
    s += delta > 0 && e > delta ? 2 * delta * e - delta * delta : e * e;
  }
  return Math.sqrt(s / pred.length);
}

function bestSplit(
  node: BuildNode,
  features: number[],
  data: Binned,
  grad: Float64Array,
  histG: Float64Array,
  histC: Int32Array,
  nBins: number[],
  params: GbmParams,
): Split | undefined {
  const n = data.rows;
  const rows = node.rows;
  const parentScore = (node.grad * node.grad) / (node.count + params.lambda);
  let best: Split | undefined;
  for (const f of features) {
    const off = f * BINS;
    histG.fill(0, off, off + BINS);
    histC.fill(0, off, off + BINS);
    const col = f * n;
    for (let k = 0; k < rows.length; k++) {
      const r = rows[k]!;
      const b = data.bins[col + r]!;
      histG[off + b]! += grad[r]!;
      histC[off + b]! += 1;
    }
    const missG = histG[off + MISSING_BIN]!;
    const missC = histC[off + MISSING_BIN]!;
    let lg = 0;
    let lc = 0;
    const last = nBins[f]! - 1;
    for (let b = 0; b <= last; b++) {
      lg += histG[off + b]!;
      lc += histC[off + b]!;
      if (lc === 0) continue;
      // Missing values go whichever way gains more (both are tried); b === last separates missing from present.
      for (const missingLeft of missC > 0 ? [true, false] : [false]) {
        const gl = lg + (missingLeft ? missG : 0);
        const cl = lc + (missingLeft ? missC : 0);
        const gr = node.grad - gl;
        const cr = node.count - cl;
        if (cl < params.minChildSamples || cr < params.minChildSamples) continue;
        const gain = (gl * gl) / (cl + params.lambda) + (gr * gr) / (cr + params.lambda) - parentScore;
        if (gain > params.minSplitGain && (!best || gain > best.gain + 1e-12))
          best = { feature: f, bin: b, missingLeft, gain };
      }
      if (lc + missC >= node.count) break;
    }
  }
  return best;
}

function updatePredictions(tree: Tree, data: Binned, pred: Float64Array): void {
  const n = data.rows;
  for (let r = 0; r < n; r++) {
    let node = tree.nodes[0]!;
    while (node.mode !== "LEAF") {
      const b = data.bins[node.feature * n + r]!;
      const goLeft =
        b === MISSING_BIN ? node.missingTracksTrue : data.edges[node.feature]![b]! <= node.threshold;
      node = tree.nodes[goLeft ? node.trueChild : node.falseChild]!;
    }
    pred[r]! += node.value;
  }
}
