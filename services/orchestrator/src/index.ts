export * from "./cache.js";
export * from "./service.js";
export * from "./performance.js";
export * from "./jobs/index.js";
export * from "./usage.js";
export * from "./kube-catalog.js";
export * from "./pipeline-dispatch.js";
export * from "./registry-hooks.js";
