import { nativeTreeShap, type NativeTreeShap } from "./native-shap.js";
import type { Tree, TreeEnsemble, TreeNode } from "./tree-ensemble.js";

/**
 * Path-dependent TreeSHAP with precomputed leaf tables (the idea of Fast TreeSHAP v2, Yang 2021):
 * for a leaf whose path holds d distinct features with zero fractions z (cover ratios) and one
 * fractions o ∈ {0, 1} (does the row follow the path at that feature), feature j receives
 *
 *   v · (o_j − z_j) · Σ_k k!(d−1−k)!/d! · e_k,  e_k = coefficient of tᵏ in Π_{m≠j} (z_m + o_m·t)
 *
 * which depends on the row only through the pattern O = {m : o_m = 1}. Tabulating it for all 2^d
 * patterns at load time leaves, per row and leaf, d comparisons to find O and d additions —
 * O(T·L·D) instead of O(T·L·D²) with no unwinding, exact up to the float32 rounding of the
 * table entries (relative 1e-7; the recursive algorithm in tree-shap.ts is exact in doubles).
 */
export interface CompiledTreeShap {
  featureCount: number;
  /** Entries held by the leaf tables. */
  tableSize: number;
  /** Every tree's internal nodes, one after another (feature, float32 threshold, mode code, NaN goes true). */
  nodeFeature: Int32Array;
  nodeThreshold: Float64Array;
  nodeMode: Uint8Array;
  nodeMissingTrue: Uint8Array;
  /** True when every node is BRANCH_LEQ (what Valora's trainer writes): one comparison, no switch. */
  allLeq: boolean;
  /** Every tree's leaves, one after another: offsets into the flat arrays below. */
  leafPathStart: Int32Array;
  leafDistinct: Int32Array;
  leafFeatureStart: Int32Array;
  leafTableStart: Int32Array;
  /** Path steps (leaf l's are leafPathStart[l] .. leafPathStart[l + 1]): global internal-node index, branch taken, distinct-feature slot. */
  pathNode: Int32Array;
  pathTrue: Uint8Array;
  pathSlot: Uint8Array;
  /** Distinct path features per leaf. */
  features: Int32Array;
  /**
   * Per leaf, 2^d patterns × d contributions (already scaled by the leaf value and aggregate), in
   * float32: half the memory, so the tables of a few thousand trees stay in cache (a row reads one
   * entry group per leaf, all over the tables); rounding stays far below the 1e-4 additivity tested.
   */
  table: Float32Array;
}

/** Pure: k!(d−1−k)!/d! for k = 0..d−1. */
function shapleyWeights(d: number): Float64Array {
  const fact = [1];
  for (let i = 1; i <= d; i++) fact.push(fact[i - 1]! * i);
  return Float64Array.from({ length: d }, (_, k) => (fact[k]! * fact[d - 1 - k]!) / fact[d]!);
}

interface LeafPath {
  leaf: TreeNode;
  steps: { node: number; goesTrue: boolean; ratio: number; feature: number }[];
}

function leafPaths(tree: Tree, internalIndex: Map<number, number>): LeafPath[] {
  const out: LeafPath[] = [];
  const walk = (id: number, steps: LeafPath["steps"]): void => {
    const n = tree.nodes[id]!;
    if (n.mode === "LEAF") {
      out.push({ leaf: n, steps });
      return;
    }
    const ratio = (child: number) => (n.cover > 0 ? tree.nodes[child]!.cover / n.cover : 0);
    walk(n.trueChild, [
      ...steps,
      { node: internalIndex.get(id)!, goesTrue: true, ratio: ratio(n.trueChild), feature: n.feature },
    ]);
    walk(n.falseChild, [
      ...steps,
      { node: internalIndex.get(id)!, goesTrue: false, ratio: ratio(n.falseChild), feature: n.feature },
    ]);
  };
  walk(0, []);
  return out;
}

