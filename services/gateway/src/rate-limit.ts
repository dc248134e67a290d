import { DegradedLog, counter, inSpan, type Logger, type Redis, type Registry } from "@valora/kit";

export interface Bucket {
  /** Tokens per second added back. */
  rate: number;
  /** Bucket size: the burst a client may spend at once. */
  burst: number;
}

export interface Decision {
  allowed: boolean;
  /** Tokens left after this request. */
  remaining: number;
  /** Seconds until a denied request could pass (0 when allowed). */
  retryAfter: number;
  /** Seconds until the bucket is full again. */
  reset: number;
  limit: number;
  /** Which limiter decided: the shared one in Redis, or this replica's own while Redis is away. */
  source: "redis" | "local";
}

export interface BucketState {
  tokens: number;
  atMs: number;
}

/**
 * Pure token bucket: refill since the last request, then spend `cost` if there is enough. The
 * Redis script below does the same arithmetic, so the local fallback behaves like the shared limiter.
 */
export function takeTokens(
  state: BucketState | undefined,
  nowMs: number,
  b: Bucket,
  cost = 1,
): { state: BucketState; allowed: boolean } {
  const before = state
    ? Math.min(b.burst, state.tokens + (Math.max(0, nowMs - state.atMs) * b.rate) / 1000)
    : b.burst;
  const allowed = before >= cost;
  return { state: { tokens: allowed ? before - cost : before, atMs: nowMs }, allowed };
}

export function decisionOf(
  tokens: number,
  allowed: boolean,
  b: Bucket,
  cost: number,
  source: Decision["source"],
): Decision {
  return {
    allowed,
    remaining: Math.max(0, Math.floor(tokens)),
    retryAfter: allowed ? 0 : Math.max(1, Math.ceil((cost - tokens) / b.rate)),
    reset: Math.max(0, Math.ceil((b.burst - tokens) / b.rate)),
    limit: b.burst,
    source,
  };
}

/** Pure: the headers of draft-ietf-httpapi-ratelimit-headers for a decision. */
export function rateLimitHeaders(d: Decision, b: Bucket): Record<string, string> {
  return {
    "ratelimit-limit": String(d.limit),
    "ratelimit-remaining": String(d.remaining),
    "ratelimit-reset": String(d.reset),
    "ratelimit-policy": `${b.burst};w=${Math.max(1, Math.round(b.burst / b.rate))}`,
    ...(d.allowed ? {} : { "retry-after": String(d.retryAfter) }),
  };
}

/** Redis clock (TIME), so replicas with skewed clocks share one bucket fairly. Floats go back as strings. */
const SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if s[1] then
  tokens = math.min(burst, tonumber(s[1]) + math.max(0, now - tonumber(s[2])) * rate / 1000)
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
`;

export interface RateLimiter {
  take(key: string, bucket: Bucket, cost?: number): Promise<Decision>;
}

/** This replica's own buckets (no Redis configured, or Redis unreachable). */
export class LocalRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, BucketState>();

  constructor(private readonly now: () => number = Date.now) {}

  take(key: string, bucket: Bucket, cost = 1): Promise<Decision> {
    const { state, allowed } = takeTokens(this.buckets.get(key), this.now(), bucket, cost);
    if (this.buckets.size > 100_000) this.buckets.clear();
    this.buckets.set(key, state);
    return Promise.resolve(decisionOf(state.tokens, allowed, bucket, cost, "local"));
  }
}

/**
 * Token buckets in Redis shared by every gateway replica. Policy when Redis is unreachable: keep
 * serving, limited by this replica's local buckets (so the effective limit is per replica for the
 * outage), count each fallback in `valora_rate_limit_fallback_total`, and log it (at most every 30 s).
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly local = new LocalRateLimiter();
  private readonly fallbacks;
  private readonly degraded: DegradedLog;

  constructor(
    private readonly redis: Redis,
    logger: Logger,
    registry?: Registry,
    private readonly prefix = "valora:rl:",
  ) {
    redis.defineCommand("valoraTakeTokens", { numberOfKeys: 1, lua: SCRIPT });
    this.degraded = new DegradedLog({ logger, ...(registry ? { registry } : {}) });
    this.fallbacks = registry
      ? counter(
          registry,
          "valora_rate_limit_fallback_total",
          "Rate-limit decisions taken locally because Redis was unreachable.",
          [],
        )
      : undefined;
  }

  async take(key: string, bucket: Bucket, cost = 1): Promise<Decision> {
    try {
      const redis = this.redis as unknown as {
        valoraTakeTokens(
          this: void,
          k: string,
          rate: number,
          burst: number,
          cost: number,
        ): Promise<[number, string]>;
      };
      const [allowed, tokens] = await redis.valoraTakeTokens(
        this.prefix + key,
        bucket.rate,
        bucket.burst,
        cost,
      );
      return decisionOf(Number(tokens), allowed === 1, bucket, cost, "redis");
    } catch (err) {
      this.fallbacks?.inc();
      this.degraded.note(
        "redis-rate-limit",
        "rate limiter: Redis unreachable, limiting with this replica's local buckets",
        err,
      );
      return this.local.take(key, bucket, cost);
    }
  }
}

/** A tenant's turn at its plan's bucket, as the span `rate_limit` (REST and gRPC alike). */
export function takeTenantTurn(
  limiter: RateLimiter,
  principal: { tenantId: string; plan: string },
  bucket: Bucket,
): Promise<Decision> {
  return inSpan(
    "rate_limit",
    async (span) => {
      const taken = await limiter.take(`tenant:${principal.tenantId}`, bucket);
      span.setAttribute("valora.rate_limit.allowed", taken.allowed);
      return taken;
    },
    { attributes: { "valora.tenant_id": principal.tenantId, "valora.plan": principal.plan } },
  );
}
