export * from "./csv-input.js";
export * from "./migrations.js";
export * from "./service.js";
export * from "./store.js";
export * from "./worker.js";
export * from "./value-rows.js";
