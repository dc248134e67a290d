export * from "./cache.js";
export * from "./service.js";
