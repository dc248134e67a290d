import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { BillingService, type BillingAccountSchema } from "@valora/proto/valora/v1/billing_pb";
import type { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import {
  ValoraError,
  implement,
  type Client,
  type Logger,
  type PlanCatalog,
  type ServiceRegistration,
} from "@valora/kit";
import { planForSubscription } from "./decisions.js";
import type { StripeApi, SubscriptionState, VerifiedEvent } from "./stripe-api.js";
import type { AccountRow, BillingStore } from "./store.js";

export interface StripeBilling {
  api: StripeApi;
  /** Stripe price id per plan name; plans without a price (free) have no subscription. */
  prices: Record<string, string>;
  /** A metered price added to every new subscription (usage billed through the meter). */
  meteredPrice?: string;
}

export interface BillingServiceDeps {
  store: BillingStore;
  tenants: Pick<Client<typeof TenantService>, "getTenant" | "setPlan">;
  plans: PlanCatalog;
  /** Absent: billing is off; plan changes apply directly. */
  stripe?: StripeBilling;
  logger: Logger;
}

const SUBSCRIPTION_EVENTS = new Set([
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.deleted",
  "customer.subscription.paused",
  "customer.subscription.resumed",
]);

/**
 * valora.v1.BillingService. A plan change with billing on creates or changes the tenant's Stripe
 * subscription first and applies the plan once Stripe accepted it; Stripe's webhooks then keep
 * the plan in line with the subscription (payment failures, cancellations, changes made in the
 * Stripe dashboard). Webhooks are verified against their signature before anything is read.
 */
export function billingService(d: BillingServiceDeps): ServiceRegistration {
  const fallbackPlan = d.plans.plans[0]!.name;

  const accountOf = async (
    tenantId: string,
    plan: string,
    row?: AccountRow,
  ): Promise<MessageInitShape<typeof BillingAccountSchema>> => {
    const totals = await d.store.totals(tenantId);
    return {
      tenantId,
      plan,
      billingEnabled: d.stripe !== undefined,
      stripeCustomerId: row?.customerId ?? "",
      stripeSubscriptionId: row?.subscriptionId ?? "",
      subscriptionStatus: row?.subscriptionStatus ?? "",
      reportedUnits: BigInt(totals.units),
      ...(totals.lastReportedAt ? { lastReportedAt: timestampFromDate(totals.lastReportedAt) } : {}),
    };
  };

  const tenantOf = async (tenantId: string) => {
    const { tenant } = await d.tenants.getTenant({ tenantId });
    if (!tenant) throw new ValoraError("NOT_FOUND", `tenant "${tenantId}" not found`);
    return tenant;
  };

  /** Creates or changes the Stripe subscription so that it bills `plan`. */
  const subscribe = async (
    s: StripeBilling,
    tenantId: string,
    tenantName: string,
    plan: string,
  ): Promise<AccountRow> => {
    let row = await d.store.account(tenantId);
    if (!row?.customerId) {
      await d.store.saveCustomer(tenantId, await s.api.createCustomer(tenantId, tenantName));
      row = (await d.store.account(tenantId))!;
    }
    const price = s.prices[plan];
    let sub: SubscriptionState | undefined;
    if (!price) {
      if (row.subscriptionId && row.subscriptionStatus !== "canceled")
        sub = await s.api.cancelSubscription(row.subscriptionId);
    } else if (row.subscriptionId && row.subscriptionItemId && row.subscriptionStatus !== "canceled") {
      sub = await s.api.changeSubscriptionPrice(row.subscriptionId, row.subscriptionItemId, price, plan);
    } else {
      sub = await s.api.createSubscription(
        tenantId,
        row.customerId!,
        [price, ...(s.meteredPrice ? [s.meteredPrice] : [])],
        plan,
      );
    }
    if (sub) await d.store.saveSubscription(tenantId, { id: sub.id, itemId: sub.itemId, status: sub.status });
    return (await d.store.account(tenantId))!;
  };

  const onSubscription = async (
    event: VerifiedEvent,
    ip: string,
  ): Promise<{ outcome: "applied" | "ignored" | "duplicate"; changed: string[] }> => {
    const changed: string[] = [];
    const outcome = await d.store.onceForEvent(event.id, event.type, ip, async (c) => {
      const sub = event.subscription;
      if (!SUBSCRIPTION_EVENTS.has(event.type) || !sub) return "ignored";
      const row =
        (await d.store.accountByCustomer(sub.customerId)) ??
        (sub.tenantId ? await d.store.account(sub.tenantId) : undefined);
      if (!row) {
        d.logger.warn(
          { event: event.id, customer: sub.customerId },
          "stripe webhook for a customer no tenant has: ignored",
        );
        return "ignored";
      }
      const status = event.type === "customer.subscription.deleted" ? "canceled" : sub.status;
      // Only the tenant's current subscription decides its plan; events of an older one are history.
      if (row.subscriptionId && row.subscriptionId !== sub.id && row.subscriptionStatus !== "canceled")
        return "ignored";
      await d.store.saveSubscription(row.tenantId, { id: sub.id, itemId: sub.itemId, status }, c);
      const plan = planForSubscription(status, sub.priceIds, d.stripe!.prices, fallbackPlan);
      if (!plan) {
        d.logger.warn(
          { event: event.id, prices: sub.priceIds },
          "stripe subscription holds no price of a known plan: plan left as is",
        );
        return "applied";
      }
      const res = await d.tenants.setPlan({
        actor: { tenantId: row.tenantId, subject: "stripe", ip },
        tenantId: row.tenantId,
        plan,
        reason: `stripe ${event.type} ${event.id}`,
      });
      if (res.previousPlan !== plan) changed.push(row.tenantId);
      return "applied";
    });
    return { outcome, changed };
  };

  return implement(BillingService, {
    async getAccount(req) {
      const t = await tenantOf(req.tenantId);
      return { account: await accountOf(t.id, t.plan, await d.store.account(t.id)) };
    },
    async changePlan(req) {
      const tenantId = req.actor?.tenantId;
      if (!tenantId || !req.actor?.subject)
        throw new ValoraError("INVALID_ARGUMENT", "actor required", {
          details: [{ field: "actor", description: "tenant_id and subject of the caller" }],
        });
      d.plans.require(req.plan);
      const t = await tenantOf(tenantId);
      const row = d.stripe ? await subscribe(d.stripe, t.id, t.name, req.plan) : await d.store.account(t.id);
      const res = await d.tenants.setPlan({
        actor: req.actor,
        tenantId: t.id,
        plan: req.plan,
        reason: d.stripe ? `subscription ${row?.subscriptionId ?? "none"}` : "billing off",
      });
      return { account: await accountOf(t.id, req.plan, row), previousPlan: res.previousPlan };
    },
    async handleWebhook(req) {
      if (!d.stripe) throw new ValoraError("FAILED_PRECONDITION", "billing is off: no Stripe key configured");
      let event: VerifiedEvent;
      try {
        event = d.stripe.api.verifyWebhook(Buffer.from(req.payload), req.signature);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await d.store.logRejected(message, req.ip);
        d.logger.warn({ ip: req.ip, err: message }, "stripe webhook refused: signature verification failed");
        throw new ValoraError("INVALID_ARGUMENT", "webhook signature verification failed", {
          details: [
            {
              field: "header.stripe-signature",
              description: "does not match the payload and the endpoint's signing secret",
            },
          ],
        });
      }
      const { outcome, changed } = await onSubscription(event, req.ip);
      return { eventId: event.id, type: event.type, outcome, changedTenants: changed };
    },
  });
}
