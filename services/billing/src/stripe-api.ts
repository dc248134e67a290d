import { randomUUID } from "node:crypto";
import Stripe from "stripe";

export interface SubscriptionState {
  id: string;
  customerId: string;
  status: string;
  itemId: string | null;
  priceIds: string[];
  tenantId?: string;
}

export interface VerifiedEvent {
  id: string;
  type: string;
  subscription?: SubscriptionState;
}

/** The part of Stripe billing uses, over the official SDK: one thin adapter, no decisions. */
export interface StripeApi {
  createCustomer(tenantId: string, name: string): Promise<string>;
  createSubscription(
    tenantId: string,
    customerId: string,
    prices: string[],
    plan: string,
  ): Promise<SubscriptionState>;
  changeSubscriptionPrice(
    subscriptionId: string,
    itemId: string,
    price: string,
    plan: string,
  ): Promise<SubscriptionState>;
  cancelSubscription(subscriptionId: string): Promise<SubscriptionState>;
  reportUsage(
    eventName: string,
    customerId: string,
    e: { identifier: string; value: number; timestamp: number },
  ): Promise<void>;
  /** Verifies the Stripe-Signature over the exact bytes; throws when it does not match. */
  verifyWebhook(payload: Buffer, signature: string): VerifiedEvent;
}

export interface StripeSettings {
  secretKey: string;
  webhookSecret: string;
  /** API host, port and protocol (a local double in tests; Stripe's own by default). */
  host?: string;
  port?: number;
  protocol?: "http" | "https";
  maxNetworkRetries?: number;
}

const subscriptionState = (s: Stripe.Subscription): SubscriptionState => ({
  id: s.id,
  customerId: typeof s.customer === "string" ? s.customer : s.customer.id,
  status: s.status,
  itemId: s.items.data[0]?.id ?? null,
  priceIds: s.items.data.map((i) => i.price.id),
  ...(s.metadata?.["tenant_id"] ? { tenantId: s.metadata["tenant_id"] } : {}),
});

export function stripeApi(o: StripeSettings): StripeApi {
  const stripe = new Stripe(o.secretKey, {
    maxNetworkRetries: o.maxNetworkRetries ?? 2,
    timeout: 20_000,
    ...(o.host ? { host: o.host } : {}),
    ...(o.port ? { port: o.port } : {}),
    ...(o.protocol ? { protocol: o.protocol } : {}),
    appInfo: { name: "valora-billing" },
  });
  // One idempotency key per logical operation; the SDK's own network retries reuse it.
  const once = () => ({ idempotencyKey: randomUUID() });
  return {
    async createCustomer(tenantId, name) {
      // Keyed by tenant: two racing first plan changes create one customer.
      const c = await stripe.customers.create(
        { name, metadata: { tenant_id: tenantId } },
        { idempotencyKey: `valora-customer-${tenantId}` },
      );
      return c.id;
    },
    async createSubscription(tenantId, customerId, prices, plan) {
      return subscriptionState(
        await stripe.subscriptions.create(
          {
            customer: customerId,
            items: prices.map((price) => ({ price })),
            metadata: { tenant_id: tenantId, plan },
          },
          once(),
        ),
      );
    },
    async changeSubscriptionPrice(subscriptionId, itemId, price, plan) {
      return subscriptionState(
        await stripe.subscriptions.update(
          subscriptionId,
          { items: [{ id: itemId, price }], proration_behavior: "create_prorations", metadata: { plan } },
          once(),
        ),
      );
    },
    async cancelSubscription(subscriptionId) {
      return subscriptionState(await stripe.subscriptions.cancel(subscriptionId, {}, once()));
    },
    async reportUsage(eventName, customerId, e) {
      await stripe.billing.meterEvents.create({
        event_name: eventName,
        payload: { stripe_customer_id: customerId, value: String(e.value) },
        identifier: e.identifier,
        timestamp: e.timestamp,
      });
    },
    verifyWebhook(payload, signature) {
      const event = stripe.webhooks.constructEvent(payload, signature, o.webhookSecret);
      const obj = event.data.object as { object?: string };
      return {
        id: event.id,
        type: event.type,
        ...(obj.object === "subscription"
          ? { subscription: subscriptionState(obj as Stripe.Subscription) }
          : {}),
      };
    },
  };
}
