import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import {
  PlanCatalog,
  ValoraError,
  implement,
  type CallContext,
  type Client,
  type ServiceRegistration,
  inSpan,
} from "@valora/kit";
import { ROLE_SETS, hasRole, mayValue, type Authenticator, type Principal } from "./auth.js";
import { bucketOf, checkAssetClass } from "./plans.js";
import { reserveQuota, type QuotaCounter } from "./quota.js";
import { takeTenantTurn, type RateLimiter } from "./rate-limit.js";

export interface GrpcIngressDeps {
  auth: Authenticator;
  limiter: RateLimiter;
  valuations: Client<typeof ValuationService>;
  plans?: PlanCatalog;
  /** Monthly plan quotas; not enforced on gRPC without it. */
  quota?: QuotaCounter;
  timeoutMs?: number;
}

/**
 * valora.v1.ValuationService for gRPC clients at the edge: the same credentials (`authorization:
 * Bearer ...` metadata), roles, asset-class scopes, plan limits and quotas as REST, then forwarded to
 * the orchestrator with the caller's tenant.
 */
export function grpcIngress(d: GrpcIngressDeps): ServiceRegistration {
  const plans = d.plans ?? new PlanCatalog();
  const admit = async (
    call: CallContext,
    roles: readonly Principal["roles"][number][],
    assetClass?: string,
  ): Promise<Principal> => {
    const header = call.metadata.get("authorization")[0];
    const p = await inSpan("auth", () =>
      d.auth.authenticate(
        header === undefined ? undefined : String(header),
        call.peer.replace(/^ipv[46]:/, "").replace(/:\d+$/, ""),
      ),
    );
    if (!hasRole(p, roles))
      throw new ValoraError("PERMISSION_DENIED", `this call needs one of the roles ${roles.join(", ")}`);
    if (assetClass !== undefined) checkAssetClass(plans, p, assetClass, "asset_class");
    const decision = await takeTenantTurn(d.limiter, p, bucketOf(plans.of(p.plan)));
    if (!decision.allowed)
      throw new ValoraError(
        "RESOURCE_EXHAUSTED",
        `rate limit of the ${p.plan} plan exceeded: retry in ${decision.retryAfter} s`,
      );
    return p;
  };
  const forward = (p: Principal, call: CallContext) => ({
    timeoutMs: d.timeoutMs ?? 10_000,
    metadata: { "x-tenant-id": p.tenantId, "x-request-id": call.requestId },
    signal: call.signal,
  });
  return implement(ValuationService, {
    async value(req, call) {
      const p = await admit(call, ROLE_SETS.value, req.assetClass);
      if (d.quota) await reserveQuota(d.quota, plans, p, 1);
      return d.valuations.value(req, forward(p, call));
    },
    async valueBatch(req, call) {
      const p = await admit(call, ROLE_SETS.value, req.assetClass);
      if (d.quota) await reserveQuota(d.quota, plans, p, Math.max(1, req.items.length));
      return d.valuations.valueBatch(req, forward(p, call));
    },
    async listAssetClasses(req, call) {
      const p = await admit(call, ROLE_SETS.read);
      const res = await d.valuations.listAssetClasses(req, forward(p, call));
      return { assetClasses: res.assetClasses.filter((a) => mayValue(p, a.name)) };
    },
    async listModels(req, call) {
      const p = await admit(call, ROLE_SETS.read);
      const res = await d.valuations.listModels(req, forward(p, call));
      return { models: res.models.filter((m) => mayValue(p, m.assetClass)) };
    },
  });
}
