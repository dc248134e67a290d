import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import type { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import {
  ValoraError,
  okEnvelope,
  okEnvelopeText,
  type Client,
  type Logger,
  type PlanCatalog,
  partsOf,
} from "@valora/kit";
import { ROLE_SETS } from "../auth.js";
import { BatchRequest, ErrorEnvelope, Valuation, ValuationRequest, envelopeOf } from "../schemas.js";
import { modelJson, valuationJson, valuationText } from "../valuation-json.js";
import { reserveQuota, type QuotaCounter } from "../quota.js";
import { checkAssetClass } from "../plans.js";

const ROLES_VALUE = ROLE_SETS.value;

export interface ValuationRoutesOptions {
  valuations: Client<typeof ValuationService>;
  quota: QuotaCounter;
  plans: PlanCatalog;
  tenants: Pick<Client<typeof TenantService>, "listWebhooks" | "publish">;
  timeoutMs: number;
  logger: Logger;
}

/**
 * Whether a tenant has a webhook for valuation.completed, remembered for 30 s: publishing an
 * event per valuation would cost a write for tenants who never asked for one.
 */
class HookInterest {
  private readonly known = new Map<string, { wants: boolean; until: number }>();
  constructor(private readonly tenants: ValuationRoutesOptions["tenants"]) {}
  async wants(tenantId: string): Promise<boolean> {
    const k = this.known.get(tenantId);
    if (k && k.until > Date.now()) return k.wants;
    const { webhooks } = await this.tenants.listWebhooks({ tenantId });
    const wants = webhooks.some((w) => w.events.includes("valuation.completed"));
    this.known.set(tenantId, { wants, until: Date.now() + 30_000 });
    return wants;
  }
}

/** Pure: the proto Include for a REST `include` list (none when absent: the full answer). */
const includeOf = (list: readonly string[] | undefined) =>
  list === undefined ? {} : { include: partsOf(list) };

export const valuationRoutes: FastifyPluginAsync<ValuationRoutesOptions> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const hooks = new HookInterest(o.tenants);
  // Plan quotas are checked (and reserved) before any work is done.
  const reserve = (req: FastifyRequest, units: number) =>
    reserveQuota(o.quota, o.plans, req.principal!, units);
  const metadata = (req: FastifyRequest) => ({
    "x-tenant-id": req.principal!.tenantId,
    "x-request-id": req.id,
  });
  const notify = (req: FastifyRequest, data: Record<string, unknown>) => {
    const tenantId = req.principal!.tenantId;
    void hooks
      .wants(tenantId)
      .then((wants) =>
        wants
          ? o.tenants.publish({
              tenantId,
              eventId: `valuation-${req.id}`,
              type: "valuation.completed",
              data: data as never,
            })
          : undefined,
      )
      .catch((err: unknown) =>
        o.logger.warn({ err, requestId: req.id }, "could not publish valuation.completed"),
      );
  };

  app.post(
    "/v1/valuations",
    {
      config: { roles: ROLES_VALUE },
      schema: {
        tags: ["valuations"],
        summary: "Value one asset",
        body: ValuationRequest,
        response: { 200: envelopeOf(Valuation), "4xx": ErrorEnvelope },
      },
    },
    async (req, reply) => {
      checkAssetClass(o.plans, req.principal!, req.body.assetClass);
      await reserve(req, 1);
      const { valuation } = await o.valuations.value(
        {
          assetClass: req.body.assetClass,
          attributes: req.body.attributes ?? {},
          assetId: req.body.assetId ?? "",
          skipCache: req.body.skipCache ?? false,
          ...includeOf(req.body.include),
        },
        { timeoutMs: o.timeoutMs, metadata: metadata(req) },
      );
      if (!valuation) throw new ValoraError("INTERNAL", "orchestrator returned no valuation");
      notify(req, {
        assetClass: valuation.assetClass,
        assetKey: valuation.assetKey,
        value: valuation.value,
        currency: valuation.currency,
        model: modelJson(valuation),
      });
      // Already JSON text of the documented shape (the response schema types objects, hence the
      // cast): fastify sends a JSON-typed string as it is.
      return reply
        .type("application/json; charset=utf-8")
        .send(okEnvelopeText(valuationText(valuation), req.id) as never);
    },
  );

  app.post(
    "/v1/valuations::batch",
    {
      config: { roles: ROLES_VALUE },
      schema: {
        tags: ["valuations"],
        summary: "Value up to 100 assets of one class; each item succeeds or fails on its own",
        body: BatchRequest,
        response: {
          200: envelopeOf(
            z.object({
              results: z.array(
                z.object({
                  index: z.number(),
                  valuation: Valuation.nullable(),
                  error: z
                    .object({
                      code: z.string(),
                      message: z.string(),
                      details: z.array(z.object({ field: z.string(), description: z.string() })),
                    })
                    .nullable(),
                }),
              ),
            }),
          ),
          "4xx": ErrorEnvelope,
        },
      },
    },
    async (req) => {
      checkAssetClass(o.plans, req.principal!, req.body.assetClass);
      await reserve(req, req.body.items.length);
      const { results } = await o.valuations.valueBatch(
        {
          assetClass: req.body.assetClass,
          items: req.body.items.map((i) => ({
            attributes: (i.attributes ?? {}) as never,
            assetId: i.assetId ?? "",
          })),
          skipCache: req.body.skipCache ?? false,
          ...includeOf(req.body.include),
        },
        { timeoutMs: o.timeoutMs, metadata: metadata(req) },
      );
      return okEnvelope(
        {
          results: results.map((r) => ({
            index: r.index,
            valuation: r.outcome.case === "valuation" ? valuationJson(r.outcome.value) : null,
            error:
              r.outcome.case === "error"
                ? {
                    code: r.outcome.value.code,
                    message: r.outcome.value.message,
                    details: r.outcome.value.violations.map((v) => ({
                      field: `items.${r.index}.${v.field}`,
                      description: v.description,
                    })),
                  }
                : null,
          })),
        },
        req.id,
      );
    },
  );
};
