export * from "./common.js";
export * from "./valuation-model.js";
export * from "./asset-pipeline.js";
export { buildCrd, structural, openApiSchema, VALUATION_MODEL_CRD, ASSET_PIPELINE_CRD } from "./crd.js";
export { crdFiles, crdReferenceMarkdown } from "./generate.js";
export { validateObject, type ValoraKind, type ValoraObject } from "./validate.js";
