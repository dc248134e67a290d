export * from "./input.js";
export * from "./features.js";
export * from "./routing.js";
export * from "./model-client.js";
export * from "./valuation.js";
export * from "./grpc.js";
export * from "./metrics.js";
export * from "./market-index.js";
