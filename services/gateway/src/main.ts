import { BillingService } from "@valora/proto/valora/v1/billing_pb";
import { JobService } from "@valora/proto/valora/v1/jobs_pb";
import { MarketDataService } from "@valora/proto/valora/v1/market_pb";
import { IngestService } from "@valora/proto/valora/v1/ingest_pb";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { TenantDataService } from "@valora/proto/valora/v1/tenant_data_pb";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import {
  createClient,
  createGrpcServer,
  createRedis,
  createServiceBase,
  loadConfig,
  planCatalogFrom,
  vars,
  z,
  redisReady,
} from "@valora/kit";
import { buildGateway } from "./app.js";
import { consoleOptions } from "./console.js";
import { oidcOptions } from "./oidc-config.js";
import { Authenticator } from "./auth.js";
import { grpcIngress } from "./grpc-ingress.js";
import { startPurger } from "./tenant-lifecycle.js";
import { LocalRateLimiter, RedisRateLimiter } from "./rate-limit.js";
import { LocalQuotaCounter, RedisQuotaCounter } from "./quota.js";

export const GatewayEnv = z.object({
  PORT: vars.port(8080),
  GRPC_PORT: vars.port(9090),
  HOST: vars.host("0.0.0.0"),
  LOG_LEVEL: vars.logLevel(),
  ORCHESTRATOR_ADDR: z.string().min(1).default("orchestrator:9090"),
  TENANTS_ADDR: z.string().min(1).default("tenants:9091"),
  USAGE_ADDR: z.string().min(1).optional(),
  BILLING_ADDR: z.string().min(1).optional(),
  MARKET_DATA_ADDR: z.string().min(1).optional(),
  /** valora.v1.IngestService: data feeds, lineage, the asset registry, realised accuracy. */
  INGEST_ADDR: z.string().min(1).optional(),
  /** How often erasures whose grace period passed are looked for and purged. */
  TENANT_PURGE_INTERVAL_MS: z.coerce.number().int().min(1000).default(60_000),
  /** The plan catalog as JSON (the same value billing gets); the defaults when unset. */
  VALORA_PLANS: z.string().optional(),
  REDIS_URL: vars.url().optional(),
  OIDC_ISSUER: vars.url().optional(),
  OIDC_JWKS_URL: vars.url().optional(),
  OIDC_AUDIENCE: z.string().optional(),
  OIDC_TENANT_CLAIM: z.string().default("tenant"),
  OIDC_ROLES_CLAIM: z.string().default("roles"),
  BODY_LIMIT_BYTES: vars.int(1024 * 1024, 1024),
  AUTH_CACHE_TTL_MS: vars.int(5000),
  /** How long past the TTL a resolved key keeps working while the tenants service cannot answer. */
  AUTH_STALE_IF_ERROR_MS: vars.int(300_000),
  UPSTREAM_TIMEOUT_MS: vars.int(10_000, 1),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
  /** Proxies whose X-Forwarded-For is believed: "true" or comma-separated addresses/CIDRs. */
  TRUST_PROXY: z.string().optional(),
  /** The web console's build; the image's own when unset. "off" serves no console. */
  CONSOLE_DIR: z.string().optional(),
  /** The console's OIDC client (a public client: authorization code with PKCE); OIDC_ISSUER is its issuer. */
  CONSOLE_OIDC_CLIENT_ID: z.string().optional(),
  /** The scopes it asks for; "openid profile email" when unset. */
  CONSOLE_OIDC_SCOPES: z.string().optional(),
  /** Raster tiles under the console's valuation map (`https://.../{z}/{x}/{y}.png`); none by default. */
  CONSOLE_TILE_URL: z.string().optional(),
});

const TENANT_CHANGED = "valora:tenant-changed";

