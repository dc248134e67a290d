/**
 * A tree ensemble regressor as ai.onnx.ml TreeEnsembleRegressor describes it, in a shape that is
 * easy to walk: trees of nodes indexed by node id. Pure data and pure functions only.
 */
export type BranchMode = "BRANCH_LEQ" | "BRANCH_LT" | "BRANCH_GTE" | "BRANCH_GT" | "BRANCH_EQ" | "BRANCH_NEQ";
export type NodeMode = BranchMode | "LEAF";

export interface TreeNode {
  mode: NodeMode;
  feature: number;
  /** Split threshold, a float32 value as stored in the ONNX attribute. */
  threshold: number;
  trueChild: number;
  falseChild: number;
  /** Where a missing (NaN) feature value goes: the true branch when set, otherwise the false one. */
  missingTracksTrue: boolean;
  /** Leaf output (sum of its target weights); 0 for branches. */
  value: number;
  /** Training rows (or hessian mass) that reached the node; drives path-dependent TreeSHAP. */
  cover: number;
}

export interface Tree {
  nodes: TreeNode[];
}

export interface TreeEnsemble {
  trees: Tree[];
  baseValue: number;
  aggregate: "SUM" | "AVERAGE";
  /** Number of input features the ensemble reads (one past the largest feature index). */
  featureCount: number;
  /** How covers were obtained: recorded at training time, or a uniform assumption. */
  coverSource: "recorded" | "uniform";
}

const f32 = Math.fround;

/** Whether the value goes to the true branch, with ONNX semantics (float32 compare, NaN routing). */
export function goesTrue(node: TreeNode, x: number): boolean {
  if (Number.isNaN(x)) return node.missingTracksTrue;
  const v = f32(x);
  switch (node.mode) {
    case "BRANCH_LEQ":
      return v <= node.threshold;
    case "BRANCH_LT":
      return v < node.threshold;
    case "BRANCH_GTE":
      return v >= node.threshold;
    case "BRANCH_GT":
      return v > node.threshold;
    case "BRANCH_EQ":
      return v === node.threshold;
    case "BRANCH_NEQ":
      return v !== node.threshold;
    case "LEAF":
      return false;
  }
}

export function leafFor(tree: Tree, x: ArrayLike<number>): TreeNode {
  let node = tree.nodes[0]!;
  while (node.mode !== "LEAF") {
    node = tree.nodes[goesTrue(node, x[node.feature] ?? Number.NaN) ? node.trueChild : node.falseChild]!;
  }
  return node;
}

export function predict(ensemble: TreeEnsemble, x: ArrayLike<number>): number {
  let sum = 0;
  for (const tree of ensemble.trees) sum += leafFor(tree, x).value;
  if (ensemble.aggregate === "AVERAGE") sum /= ensemble.trees.length;
  return sum + ensemble.baseValue;
}

/** Covers for trees that carry none: each branch splits its mass evenly between its children. */
export function uniformCovers(tree: Tree): number[] {
  const covers = new Array<number>(tree.nodes.length).fill(0);
  const visit = (id: number, mass: number): void => {
    covers[id] = mass;
    const node = tree.nodes[id]!;
    if (node.mode === "LEAF") return;
    visit(node.trueChild, mass / 2);
    visit(node.falseChild, mass / 2);
  };
  visit(0, 1);
  return covers;
}
