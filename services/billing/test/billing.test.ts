import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Stripe from "stripe";
import type { FastifyInstance } from "fastify";
import { Role, TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { BillingService } from "@valora/proto/valora/v1/billing_pb";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import {
  PlanCatalog,
  createClient,
  createGrpcServer,
  createPgPool,
  createServiceBase,
  type Client,
  type GrpcServer,
  type Pool,
} from "@valora/kit";
import { captureLogs, freshDatabase } from "@valora/kit/testing";
import { createTenants } from "@valora/tenants";
import { createUsage } from "@valora/usage";
import { Authenticator, LocalRateLimiter, buildGateway } from "@valora/gateway";
import {
  createBilling,
  meterEvent,
  parsePrices,
  planForSubscription,
  type BillingApp,
} from "../src/index.js";
import { StripeDouble } from "./stripe-double.js";

const WEBHOOK_SECRET = "whsec_test_secret";

describe("billing decisions (pure)", () => {
  it("maps a subscription to its plan while paid, to the fallback otherwise", () => {
    const prices = { pro: "price_pro", enterprise: "price_ent" };
    expect(planForSubscription("active", ["price_metered", "price_ent"], prices, "free")).toBe("enterprise");
    expect(planForSubscription("past_due", ["price_pro"], prices, "free")).toBe("pro");
    expect(planForSubscription("canceled", ["price_pro"], prices, "free")).toBe("free");
    expect(planForSubscription("unpaid", ["price_pro"], prices, "free")).toBe("free");
    expect(planForSubscription("active", ["price_unknown"], prices, "free")).toBeUndefined();
  });

  it("names meter events by tenant, day and totals, stamped inside their day", () => {
    const now = new Date("2026-11-22T10:00:00Z");
    expect(meterEvent("t1", "2026-11-21", 5, 12, now)).toEqual({
      identifier: "valora-t1-2026-11-21-5-12",
      value: 7,
      timestamp: Date.parse("2026-11-21T23:59:59Z") / 1000,
    });
    expect(meterEvent("t1", "2026-11-22", 0, 3, now).timestamp).toBe(now.getTime() / 1000);
  });

  it("parses plan=price settings, refusing unknown plans and malformed pairs", () => {
    const isPlan = (p: string) => ["free", "pro"].includes(p);
    expect(parsePrices(["pro=price_1"], isPlan)).toEqual({ pro: "price_1" });
    expect(() => parsePrices(["gold=price_1"], isPlan)).toThrow(/STRIPE_PRICES/);
    expect(() => parsePrices(["pro"], isPlan)).toThrow(/STRIPE_PRICES/);
  });
});

const url = process.env["DATABASE_URL"];
describe.skipIf(!url)("billing with the real Stripe SDK against a local Stripe double", () => {
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let server: GrpcServer;
  let stripe: StripeDouble;
  let billingApp: BillingApp;
  let tenants: Client<typeof TenantService>;
  let usage: Client<typeof UsageService>;
  let billing: Client<typeof BillingService>;
  let gateway: FastifyInstance;
  let tenantId = "";
  let admin: Record<string, string> = {};
  let closeFirst = async () => undefined as void;
  const { logger } = captureLogs("billing");
  const base = createServiceBase({ name: "billing-test", logger });
  const plans = new PlanCatalog();

  beforeAll(async () => {
    db = await freshDatabase(url!);
    pool = createPgPool({ url: db.url, max: 4 });
    stripe = new StripeDouble();
    const stripePort = await stripe.listen();
    const tenantsApp = createTenants(base, { pool, webhooks: { allowHttp: true, allowPrivate: true } });
    await tenantsApp.start();
    const usageApp = createUsage(base, { pool });
    await usageApp.start();
    const first = createGrpcServer({ ...base, services: [tenantsApp.service, usageApp.service] });
    const address = `127.0.0.1:${await first.listen("127.0.0.1:0")}`;
    tenants = createClient(TenantService, address, { timeoutMs: 5000 });
    usage = createClient(UsageService, address, { timeoutMs: 5000 });
    billingApp = createBilling(base, {
      pool,
      tenants,
      usage,
      plans,
      stripe: {
        secretKey: "sk_test_valora",
        webhookSecret: WEBHOOK_SECRET,
        host: "127.0.0.1",
        port: stripePort,
        protocol: "http",
        maxNetworkRetries: 0,
        prices: { pro: "price_pro", enterprise: "price_ent" },
        meteredPrice: "price_metered",
        meterEventName: "valora_valuations",
        reportIntervalMs: 3_600_000,
      },
    });
    await billingApp.start();
    server = createGrpcServer({ ...base, services: [billingApp.service] });
    billing = createClient(BillingService, `127.0.0.1:${await server.listen("127.0.0.1:0")}`, {
      timeoutMs: 10_000,
    });
    gateway = await buildGateway({
      base,
      tenants,
      usage,
      billing,
      valuations: createClient(ValuationService, "127.0.0.1:1"),
      auth: new Authenticator({ tenants }),
      limiter: new LocalRateLimiter(),
      plans,
    });
    const { tenant } = await tenants.createTenant({ name: "acme", plan: "free" });
    tenantId = tenant!.id;
    const { secret } = await tenants.createApiKey({
      actor: { tenantId, subject: "user:setup", ip: "" },
      name: "admin",
      roles: [Role.ADMIN],
    });
    admin = { authorization: `Bearer ${secret}` };
    closeFirst = async () => {
      await first.shutdown(1000);
      await tenantsApp.close();
      await usageApp.close();
    };
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    billing?.close();
    tenants?.close();
    usage?.close();
    await billingApp?.close();
    await server?.shutdown(1000);
    await closeFirst();
    await stripe?.close();
    await pool?.end();
    await db?.drop();
  });

  const plan = async () => (await tenants.getTenant({ tenantId })).tenant!.plan;
  const putPlan = (name: string) =>
    gateway.inject({ method: "PUT", url: "/v1/billing/plan", headers: admin, payload: { plan: name } });

  it("a plan change creates the Stripe customer and subscription, changes its price, cancels it, and applies each plan at once", async () => {
    const up = await putPlan("pro");
    expect(up.statusCode).toBe(200);
    const account = up.json<{
      data: {
        plan: { name: string };
        billingEnabled: boolean;
        stripeCustomerId: string;
        stripeSubscriptionId: string;
        subscriptionStatus: string;
        previousPlan: string;
      };
    }>().data;
    expect(account).toMatchObject({
      plan: { name: "pro" },
      billingEnabled: true,
      subscriptionStatus: "active",
      previousPlan: "free",
    });
    expect(account.stripeCustomerId).toMatch(/^cus_/);
    expect(await plan()).toBe("pro");
    const [customer, created] = stripe.requests;
    expect(customer).toMatchObject({
      method: "POST",
      path: "/v1/customers",
      idempotencyKey: `valora-customer-${tenantId}`,
      form: { name: "acme", "metadata[tenant_id]": tenantId },
    });
    expect(customer!.stripeVersion).toBeTruthy();
    expect(created).toMatchObject({
      method: "POST",
      path: "/v1/subscriptions",
      form: {
        customer: account.stripeCustomerId,
        "items[0][price]": "price_pro",
        "items[1][price]": "price_metered",
        "metadata[tenant_id]": tenantId,
        "metadata[plan]": "pro",
      },
    });
    expect(created!.idempotencyKey).toBeTruthy();

    expect((await putPlan("enterprise")).statusCode).toBe(200);
    const change = stripe.requests.at(-1)!;
    expect(change).toMatchObject({
      method: "POST",
      path: `/v1/subscriptions/${account.stripeSubscriptionId}`,
      form: { "items[0][price]": "price_ent", proration_behavior: "create_prorations" },
    });
    expect(change.form["items[0][id]"]).toMatch(/^si_/);
    expect(await plan()).toBe("enterprise");

    expect((await putPlan("free")).statusCode).toBe(200);
    expect(stripe.requests.at(-1)).toMatchObject({
      method: "DELETE",
      path: `/v1/subscriptions/${account.stripeSubscriptionId}`,
    });
    expect(await plan()).toBe("free");
    const view = await gateway.inject({ method: "GET", url: "/v1/billing", headers: admin });
    expect(view.json<{ data: { plan: { name: string }; subscriptionStatus: string } }>().data).toMatchObject({
      plan: { name: "free" },
      subscriptionStatus: "canceled",
    });
    const bad = await putPlan("platinum");
    expect(bad.statusCode).toBe(400);
    expect(stripe.requests.at(-1)!.method).toBe("DELETE"); // nothing sent to Stripe for a refused plan
  });

  it("acts on webhooks only when the signature verifies, once per event, recording refusals", async () => {
    expect((await putPlan("pro")).statusCode).toBe(200); // a new subscription after the cancellation
    const account = (await billing.getAccount({ tenantId })).account!;
    const subscription = stripe.subscriptions.get(account.stripeSubscriptionId)!;
    const event = (id: string, type: string, over: Record<string, unknown> = {}) =>
      JSON.stringify({
        id,
        object: "event",
        api_version: "2026-10-28.endive",
        created: Math.floor(Date.now() / 1000),
        type,
        data: {
          object: {
            id: subscription["id"],
            object: "subscription",
            customer: account.stripeCustomerId,
            status: "active",
            metadata: { tenant_id: tenantId },
            items: {
              object: "list",
              data: [
                { id: "si_x", object: "subscription_item", price: { id: "price_ent", object: "price" } },
              ],
            },
            ...over,
          },
        },
      });
    const deliver = (payload: string, signature?: string) =>
      gateway.inject({
        method: "POST",
        url: "/v1/billing/webhook",
        headers: {
          "content-type": "application/json; charset=utf-8",
          ...(signature !== undefined ? { "stripe-signature": signature } : {}),
        },
        payload,
      });
    const sign = (payload: string) =>
      Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET });

    // Upgraded in the Stripe dashboard: the webhook moves the tenant to enterprise.
    const updated = event("evt_1", "customer.subscription.updated");
    const ok = await deliver(updated, sign(updated));
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ received: true, outcome: "applied" });
    expect(await plan()).toBe("enterprise");
    const again = await deliver(updated, sign(updated));
    expect(again.json()).toEqual({ received: true, outcome: "duplicate" });

    // Tampered bodies, wrong secrets and missing headers are refused before anything is read.
    const forged = event("evt_2", "customer.subscription.deleted");
    const tampered = await deliver(forged, sign(updated));
    expect(tampered.statusCode).toBe(400);
    expect(tampered.json<{ error: { code: string; details: { field: string }[] } }>().error).toMatchObject({
      code: "INVALID_ARGUMENT",
      details: [{ field: "header.stripe-signature" }],
    });
    const wrongSecret = await deliver(
      forged,
      Stripe.webhooks.generateTestHeaderString({ payload: forged, secret: "whsec_other" }),
    );
    expect(wrongSecret.statusCode).toBe(400);
    expect((await deliver(forged)).statusCode).toBe(400);
    expect(await plan()).toBe("enterprise");
    const log = await billingApp.store.webhookLog();
    expect(log.filter((l) => !l.verified && l.outcome === "rejected")).toHaveLength(2);
    expect(log.filter((l) => l.eventId === "evt_1")).toHaveLength(1);

    const ignored = event("evt_3", "invoice.paid");
    expect((await deliver(ignored, sign(ignored))).json()).toEqual({ received: true, outcome: "ignored" });
    const deleted = event("evt_4", "customer.subscription.deleted", { status: "canceled" });
    expect((await deliver(deleted, sign(deleted))).json()).toEqual({ received: true, outcome: "applied" });
    expect(await plan()).toBe("free");
    const audit = await tenants.listAudit({ tenantId, action: "tenant.plan", limit: 20 });
    expect(audit.entries.filter((e) => JSON.stringify(e.details ?? {}).includes("evt_1"))).toHaveLength(1);
  });

  it("reports usage to Stripe as meter events exactly once, across a failed report", async () => {
    const account = (await billing.getAccount({ tenantId })).account!;
    const record = (key: string, units: number) =>
      usage.recordUsage({
        events: [
          { idempotencyKey: key, tenantId, assetClass: "autos", kind: "valuation", units: BigInt(units) },
        ],
      });
    const reporter = billingApp.reporter!;
    await record("u1", 5);
    expect(await reporter.runOnce()).toBe(1);
    stripe.failMeterEvents = 1;
    await record("u2", 7);
    expect(await reporter.runOnce()).toBe(0); // Stripe answered 500: the report stays pending
    await record("u3", 3);
    expect(await reporter.runOnce()).toBe(2); // the pending event again, then the rest
    expect(await reporter.runOnce()).toBe(0);
    const events = [...stripe.meterEvents.values()];
    expect(
      events.every((e) => e.customer === account.stripeCustomerId && e.eventName === "valora_valuations"),
    ).toBe(true);
    expect(events.reduce((s, e) => s + e.value, 0)).toBe(15);
    const today = new Date().toISOString().slice(0, 10);
    expect([...stripe.meterEvents.keys()]).toEqual([
      `valora-${tenantId}-${today}-0-5`,
      `valora-${tenantId}-${today}-5-12`,
      `valora-${tenantId}-${today}-12-15`,
    ]);
    // The failed attempt and its retry carried the same identifier.
    const sentIds = stripe.requests
      .filter((r) => r.path === "/v1/billing/meter_events")
      .map((r) => r.form["identifier"]);
    expect(sentIds.filter((i) => i === `valora-${tenantId}-${today}-5-12`)).toHaveLength(2);
    expect(Number((await billing.getAccount({ tenantId })).account!.reportedUnits)).toBe(15);
  });
});
