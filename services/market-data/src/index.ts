export * from "./contract.js";
export * from "./providers.js";
export * from "./sales-index.js";
export * from "./catalog.js";
export * from "./service.js";
export * from "./app.js";
