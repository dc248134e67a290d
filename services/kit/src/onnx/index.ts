export * from "./tree-ensemble.js";
export * from "./tree-shap.js";
export * from "./model.js";
export * from "./fast-tree-shap.js";
export * from "./native-shap.js";
