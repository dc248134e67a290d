import { ValoraError } from "@valora/kit";

/** Pure decisions of billing: no I/O, no clock. */

/** Stripe subscription statuses under which the subscribed plan is in force. */
const PAID = new Set(["active", "trialing", "past_due"]);

/**
 * The plan a tenant should be on given its Stripe subscription: the plan whose price the
 * subscription holds while it is paid (or in its grace period), the fallback plan otherwise.
 * Undefined when the subscription names no price Valora knows (left alone, and logged).
 */
export function planForSubscription(
  status: string,
  priceIds: string[],
  prices: Record<string, string>,
  fallbackPlan: string,
): string | undefined {
  if (!PAID.has(status)) return fallbackPlan;
  const byPrice = new Map(Object.entries(prices).map(([plan, price]) => [price, plan]));
  for (const id of priceIds) {
    const plan = byPrice.get(id);
    if (plan) return plan;
  }
  return undefined;
}

/**
 * The meter event that moves a day's reported usage from `from` to `to` units. Its identifier is
 * a function of the tenant, day and both totals, so re-sending it after a crash is recognised by
 * Stripe as the same event (Stripe de-duplicates identifiers for at least 24 hours).
 */
export function meterEvent(
  tenantId: string,
  day: string,
  from: number,
  to: number,
  now: Date,
): { identifier: string; value: number; timestamp: number } {
  const endOfDay = Date.parse(`${day}T23:59:59Z`);
  return {
    identifier: `valora-${tenantId}-${day}-${from}-${to}`.slice(0, 100),
    value: to - from,
    timestamp: Math.floor(Math.min(endOfDay, now.getTime()) / 1000),
  };
}

/** Pure: the days whose usage is still open for reporting (yesterday, for late events, and today; UTC). */
export function openDays(now: Date): string[] {
  const today = now.toISOString().slice(0, 10);
  const yesterday = new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10);
  return [yesterday, today];
}

/** Pure: `plan=price,...` as a map, refusing a malformed pair or a plan not in the catalog. */
export function parsePrices(pairs: string[], isPlan: (name: string) => boolean): Record<string, string> {
  return Object.fromEntries(
    pairs.map((p) => {
      const [plan, price, extra] = p.split("=").map((s) => s.trim());
      if (!plan || !price || extra !== undefined || !isPlan(plan))
        throw new ValoraError(
          "INVALID_ARGUMENT",
          `STRIPE_PRICES: "${p}" is not plan=price_id for a known plan`,
          { details: [{ field: "STRIPE_PRICES", description: p }] },
        );
      return [plan, price];
    }),
  );
}
