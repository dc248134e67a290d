export { defaultFolds, trainModel, type TrainOptions, type TrainOutput, type ModelCard } from "./train.js";
export { trainGbm, DEFAULT_PARAMS, type GbmParams } from "./gbm.js";
export {
  buildDataset,
  encodeRecord,
  encodeRows,
  keepRows,
  parseCsv,
  type ColumnSpec,
  type RowFilter,
} from "./dataset.js";
export { binMatrix, binIndex, computeEdges } from "./binning.js";
export { accuracy, intervalFor, residualQuantiles, quantile } from "./metrics.js";
export {
  inputFields,
  renderManifests,
  fieldName,
  detectOneHotGroups,
  oneHotGroup,
  validityOf,
  pipelineFields,
  type OneHotGroup,
} from "./manifests.js";
export { heldOutSplit, type HeldOutSplit } from "./split.js";
