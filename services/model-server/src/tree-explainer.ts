import {
  MAX_SHAP_TABLE,
  compileTreeShap,
  ensembleBaseValue,
  shareTreeShap,
  treeShapTableSize,
  type CompiledTreeShap,
  type TreeEnsemble,
} from "@valora/kit/onnx";

/**
 * A tree ensemble ready to explain: its leaf tables, built at load, and the few facts an
 * explanation reports. The parsed ensemble (tens of MB of small objects for a few thousand trees)
 * is kept only when its tables would be too large and the recursive algorithm must walk it.
 */
export type TreeExplainer = {
  featureCount: number;
  trees: number;
  coverSource: TreeEnsemble["coverSource"];
  baseValue: number;
} & ({ tables: CompiledTreeShap; ensemble?: undefined } | { tables: null; ensemble: TreeEnsemble });

/**
 * Pure: the explainer of a parsed ensemble whose inputs are `width` columns wide; with `shared`,
 * its leaf tables are on SharedArrayBuffers (to cross to other threads without a copy).
 */
export function treeExplainer(
  ensemble: TreeEnsemble,
  width: number,
  options: { shared?: boolean } = {},
): TreeExplainer {
  const widened = { ...ensemble, featureCount: Math.max(width, ensemble.featureCount) };
  const facts = {
    featureCount: widened.featureCount,
    trees: widened.trees.length,
    coverSource: widened.coverSource,
    baseValue: ensembleBaseValue(widened),
  };
  if (treeShapTableSize(widened) > MAX_SHAP_TABLE) return { ...facts, tables: null, ensemble: widened };
  const tables = compileTreeShap(widened);
  return { ...facts, tables: options.shared ? shareTreeShap(tables) : tables };
}

/** Pure: the explainer over `width` input columns (or the trees' own, when they use more). */
export function widenExplainer(e: TreeExplainer, width: number): TreeExplainer {
  const featureCount = Math.max(width, e.featureCount);
  if (featureCount === e.featureCount) return e;
  return e.tables
    ? { ...e, featureCount, tables: { ...e.tables, featureCount } }
    : { ...e, featureCount, ensemble: { ...e.ensemble, featureCount } };
}