/** Size of the tables compileTreeShap would build, to decide before paying for them. */
export function treeShapTableSize(ensemble: TreeEnsemble): number {
  let size = 0;
  for (const tree of ensemble.trees) {
    const walk = (id: number, features: Set<number>): void => {
      const n = tree.nodes[id]!;
      if (n.mode === "LEAF") {
        size += features.size * 2 ** features.size;
        return;
      }
      walk(n.trueChild, new Set([...features, n.feature]));
      walk(n.falseChild, new Set([...features, n.feature]));
    };
    walk(0, new Set());
  }
  return size;
}

export function compileTreeShap(ensemble: TreeEnsemble): CompiledTreeShap {
  const scale = ensemble.aggregate === "AVERAGE" ? 1 / ensemble.trees.length : 1;
  const internal: TreeNode[] = [];
  const leafPathStart: number[] = [];
  const leafDistinct: number[] = [];
  const leafFeatureStart: number[] = [];
  const leafTableStart: number[] = [];
  const pathNode: number[] = [];
  const pathTrue: number[] = [];
  const pathSlot: number[] = [];
  const features: number[] = [];
  const table = new Float32Array(treeShapTableSize(ensemble));
  let tableSize = 0;
  for (const tree of ensemble.trees) {
    const internalIndex = new Map<number, number>();
    tree.nodes.forEach((n, id) => {
      if (n.mode !== "LEAF") {
        internalIndex.set(id, internal.length);
        internal.push(n);
      }
    });
    for (const p of leafPaths(tree, internalIndex)) {
      const distinct = [...new Set(p.steps.map((s) => s.feature))];
      const d = distinct.length;
      if (d === 0) continue; // a single-leaf tree contributes nothing
      const z = distinct.map((f) =>
        p.steps.filter((s) => s.feature === f).reduce((acc, s) => acc * s.ratio, 1),
      );
      leafPathStart.push(pathNode.length);
      leafDistinct.push(d);
      leafFeatureStart.push(features.length);
      leafTableStart.push(tableSize);
      for (const s of p.steps) {
        pathNode.push(s.node);
        pathTrue.push(s.goesTrue ? 1 : 0);
        pathSlot.push(distinct.indexOf(s.feature));
      }
      features.push(...distinct);
      const w = shapleyWeights(d);
      const poly = new Float64Array(d + 1);
      for (let pattern = 0; pattern < 2 ** d; pattern++) {
        for (let j = 0; j < d; j++) {
          // Coefficients of Π_{m≠j} (z_m + o_m·t).
          poly.fill(0);
          poly[0] = 1;
          let degree = 0;
          for (let m = 0; m < d; m++) {
            if (m === j) continue;
            const o = (pattern >> m) & 1;
            for (let k = degree + 1; k >= 0; k--) poly[k] = poly[k]! * z[m]! + (k > 0 ? poly[k - 1]! * o : 0);
            degree++;
          }
          let sum = 0;
          for (let k = 0; k < d; k++) sum += w[k]! * poly[k]!;
          const oj = (pattern >> j) & 1;
          table[tableSize++] = p.leaf.value * scale * (oj - z[j]!) * sum;
        }
      }
    }
  }
  leafPathStart.push(pathNode.length);
  return {
    featureCount: ensemble.featureCount,
    tableSize,
    nodeFeature: Int32Array.from(internal, (n) => n.feature),
    nodeThreshold: Float64Array.from(internal, (n) => n.threshold),
    nodeMode: Uint8Array.from(internal, (n) => MODE_CODES[n.mode]),
    nodeMissingTrue: Uint8Array.from(internal, (n) => (n.missingTracksTrue ? 1 : 0)),
    allLeq: internal.every((n) => n.mode === "BRANCH_LEQ"),
    leafPathStart: Int32Array.from(leafPathStart),
    leafDistinct: Int32Array.from(leafDistinct),
    leafFeatureStart: Int32Array.from(leafFeatureStart),
    leafTableStart: Int32Array.from(leafTableStart),
    pathNode: Int32Array.from(pathNode),
    pathTrue: Uint8Array.from(pathTrue),
    pathSlot: Uint8Array.from(pathSlot),
    features: Int32Array.from(features),
    table: tableSize === table.length ? table : table.slice(0, tableSize),
  };
}

