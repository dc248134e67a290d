export * from "./app.js";
export * from "./auth.js";
export * from "./plans.js";
export * from "./rate-limit.js";
export * from "./grpc-ingress.js";
export * from "./valuation-json.js";
export * from "./quota.js";
export * from "./tenant-lifecycle.js";
