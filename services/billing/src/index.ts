export * from "./migrations.js";
export * from "./store.js";
export * from "./decisions.js";
export * from "./stripe-api.js";
export * from "./service.js";
export * from "./reporter.js";
export * from "./app.js";
