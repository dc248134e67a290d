export * from "./api/index.js";
export { renderObjects, renderYaml } from "./controllers/render.js";
export * from "./controllers/valuation-model/desired.js";
export * from "./controllers/valuation-model/rollout.js";
export * from "./controllers/valuation-model/status.js";
export { pipelineObjects, pipelineConfig, configHash } from "./controllers/asset-pipeline/desired.js";
export * from "./controllers/shared.js";
export { startOperator, type Operator, type OperatorOptions } from "./operator.js";
export { kubeConfig, clients } from "./runtime/kube.js";
export { WorkQueue } from "./runtime/workqueue.js";
export { LeaderElector } from "./runtime/leader.js";
export { ResilientInformer } from "./runtime/informer.js";
export { TerminalError } from "./runtime/errors.js";
export {
  PodMetricsAnalysis,
  PrometheusAnalysis,
  snapshotOf,
  pairedSnapshotOf,
  histogramQuantile,
  type AnalysisSource,
} from "./controllers/valuation-model/analysis.js";
export * from "./controllers/valuation-model/paired.js";
export {
  ValuationModelReconciler,
  FINALIZER,
  FIELD_MANAGER,
} from "./controllers/valuation-model/reconcile.js";
export * from "./local/index.js";
