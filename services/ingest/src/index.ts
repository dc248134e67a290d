export * from "./contract.js";
export * from "./parse.js";
export * from "./store.js";
export * from "./outcomes.js";
export * from "./service.js";
export * from "./app.js";
export * from "./export.js";