const MODE_CODES: Record<TreeNode["mode"], number> = {
  BRANCH_LEQ: 0,
  BRANCH_LT: 1,
  BRANCH_GTE: 2,
  BRANCH_GT: 3,
  BRANCH_EQ: 4,
  BRANCH_NEQ: 5,
  LEAF: 6,
};

/** goesTrue on the flat arrays (same float32 comparison and NaN routing). */
function direction(mode: number, threshold: number, missingTrue: number, x: number): number {
  if (x !== x) return missingTrue;
  const v = Math.fround(x);
  switch (mode) {
    case 0:
      return v <= threshold ? 1 : 0;
    case 1:
      return v < threshold ? 1 : 0;
    case 2:
      return v >= threshold ? 1 : 0;
    case 3:
      return v > threshold ? 1 : 0;
    case 4:
      return v === threshold ? 1 : 0;
    case 5:
      return v !== threshold ? 1 : 0;
    default:
      return 0;
  }
}

const scratch = { row: new Float32Array(0), directions: new Uint8Array(0) };

/** Every internal node's direction (1 = true branch) for one float32 row, at directions[node * stride + at]. */
function setDirections(
  c: CompiledTreeShap,
  row: Float32Array,
  directions: Uint8Array,
  stride: number,
  at: number,
): void {
  const { nodeFeature, nodeThreshold, nodeMissingTrue, nodeMode } = c;
  const nodes = nodeFeature.length;
  if (c.allLeq) {
    for (let i = 0; i < nodes; i++) {
      const v = row[nodeFeature[i]!]!;
      directions[i * stride + at] = v !== v ? nodeMissingTrue[i]! : v <= nodeThreshold[i]! ? 1 : 0;
    }
  } else {
    for (let i = 0; i < nodes; i++)
      directions[i * stride + at] = direction(
        nodeMode[i]!,
        nodeThreshold[i]!,
        nodeMissingTrue[i]!,
        row[nodeFeature[i]!]!,
      );
  }
}

/**
 * Adds one row's contributions to `phi` (length featureCount). Two passes over flat arrays: every
 * internal node's direction for the row, then every leaf's pattern (which of its path features the
 * row follows) and its d table entries.
 */
export function compiledShap(c: CompiledTreeShap, x: ArrayLike<number>, phi: Float64Array): void {
  const nodes = c.nodeFeature.length;
  if (scratch.row.length < c.featureCount) scratch.row = new Float32Array(c.featureCount);
  if (scratch.directions.length < nodes) scratch.directions = new Uint8Array(nodes);
  // The row as float32, as onnxruntime compares it (NaN stays NaN).
  const row = scratch.row;
  for (let i = 0; i < c.featureCount; i++) row[i] = i < x.length ? Number(x[i]) : Number.NaN;
  const directions = scratch.directions;
  setDirections(c, row, directions, 1, 0);
  const {
    leafDistinct,
    leafPathStart,
    leafTableStart,
    leafFeatureStart,
    pathNode,
    pathTrue,
    pathSlot,
    features,
    table,
  } = c;
  const leaves = leafDistinct.length;
  for (let l = 0; l < leaves; l++) {
    const d = leafDistinct[l]!;
    let pattern = (1 << d) - 1;
    const end = leafPathStart[l + 1]!;
    for (let s = leafPathStart[l]!; s < end; s++)
      pattern &= ~((directions[pathNode[s]!]! ^ pathTrue[s]!) << pathSlot[s]!);
    const base = leafTableStart[l]! + pattern * d;
    const f = leafFeatureStart[l]!;
    for (let j = 0; j < d; j++) phi[features[f + j]!]! += table[base + j]!;
  }
}

/** Rows a leaf-major pass takes at once: their directions (nodes × rows bytes) stay in cache. */
const PASS_ROWS = 64;

/**
 * Contributions of `count` rows packed row after row (featureCount each), packed the same way.
 * Several rows go leaf-major: each leaf's table entries are read from memory once for all of them
 * (a single row's pass waits on a cache miss per leaf), about a third of the per-row cost at 16+.
 * The compiled kernel does the same passes when it was built (identical bits, tested); `kernel`
 * null runs these TypeScript ones.
 */