/** `valora serve gateway`: wiring from environment only. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const c = loadConfig(GatewayEnv, env);
  const base = createServiceBase({
    name: "gateway",
    logLevel: c.LOG_LEVEL,
    drainDelayMs: c.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const tenants = createClient(TenantService, c.TENANTS_ADDR, {
    timeoutMs: c.UPSTREAM_TIMEOUT_MS,
    registry: base.registry,
  });
  const valuations = createClient(ValuationService, c.ORCHESTRATOR_ADDR, {
    timeoutMs: c.UPSTREAM_TIMEOUT_MS,
    registry: base.registry,
  });
  const jobs = createClient(JobService, c.ORCHESTRATOR_ADDR, {
    timeoutMs: c.UPSTREAM_TIMEOUT_MS,
    registry: base.registry,
  });
  const plans = planCatalogFrom(c.VALORA_PLANS);
  const optional = <S extends Parameters<typeof createClient>[0]>(service: S, addr: string | undefined) =>
    addr
      ? createClient(service, addr, { timeoutMs: c.UPSTREAM_TIMEOUT_MS, registry: base.registry })
      : undefined;
  const usage = optional(UsageService, c.USAGE_ADDR);
  const billing = optional(BillingService, c.BILLING_ADDR);
  const market = optional(MarketDataService, c.MARKET_DATA_ADDR);
  const ingest = optional(IngestService, c.INGEST_ADDR);
  // Tenant data (exports, erasure): one client per distinct address holding some; the tenants service's last.
  const dataAt = (addr: string) =>
    createClient(TenantDataService, addr, { timeoutMs: c.UPSTREAM_TIMEOUT_MS, registry: base.registry });
  const otherDataAddrs = [
    ...new Set(
      [c.ORCHESTRATOR_ADDR, c.USAGE_ADDR, c.BILLING_ADDR, c.INGEST_ADDR].filter((a) => a !== undefined),
    ),
  ].filter((a) => a !== c.TENANTS_ADDR);
  const tenantData = { tenants: dataAt(c.TENANTS_ADDR), others: otherDataAddrs.map(dataAt) };
  const redis = c.REDIS_URL ? createRedis({ url: c.REDIS_URL, logger: base.logger }) : undefined;
  if (redis) base.health.addDependency("redis", () => redisReady(redis));
  if (!redis) base.logger.warn("REDIS_URL not set: rate limits are per replica");
  const limiter = redis ? new RedisRateLimiter(redis, base.logger, base.registry) : new LocalRateLimiter();
  const oidc = oidcOptions(c);
  const consoleApp = consoleOptions(c);
  const auth = new Authenticator({
    tenants,
    cacheTtlMs: c.AUTH_CACHE_TTL_MS,
    staleIfErrorMs: c.AUTH_STALE_IF_ERROR_MS,
    degraded: base.degraded,
    ...(oidc ? { oidc } : {}),
  });
  const quota = redis ? new RedisQuotaCounter(redis, base.degraded) : new LocalQuotaCounter();
  const trustProxy = c.TRUST_PROXY === undefined ? false : c.TRUST_PROXY === "true" ? true : c.TRUST_PROXY;
  // A plan change seen by one replica reaches every replica's principal cache over Redis.
  const subscriber = redis?.duplicate();
  if (subscriber) {
    await subscriber.subscribe(TENANT_CHANGED);
    subscriber.on("message", (_channel: string, tenantId: string) => auth.invalidateTenant(tenantId));
  }
  const tenantChanged = (tenantId: string) => {
    auth.invalidateTenant(tenantId);
    redis
      ?.publish(TENANT_CHANGED, tenantId)
      .catch((err: unknown) => base.logger.warn({ err }, "could not announce a tenant change"));
  };
  const app = await buildGateway({
    base,
    valuations,
    tenants,
    jobs,
    ...(usage ? { usage } : {}),
    ...(billing ? { billing } : {}),
    ...(market ? { market } : {}),
    ...(ingest ? { ingest } : {}),
    plans,
    tenantChanged,
    tenantData,
    auth,
    limiter,
    quota,
    trustProxy,
    bodyLimit: c.BODY_LIMIT_BYTES,
    upstreamTimeoutMs: c.UPSTREAM_TIMEOUT_MS,
    ...(consoleApp ? { console: consoleApp } : {}),
  });
  await app.listen({ host: c.HOST, port: c.PORT });
  // Erasures whose grace period has passed are purged by a sweep every replica runs (purges are idempotent).
  const purger = startPurger(app.valoraLifecycle, c.TENANT_PURGE_INTERVAL_MS, base.degraded);
  base.shutdown.register("erasure-sweep", async () => purger.stop());
  const grpc = createGrpcServer({
    ...base,
    services: [grpcIngress({ auth, limiter, valuations, plans, quota, timeoutMs: c.UPSTREAM_TIMEOUT_MS })],
  });
  const grpcPort = await grpc.listen(`${c.HOST}:${c.GRPC_PORT}`);
  base.shutdown.register("http", () => app.close());
  base.shutdown.register("grpc", () => grpc.shutdown());
  base.shutdown.register("clients", async () => {
    tenants.close();
    valuations.close();
    jobs.close();
    usage?.close();
    billing?.close();
    market?.close();
    ingest?.close();
    tenantData.tenants.close();
    for (const d of tenantData.others) d.close();
    subscriber?.disconnect();
    redis?.disconnect();
  });
  base.shutdown.installSignalHandlers();
  base.logger.info({ port: c.PORT, grpcPort }, "gateway listening");
}
