export * from "./keys.js";
export * from "./migrations.js";
export * from "./roles.js";
export * from "./store.js";
export * from "./service.js";
export * from "./webhooks.js";
export * from "./bootstrap.js";
export * from "./app.js";
