export * from "./input.js";
export * from "./features.js";
export * from "./routing.js";
