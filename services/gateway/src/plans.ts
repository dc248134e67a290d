import { ValoraError, planAllows, type Plan, type PlanCatalog } from "@valora/kit";
import { mayValue, type Principal } from "./auth.js";
import type { Bucket } from "./rate-limit.js";

/** Pure: the token bucket of a plan. */
export const bucketOf = (plan: Plan): Bucket => ({ rate: plan.rate.perSecond, burst: plan.rate.burst });

/**
 * Pure: may this principal value this asset class? Outside the key's scope the class is reported
 * as unknown (404, like any object of another tenant); outside the tenant's plan, 403 saying so.
 */
export function checkAssetClass(
  plans: PlanCatalog,
  p: Principal,
  assetClass: string,
  field = "assetClass",
): void {
  if (!mayValue(p, assetClass))
    throw new ValoraError("NOT_FOUND", `unknown asset class "${assetClass}"`, {
      details: [{ field, description: "not an asset class this key may value" }],
    });
  checkPlanClass(plans, p, assetClass, field);
}

/**
 * Pure: refuses an asset class the tenant's plan does not include. Unlike a key's scope (404, the
 * class is not revealed), the plan's limits are the tenant's own business: 403 saying so.
 */
export function checkPlanClass(
  plans: PlanCatalog,
  p: Principal,
  assetClass: string,
  field = "assetClass",
): void {
  const plan = plans.of(p.plan);
  if (!planAllows(plan, assetClass))
    throw new ValoraError(
      "PERMISSION_DENIED",
      `the ${plan.title} plan does not include the asset class "${assetClass}" (it includes ${plan.assetClasses.join(", ")}); change plan with PUT /v1/billing/plan`,
      { details: [{ field, description: `not in the ${plan.name} plan` }] },
    );
}

/** Pure: refuses a bulk job the tenant's plan does not allow (jobs at all, or this many rows). */
export function checkPlanJob(plans: PlanCatalog, p: Principal, rows: number): void {
  const plan = plans.of(p.plan);
  if (!plan.bulkJobs)
    throw new ValoraError(
      "PERMISSION_DENIED",
      `the ${plan.title} plan does not include bulk jobs; change plan with PUT /v1/billing/plan`,
      { details: [{ field: "plan", description: `${plan.name} has no bulk jobs` }] },
    );
  if (rows > plan.maxJobRows)
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `${rows} rows is more than the ${plan.maxJobRows} a job of the ${plan.title} plan may hold`,
      { details: [{ field: "body", description: `at most ${plan.maxJobRows} rows` }] },
    );
}
