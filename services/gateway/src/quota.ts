import { ValoraError, inSpan, type DegradedLog, type PlanCatalog, type Redis } from "@valora/kit";

export interface QuotaDecision {
  allowed: boolean;
  used: number;
  limit: number;
  /** Start of the next period, when the count starts again. */
  resetAt: Date;
}

/** Pure: the period key and its end for a moment (calendar months, UTC). */
export function quotaPeriod(now: Date): { key: string; resetAt: Date } {
  return {
    key: `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`,
    resetAt: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
  };
}

export interface QuotaCounter {
  /** Reserves `units` if they fit under `limit`; nothing is reserved when they do not. */
  consume(tenantId: string, units: number, limit: number, now?: Date): Promise<QuotaDecision>;
}

export class LocalQuotaCounter implements QuotaCounter {
  private readonly used = new Map<string, number>();
  consume(tenantId: string, units: number, limit: number, now = new Date()): Promise<QuotaDecision> {
    const { key, resetAt } = quotaPeriod(now);
    const k = `${tenantId}:${key}`;
    const used = this.used.get(k) ?? 0;
    const allowed = limit === 0 || used + units <= limit;
    if (allowed) this.used.set(k, used + units);
    return Promise.resolve({ allowed, used: allowed ? used + units : used, limit, resetAt });
  }
}

const SCRIPT = `
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and used > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return {0, used - tonumber(ARGV[1])}
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return {1, used}
`;

/**
 * Monthly quota counters in Redis shared by every gateway replica (atomic reserve-or-refuse).
 * When Redis is unreachable the request is allowed and counted locally: refusing paying tenants
 * because a cache is down is worse than a few valuations over quota; durable usage is billing's.
 */
export class RedisQuotaCounter implements QuotaCounter {
  private readonly local = new LocalQuotaCounter();
  constructor(
    private readonly redis: Redis,
    /** Where "counting locally" goes: one line per 30 s with a count, not one per request. */
    private readonly degraded: DegradedLog,
    private readonly prefix = "valora:quota:",
  ) {
    redis.defineCommand("valoraQuota", { numberOfKeys: 1, lua: SCRIPT });
  }

  async consume(tenantId: string, units: number, limit: number, now = new Date()): Promise<QuotaDecision> {
    const { key, resetAt } = quotaPeriod(now);
    try {
      const redis = this.redis as unknown as {
        valoraQuota(
          this: void,
          k: string,
          units: number,
          limit: number,
          expireAtMs: number,
        ): Promise<[number, number]>;
      };
      const [allowed, used] = await redis.valoraQuota(
        `${this.prefix}${tenantId}:${key}`,
        units,
        limit,
        resetAt.getTime() + 86_400_000,
      );
      return { allowed: allowed === 1, used, limit, resetAt };
    } catch (err) {
      this.degraded.note("redis-quota", "quota: Redis unreachable, counting locally", err);
      return this.local.consume(tenantId, units, 0, now).then((d) => ({ ...d, limit }));
    }
  }
}

/**
 * Reserves `units` of the principal's monthly plan quota (monthlyValuations, 0 = unlimited) before any work, or refuses with
 * RESOURCE_EXHAUSTED saying how much is left and when the count starts again.
 */
export async function reserveQuota(
  quota: QuotaCounter,
  plans: PlanCatalog,
  p: { tenantId: string; plan: string },
  units: number,
): Promise<void> {
  const limit = plans.of(p.plan).monthlyValuations;
  const d = await inSpan("quota", () => quota.consume(p.tenantId, units, limit), {
    attributes: { "valora.tenant_id": p.tenantId, "valora.quota.units": units },
  });
  if (!d.allowed)
    throw new ValoraError(
      "RESOURCE_EXHAUSTED",
      `the ${p.plan} plan's quota of ${d.limit} valuations this month is used up (${d.used} used; ${units} asked); it resets at ${d.resetAt.toISOString()}`,
      { details: [{ field: "quota", description: `${d.limit - d.used} left this month` }] },
    );
}
