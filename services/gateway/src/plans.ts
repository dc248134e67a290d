import type { Bucket } from "./rate-limit.js";

/**
 * Request rate per tenant by plan (token bucket: sustained rate per second, burst). Plans and
 * their quotas belong to billing (issue 9); the gateway only needs the rate here.
 */
export const PLAN_RATES: Record<string, Bucket> = {
  free: { rate: 5, burst: 20 },
  pro: { rate: 100, burst: 200 },
  enterprise: { rate: 5000, burst: 10000 },
};

export function bucketForPlan(plan: string, overrides: Record<string, Bucket> = {}): Bucket {
  return overrides[plan] ?? PLAN_RATES[plan] ?? PLAN_RATES["free"]!;
}