export function packedShap(
  c: CompiledTreeShap,
  rows: Float64Array,
  count: number,
  kernel: NativeTreeShap | null = nativeTreeShap() ?? null,
): Float64Array {
  const width = c.featureCount;
  const out = new Float64Array(count * width);
  if (kernel) {
    kernel.packedShap(c, rows, count, out);
    return out;
  }
  if (count === 1) {
    compiledShap(c, rows, out);
    return out;
  }
  for (let first = 0; first < count; first += PASS_ROWS) {
    const n = Math.min(PASS_ROWS, count - first);
    leafMajorShap(
      c,
      rows.subarray(first * width, (first + n) * width),
      n,
      out.subarray(first * width, (first + n) * width),
    );
  }
  return out;
}

const batchScratch = { row: new Float32Array(0), directions: new Uint8Array(0), patterns: new Int32Array(0) };

/** Adds the contributions of n packed rows to out (packed the same way), leaf by leaf. */
function leafMajorShap(c: CompiledTreeShap, rows: Float64Array, n: number, out: Float64Array): void {
  const width = c.featureCount;
  const nodes = c.nodeFeature.length;
  if (batchScratch.row.length < width) batchScratch.row = new Float32Array(width);
  if (batchScratch.directions.length < nodes * n) batchScratch.directions = new Uint8Array(nodes * n);
  if (batchScratch.patterns.length < n) batchScratch.patterns = new Int32Array(n);
  const { row, directions, patterns } = batchScratch;
  // directions[node * n + r]: the rows of one path step sit side by side.
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < width; i++) row[i] = rows[r * width + i]!;
    setDirections(c, row, directions, n, r);
  }
  const {
    leafDistinct,
    leafPathStart,
    leafTableStart,
    leafFeatureStart,
    pathNode,
    pathTrue,
    pathSlot,
    features,
    table,
  } = c;
  const leaves = leafDistinct.length;
  for (let l = 0; l < leaves; l++) {
    const d = leafDistinct[l]!;
    const all = (1 << d) - 1;
    for (let r = 0; r < n; r++) patterns[r] = all;
    const end = leafPathStart[l + 1]!;
    for (let s = leafPathStart[l]!; s < end; s++) {
      const at = pathNode[s]! * n;
      const taken = pathTrue[s]!;
      const slot = pathSlot[s]!;
      for (let r = 0; r < n; r++) patterns[r]! &= ~((directions[at + r]! ^ taken) << slot);
    }
    const tableStart = leafTableStart[l]!;
    const f = leafFeatureStart[l]!;
    for (let r = 0; r < n; r++) {
      const base = tableStart + patterns[r]! * d;
      const o = r * width;
      for (let j = 0; j < d; j++) out[o + features[f + j]!]! += table[base + j]!;
    }
  }
}

/**
 * The same tables on SharedArrayBuffers, so worker threads explain with them without a copy
 * (posting the result to a worker shares the memory). Arrays already shared are kept as they are.
 */
export function shareTreeShap(c: CompiledTreeShap): CompiledTreeShap {
  const share = <T extends Int32Array | Float64Array | Uint8Array | Float32Array>(a: T): T => {
    if (a.buffer instanceof SharedArrayBuffer) return a;
    const Ctor = a.constructor as new (buffer: SharedArrayBuffer) => T;
    const out = new Ctor(new SharedArrayBuffer(a.byteLength));
    (out as unknown as { set(src: ArrayLike<number>): void }).set(a);
    return out;
  };
  return {
    ...c,
    nodeFeature: share(c.nodeFeature),
    nodeThreshold: share(c.nodeThreshold),
    nodeMode: share(c.nodeMode),
    nodeMissingTrue: share(c.nodeMissingTrue),
    leafPathStart: share(c.leafPathStart),
    leafDistinct: share(c.leafDistinct),
    leafFeatureStart: share(c.leafFeatureStart),
    leafTableStart: share(c.leafTableStart),
    pathNode: share(c.pathNode),
    pathTrue: share(c.pathTrue),
    pathSlot: share(c.pathSlot),
    features: share(c.features),
    table: share(c.table),
  };
}
