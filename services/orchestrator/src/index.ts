export * from "./cache.js";
export * from "./service.js";
export * from "./performance.js";
