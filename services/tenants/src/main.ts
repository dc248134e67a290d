import { createPgPool, createServiceBase, loadConfig, vars, z, serveGrpc, pgReady } from "@valora/kit";
import { createTenants } from "./app.js";

export const TenantsEnv = z.object({
  DATABASE_URL: vars.url(),
  GRPC_PORT: vars.port(9091),
  HOST: vars.host("0.0.0.0"),
  /** /metrics, /healthz and /readyz. */
  METRICS_PORT: vars.port(9464),
  LOG_LEVEL: vars.logLevel(),
  VALORA_BOOTSTRAP_API_KEY: z.string().optional(),
  VALORA_WEBHOOK_ALLOW_HTTP: vars.bool(false),
  VALORA_WEBHOOK_ALLOW_PRIVATE: vars.bool(false),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});

/** `valora serve tenants`: wiring from environment only. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const config = loadConfig(TenantsEnv, env);
  const base = createServiceBase({
    name: "tenants",
    logLevel: config.LOG_LEVEL,
    drainDelayMs: config.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const pool = createPgPool({
    url: config.DATABASE_URL,
    applicationName: "valora-tenants",
    logger: base.logger,
    degraded: base.degraded,
  });
  const tenants = createTenants(base, {
    pool,
    webhooks: {
      allowHttp: config.VALORA_WEBHOOK_ALLOW_HTTP,
      allowPrivate: config.VALORA_WEBHOOK_ALLOW_PRIVATE,
    },
    ...(config.VALORA_BOOTSTRAP_API_KEY ? { bootstrapApiKey: config.VALORA_BOOTSTRAP_API_KEY } : {}),
  });
  const { generatedKey } = await tenants.start();
  if (generatedKey)
    base.logger.warn(
      { apiKey: generatedKey },
      "bootstrap admin API key for tenant 'default' (shown once; store it now)",
    );
  const { port, ops } = await serveGrpc(base, {
    services: [tenants.service, tenants.data],
    host: config.HOST,
    grpcPort: config.GRPC_PORT,
    metricsPort: config.METRICS_PORT,
  });
  base.health.addCheck("postgres", () => pgReady(pool));
  base.shutdown.register("webhooks", () => tenants.close());
  base.shutdown.register("postgres", () => pool.end());
  base.shutdown.register("ops", () => ops.close());
  base.shutdown.installSignalHandlers();
  base.logger.info({ port }, "tenants service listening");
}
