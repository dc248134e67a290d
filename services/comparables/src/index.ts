export * from "./engine.js";
export * from "./seed.js";
export * from "./store.js";
export * from "./follow.js";
