import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { BillingAccount, BillingService } from "@valora/proto/valora/v1/billing_pb";
import type { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import type { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { ValoraError, okEnvelope, type Client, type Logger, type Plan, type PlanCatalog } from "@valora/kit";
import { ROLE_SETS } from "../auth.js";
import { ErrorEnvelope, envelopeOf } from "../schemas.js";
import { iso } from "../valuation-json.js";

export interface AccountRoutesOptions {
  plans: PlanCatalog;
  tenants: Pick<Client<typeof TenantService>, "setPlan">;
  usage?: Pick<Client<typeof UsageService>, "queryUsage">;
  /** Stripe billing; plan changes go straight to the tenants service without it. */
  billing?: Client<typeof BillingService>;
  /** Told when a tenant's plan changed, so cached principals are dropped (on every replica). */
  tenantChanged: (tenantId: string) => void;
  timeoutMs: number;
  logger: Logger;
}

const PlanJson = z.object({
  name: z.string(),
  title: z.string(),
  monthlyValuations: z.number().describe("0 = unlimited"),
  rate: z.object({ perSecond: z.number(), burst: z.number() }),
  bulkJobs: z.boolean(),
  maxJobRows: z.number(),
  assetClasses: z.array(z.string()).describe("empty = every class"),
  priceCents: z.number(),
});
const planJson = (p: Plan) => ({
  name: p.name,
  title: p.title,
  monthlyValuations: p.monthlyValuations,
  rate: p.rate,
  bulkJobs: p.bulkJobs,
  maxJobRows: p.maxJobRows,
  assetClasses: p.assetClasses,
  priceCents: p.priceCents,
});
const Account = z.object({
  tenantId: z.string(),
  plan: PlanJson,
  billingEnabled: z.boolean(),
  stripeCustomerId: z.string().nullable(),
  stripeSubscriptionId: z.string().nullable(),
  subscriptionStatus: z.string().nullable(),
  reportedUnits: z.number(),
  lastReportedAt: z.string().nullable(),
});
const UsageQuery = z.strictObject({
  from: z
    .string()
    .max(10)
    .optional()
    .describe("First day, YYYY-MM-DD (UTC); default: the first of this month"),
  to: z.string().max(10).optional().describe("Last day, YYYY-MM-DD; default: today"),
  assetClass: z.string().min(1).max(100).optional(),
});
const Usage = z.object({
  from: z.string(),
  to: z.string(),
  total: z.number(),
  plan: z.object({ name: z.string(), monthlyValuations: z.number() }),
  days: z.array(z.object({ day: z.string(), assetClass: z.string(), kind: z.string(), units: z.number() })),
});

/** Plans, the tenant's usage and its billing account, plan changes and Stripe's webhook. */
export const accountRoutes: FastifyPluginAsync<AccountRoutesOptions> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const actor = (req: FastifyRequest) => ({
    tenantId: req.principal!.tenantId,
    subject: req.principal!.subject,
    ip: req.ip,
  });
  const accountJson = (tenantId: string, plan: string, a?: BillingAccount) => ({
    tenantId,
    plan: planJson(o.plans.of(a?.plan || plan)),
    billingEnabled: a?.billingEnabled ?? false,
    stripeCustomerId: a?.stripeCustomerId || null,
    stripeSubscriptionId: a?.stripeSubscriptionId || null,
    subscriptionStatus: a?.subscriptionStatus || null,
    reportedUnits: Number(a?.reportedUnits ?? 0n),
    lastReportedAt: iso(a?.lastReportedAt),
  });

  app.get(
    "/v1/plans",
    {
      config: { roles: ROLE_SETS.any },
      schema: {
        tags: ["billing"],
        summary: "The plans on offer and what each includes",
        response: { 200: envelopeOf(z.array(PlanJson)), "4xx": ErrorEnvelope },
      },
    },
    async (req) => okEnvelope(o.plans.plans.map(planJson), req.id),
  );

  app.get(
    "/v1/usage",
    {
      config: { roles: ROLE_SETS.usage },
      schema: {
        tags: ["billing"],
        summary: "The tenant's metered usage per day, asset class and kind (valuation, job_row)",
        querystring: UsageQuery,
        response: { 200: envelopeOf(Usage), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      if (!o.usage)
        throw new ValoraError("UNAVAILABLE", "usage metering is not configured on this gateway (USAGE_ADDR)");
      const p = req.principal!;
      // The usage service validates the dates (INVALID_ARGUMENT naming the field) and fills in the defaults.
      const res = await o.usage.queryUsage(
        {
          tenantId: p.tenantId,
          from: req.query.from ?? "",
          to: req.query.to ?? "",
          assetClass: req.query.assetClass ?? "",
        },
        { timeoutMs: o.timeoutMs },
      );
      const plan = o.plans.of(p.plan);
      return okEnvelope(
        {
          from: res.from,
          to: res.to,
          total: Number(res.total),
          plan: { name: plan.name, monthlyValuations: plan.monthlyValuations },
          days: res.days.map((d) => ({
            day: d.day,
            assetClass: d.assetClass,
            kind: d.kind,
            units: Number(d.units),
          })),
        },
        req.id,
      );
    },
  );

  app.get(
    "/v1/billing",
    {
      config: { roles: ROLE_SETS.admin },
      schema: {
        tags: ["billing"],
        summary: "The tenant's plan, Stripe customer and subscription",
        response: { 200: envelopeOf(Account), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const p = req.principal!;
      const account = o.billing
        ? (await o.billing.getAccount({ tenantId: p.tenantId }, { timeoutMs: o.timeoutMs })).account
        : undefined;
      return okEnvelope(accountJson(p.tenantId, p.plan, account), req.id);
    },
  );

  app.put(
    "/v1/billing/plan",
    {
      config: { roles: ROLE_SETS.admin },
      schema: {
        tags: ["billing"],
        summary:
          "Move the tenant to a plan (Stripe subscription created or changed); applies to the next request",
        body: z.strictObject({ plan: z.string().min(1).max(40) }),
        response: { 200: envelopeOf(Account.extend({ previousPlan: z.string() })), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const p = req.principal!;
      o.plans.require(req.body.plan);
      let out;
      if (o.billing) {
        const res = await o.billing.changePlan(
          { actor: actor(req), plan: req.body.plan },
          { timeoutMs: o.timeoutMs },
        );
        out = { ...accountJson(p.tenantId, req.body.plan, res.account), previousPlan: res.previousPlan };
      } else {
        const res = await o.tenants.setPlan(
          {
            actor: actor(req),
            tenantId: p.tenantId,
            plan: req.body.plan,
            reason: "PUT /v1/billing/plan (billing off)",
          },
          { timeoutMs: o.timeoutMs },
        );
        out = { ...accountJson(p.tenantId, res.tenant!.plan), previousPlan: res.previousPlan };
      }
      o.tenantChanged(p.tenantId);
      return okEnvelope(out, req.id);
    },
  );

  // Stripe calls this without credentials: the signature over the exact body is the authentication.
  await app.register(async (hook) => {
    hook.removeAllContentTypeParsers();
    hook.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: 1024 * 1024 }, (_req, body, done) =>
      done(null, body),
    );
    hook.post(
      "/v1/billing/webhook",
      {
        schema: {
          tags: ["billing"],
          summary: "Stripe webhook endpoint (verified with the Stripe-Signature header)",
          response: { 200: z.object({ received: z.boolean(), outcome: z.string() }), "4xx": ErrorEnvelope },
        },
      },
      async (req) => {
        if (!o.billing) throw new ValoraError("NOT_FOUND", "billing is not enabled");
        const signature = req.headers["stripe-signature"];
        if (typeof signature !== "string" || signature === "")
          throw new ValoraError("INVALID_ARGUMENT", "missing Stripe-Signature header", {
            details: [{ field: "header.stripe-signature", description: "required" }],
          });
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const res = await o.billing.handleWebhook(
          { payload: body, signature, ip: req.ip },
          { timeoutMs: o.timeoutMs },
        );
        for (const t of res.changedTenants) o.tenantChanged(t);
        return { received: true, outcome: res.outcome };
      },
    );
  });
};
