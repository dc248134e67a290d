export * from "./api/index.js";
export { renderObjects, renderYaml } from "./controllers/render.js";
export * from "./controllers/valuation-model/desired.js";
export * from "./controllers/valuation-model/rollout.js";
export * from "./controllers/valuation-model/status.js";
export { pipelineObjects, pipelineConfig, configHash } from "./controllers/asset-pipeline/desired.js";
export * from "./controllers/shared.js";
