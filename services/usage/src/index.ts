export * from "./migrations.js";
export * from "./store.js";
export * from "./dates.js";
export * from "./service.js";
export * from "./app.js";
