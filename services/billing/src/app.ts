import type { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import type { UsageService } from "@valora/proto/valora/v1/usage_pb";
import type {
  Client,
  Pool,
  PlanCatalog,
  ServiceBase,
  ServiceRegistration,
  TenantDataOptions,
} from "@valora/kit";
import { BILLING_TENANT_TABLES, migrateBilling } from "./migrations.js";
import { UsageReporter } from "./reporter.js";
import { billingService } from "./service.js";
import { BillingStore } from "./store.js";
import { stripeApi, type StripeApi, type StripeSettings } from "./stripe-api.js";

export interface BillingOptions {
  pool: Pool;
  tenants: Pick<Client<typeof TenantService>, "getTenant" | "setPlan">;
  usage: Pick<Client<typeof UsageService>, "queryUsage">;
  plans: PlanCatalog;
  /** Billing is off (plans change directly, nothing is reported) without it. */
  stripe?: StripeSettings & {
    prices: Record<string, string>;
    meteredPrice?: string;
    meterEventName: string;
    reportIntervalMs?: number;
  };
}

export interface BillingApp {
  service: ServiceRegistration;
  /** Billing's share of a tenant's export and erasure (an erased tenant's subscription is cancelled first). */
  data: TenantDataOptions;
  store: BillingStore;
  reporter?: UsageReporter;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The billing service from its dependencies; `main` and `valora up` both use it. */
export function createBilling(base: Pick<ServiceBase, "logger" | "registry">, o: BillingOptions): BillingApp {
  const store = new BillingStore(o.pool);
  const api: StripeApi | undefined = o.stripe ? stripeApi(o.stripe) : undefined;
  const reporter =
    api && o.stripe
      ? new UsageReporter({
          store,
          usage: o.usage,
          api,
          eventName: o.stripe.meterEventName,
          logger: base.logger,
          registry: base.registry,
          ...(o.stripe.reportIntervalMs ? { intervalMs: o.stripe.reportIntervalMs } : {}),
        })
      : undefined;
  return {
    service: billingService({
      store,
      tenants: o.tenants,
      plans: o.plans,
      logger: base.logger,
      ...(api && o.stripe
        ? {
            stripe: {
              api,
              prices: o.stripe.prices,
              ...(o.stripe.meteredPrice ? { meteredPrice: o.stripe.meteredPrice } : {}),
            },
          }
        : {}),
    }),
    data: {
      pool: o.pool,
      tables: BILLING_TENANT_TABLES,
      purgeObjects: async (tenantId) => {
        const subscription = (await store.account(tenantId))?.subscriptionId;
        if (!subscription) return [];
        if (!api) throw new Error("the tenant has a Stripe subscription but Stripe is not configured");
        await api.cancelSubscription(subscription);
        return [{ name: "billing.stripe_subscription_cancelled", rows: 1 }];
      },
    },
    store,
    ...(reporter ? { reporter } : {}),
    async start() {
      const applied = await migrateBilling(o.pool);
      if (applied.length > 0) base.logger.info({ migrations: applied }, "billing schema migrated");
      if (reporter) {
        reporter.start();
        base.logger.info(
          { prices: o.stripe!.prices, meter: o.stripe!.meterEventName },
          "billing on: Stripe subscriptions and metered usage",
        );
      } else
        base.logger.info(
          "billing off: no STRIPE_SECRET_KEY; plans change directly and usage is not reported to Stripe",
        );
    },
    async close() {
      await reporter?.stop();
    },
  };
}
