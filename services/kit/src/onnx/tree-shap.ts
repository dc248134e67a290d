import { goesTrue, type Tree, type TreeEnsemble } from "./tree-ensemble.js";

/**
 * Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent Individualized Feature
 * Attribution for Tree Ensembles", Algorithm 2) in O(T·L·D²). Contributions plus the base value
 * (the cover-weighted mean output) equal the model output.
 */
interface PathElement {
  feature: number;
  zero: number;
  one: number;
  weight: number;
}

function extend(path: PathElement[], zero: number, one: number, feature: number): PathElement[] {
  const l = path.length;
  const m = path.map((e) => ({ ...e }));
  m.push({ feature, zero, one, weight: l === 0 ? 1 : 0 });
  for (let i = l; i >= 1; i--) {
    m[i]!.weight += one * m[i - 1]!.weight * (i / (l + 1));
    m[i - 1]!.weight = zero * m[i - 1]!.weight * ((l + 1 - i) / (l + 1));
  }
  return m;
}

/** Removes element `index` from the path, undoing its extension. */
function unwind(path: PathElement[], index: number): PathElement[] {
  const l = path.length;
  const { one, zero } = path[index]!;
  let n = path[l - 1]!.weight;
  const m = path.slice(0, l - 1).map((e) => ({ ...e }));
  for (let j = l - 1; j >= 1; j--) {
    const e = m[j - 1]!;
    if (one !== 0) {
      const t = e.weight;
      e.weight = (n * l) / (j * one);
      n = t - e.weight * zero * ((l - j) / l);
    } else {
      e.weight = (e.weight * l) / (zero * (l - j));
    }
  }
  for (let j = index; j < l - 1; j++) {
    m[j]!.feature = path[j + 1]!.feature;
    m[j]!.zero = path[j + 1]!.zero;
    m[j]!.one = path[j + 1]!.one;
  }
  return m;
}

function unwoundSum(path: PathElement[], index: number): number {
  return unwind(path, index).reduce((s, e) => s + e.weight, 0);
}

function treeShap(tree: Tree, x: ArrayLike<number>, phi: Float64Array, scale: number): void {
  const recurse = (id: number, parentPath: PathElement[], zero: number, one: number, feature: number): void => {
    let path = extend(parentPath, zero, one, feature);
    const node = tree.nodes[id]!;
    if (node.mode === "LEAF") {
      for (let i = 1; i < path.length; i++) {
        const e = path[i]!;
        phi[e.feature]! += unwoundSum(path, i) * (e.one - e.zero) * node.value * scale;
      }
      return;
    }
    const xv = x[node.feature] ?? Number.NaN;
    const hot = goesTrue(node, xv) ? node.trueChild : node.falseChild;
    const cold = hot === node.trueChild ? node.falseChild : node.trueChild;
    let incomingZero = 1;
    let incomingOne = 1;
    const k = path.findIndex((e, i) => i > 0 && e.feature === node.feature);
    if (k > 0) {
      incomingZero = path[k]!.zero;
      incomingOne = path[k]!.one;
      path = unwind(path, k);
    }
    const cover = node.cover;
    const hotCover = tree.nodes[hot]!.cover;
    const coldCover = tree.nodes[cold]!.cover;
    recurse(hot, path, cover > 0 ? (incomingZero * hotCover) / cover : 0, incomingOne, node.feature);
    recurse(cold, path, cover > 0 ? (incomingZero * coldCover) / cover : 0, 0, node.feature);
  };
  recurse(0, [], 1, 1, -1);
}

/** The cover-weighted mean output of one tree: what it predicts when no feature is known. */
export function expectedValue(tree: Tree): number {
  const visit = (id: number): number => {
    const node = tree.nodes[id]!;
    if (node.mode === "LEAF") return node.value;
    const total = node.cover;
    const t = tree.nodes[node.trueChild]!;
    const f = tree.nodes[node.falseChild]!;
    if (total <= 0) return (visit(node.trueChild) + visit(node.falseChild)) / 2;
    return (t.cover / total) * visit(node.trueChild) + (f.cover / total) * visit(node.falseChild);
  };
  return visit(0);
}

export interface ShapResult {
  baseValue: number;
  contributions: Float64Array;
  output: number;
}

export function ensembleBaseValue(ensemble: TreeEnsemble): number {
  const scale = ensemble.aggregate === "AVERAGE" ? 1 / ensemble.trees.length : 1;
  return ensemble.baseValue + ensemble.trees.reduce((s, t) => s + expectedValue(t), 0) * scale;
}

/** SHAP values of one row; `baseValue` may be passed in when explaining many rows. */
export function shapValues(ensemble: TreeEnsemble, x: ArrayLike<number>, baseValue = ensembleBaseValue(ensemble)): ShapResult {
  const phi = new Float64Array(ensemble.featureCount);
  const scale = ensemble.aggregate === "AVERAGE" ? 1 / ensemble.trees.length : 1;
  for (const tree of ensemble.trees) treeShap(tree, x, phi, scale);
  const output = baseValue + phi.reduce((s, v) => s + v, 0);
  return { baseValue, contributions: phi, output };
}
