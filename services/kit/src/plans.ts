import { z } from "zod";
import { ValoraError } from "./errors.js";

/**
 * What a plan entitles a tenant to. The gateway enforces every field on each request, reading the
 * tenant's current plan, so an upgrade or downgrade applies to the next request.
 */
export const PlanSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/),
  title: z.string().min(1),
  /** Valuations (single, batch items and job rows) per calendar month, UTC; 0 = unlimited. */
  monthlyValuations: z.number().int().min(0),
  /** Sustained requests per second and burst, per tenant (token bucket). */
  rate: z.strictObject({ perSecond: z.number().positive(), burst: z.number().int().positive() }),
  /** Bulk CSV jobs allowed, and their largest size in rows. */
  bulkJobs: z.boolean(),
  maxJobRows: z.number().int().min(0),
  /** Asset classes the plan may value; empty = every class. */
  assetClasses: z.array(z.string().min(1)),
  /** Monthly price shown to users, in cents (the Stripe price decides what is charged). */
  priceCents: z.number().int().min(0),
});
export type Plan = z.infer<typeof PlanSchema>;

export const DEFAULT_PLANS: readonly Plan[] = [
  {
    name: "free",
    title: "Free",
    monthlyValuations: 1_000,
    rate: { perSecond: 5, burst: 20 },
    bulkJobs: false,
    maxJobRows: 0,
    assetClasses: [],
    priceCents: 0,
  },
  {
    name: "pro",
    title: "Pro",
    monthlyValuations: 100_000,
    rate: { perSecond: 100, burst: 200 },
    bulkJobs: true,
    maxJobRows: 100_000,
    assetClasses: [],
    priceCents: 49_900,
  },
  {
    name: "enterprise",
    title: "Enterprise",
    monthlyValuations: 0,
    rate: { perSecond: 5_000, burst: 10_000 },
    bulkJobs: true,
    maxJobRows: 100_000,
    assetClasses: [],
    priceCents: 0,
  },
];

/** The plans of a deployment, by name. Unknown plan names fall back to the first (most limited) plan. */
export class PlanCatalog {
  private readonly byName: Map<string, Plan>;
  constructor(readonly plans: readonly Plan[] = DEFAULT_PLANS) {
    if (plans.length === 0)
      throw new ValoraError("INVALID_ARGUMENT", "a plan catalog needs at least one plan");
    this.byName = new Map(plans.map((p) => [p.name, p]));
    if (this.byName.size !== plans.length)
      throw new ValoraError("INVALID_ARGUMENT", "plan names must be unique");
  }

  /** The plan a tenant is on; a name no longer in the catalog gets the most limited plan. */
  of(name: string): Plan {
    return this.byName.get(name) ?? this.plans[0]!;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Throws INVALID_ARGUMENT naming the field when `name` is not a plan. */
  require(name: string, field = "plan"): Plan {
    const p = this.byName.get(name);
    if (!p)
      throw new ValoraError("INVALID_ARGUMENT", `unknown plan "${name}"`, {
        details: [{ field, description: `one of ${[...this.byName.keys()].join(", ")}` }],
      });
    return p;
  }
}

/**
 * Plans from the `VALORA_PLANS` setting (a JSON array of plans) or the defaults. Invalid JSON
 * or an invalid plan stops start-up with the field at fault, rather than running on a guess.
 */
export function planCatalogFrom(json: string | undefined): PlanCatalog {
  if (!json) return new PlanCatalog();
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new ValoraError("INVALID_ARGUMENT", "VALORA_PLANS is not valid JSON", {
      details: [{ field: "VALORA_PLANS", description: "a JSON array of plans" }],
    });
  }
  const parsed = z.array(PlanSchema).min(1).safeParse(raw);
  if (!parsed.success)
    throw new ValoraError("INVALID_ARGUMENT", "VALORA_PLANS is invalid", {
      details: parsed.error.issues.map((i) => ({
        field: ["VALORA_PLANS", ...i.path.map(String)].join("."),
        description: i.message,
      })),
    });
  return new PlanCatalog(parsed.data);
}

/** Pure: may a plan value this asset class? */
export function planAllows(plan: Plan, assetClass: string): boolean {
  return plan.assetClasses.length === 0 || plan.assetClasses.includes(assetClass);
}
