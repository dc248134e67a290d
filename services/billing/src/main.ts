import { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import {
  ValoraError,
  createClient,
  createPgPool,
  createServiceBase,
  loadConfig,
  planCatalogFrom,
  vars,
  z,
  serveGrpc,
  pgReady,
  tenantDataService,
} from "@valora/kit";
import { createBilling } from "./app.js";
import { parsePrices } from "./decisions.js";

export const BillingEnv = z.object({
  DATABASE_URL: vars.url(),
  GRPC_PORT: vars.port(9093),
  HOST: vars.host("0.0.0.0"),
  /** /metrics, /healthz and /readyz. */
  METRICS_PORT: vars.port(9464),
  LOG_LEVEL: vars.logLevel(),
  TENANTS_ADDR: z.string().min(1).default("tenants:9091"),
  USAGE_ADDR: z.string().min(1).default("usage:9092"),
  VALORA_PLANS: z.string().optional(),
  STRIPE_SECRET_KEY: z.string().optional(),
  STRIPE_WEBHOOK_SECRET: z.string().optional(),
  /** Plan → Stripe price, e.g. `pro=price_123,enterprise=price_456`. */
  STRIPE_PRICES: vars.list(),
  STRIPE_METERED_PRICE: z.string().optional(),
  STRIPE_METER_EVENT: z.string().default("valora_valuations"),
  STRIPE_REPORT_INTERVAL_MS: vars.int(60_000, 1000),
  /** Another Stripe API endpoint (stripe-mock, a proxy): http(s)://host:port. */
  STRIPE_API_URL: vars.url().optional(),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});

/** `valora serve billing`: wiring from environment only. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const c = loadConfig(BillingEnv, env);
  const base = createServiceBase({
    name: "billing",
    logLevel: c.LOG_LEVEL,
    drainDelayMs: c.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const plans = planCatalogFrom(c.VALORA_PLANS);
  if (c.STRIPE_SECRET_KEY && !c.STRIPE_WEBHOOK_SECRET)
    throw new ValoraError("INVALID_ARGUMENT", "STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY", {
      details: [{ field: "STRIPE_WEBHOOK_SECRET", description: "the endpoint's signing secret (whsec_...)" }],
    });
  const api = c.STRIPE_API_URL ? new URL(c.STRIPE_API_URL) : undefined;
  const pool = createPgPool({
    url: c.DATABASE_URL,
    applicationName: "valora-billing",
    logger: base.logger,
    degraded: base.degraded,
  });
  const tenants = createClient(TenantService, c.TENANTS_ADDR, { timeoutMs: 10_000, registry: base.registry });
  const usage = createClient(UsageService, c.USAGE_ADDR, { timeoutMs: 10_000, registry: base.registry });
  const billing = createBilling(base, {
    pool,
    tenants,
    usage,
    plans,
    ...(c.STRIPE_SECRET_KEY
      ? {
          stripe: {
            secretKey: c.STRIPE_SECRET_KEY,
            webhookSecret: c.STRIPE_WEBHOOK_SECRET!,
            prices: parsePrices(c.STRIPE_PRICES, (p) => plans.has(p)),
            meterEventName: c.STRIPE_METER_EVENT,
            reportIntervalMs: c.STRIPE_REPORT_INTERVAL_MS,
            ...(c.STRIPE_METERED_PRICE ? { meteredPrice: c.STRIPE_METERED_PRICE } : {}),
            ...(api
              ? {
                  host: api.hostname,
                  protocol: api.protocol === "http:" ? ("http" as const) : ("https" as const),
                  ...(api.port ? { port: Number(api.port) } : {}),
                }
              : {}),
          },
        }
      : {}),
  });
  await billing.start();
  const { port, ops } = await serveGrpc(base, {
    services: [billing.service, tenantDataService(billing.data)],
    host: c.HOST,
    grpcPort: c.GRPC_PORT,
    metricsPort: c.METRICS_PORT,
  });
  base.health.addCheck("postgres", () => pgReady(pool));
  base.shutdown.register("billing", () => billing.close());
  base.shutdown.register("clients", async () => {
    tenants.close();
    usage.close();
  });
  base.shutdown.register("postgres", () => pool.end());
  base.shutdown.register("ops", () => ops.close());
  base.shutdown.installSignalHandlers();
  base.logger.info({ port }, "billing service listening");
}
