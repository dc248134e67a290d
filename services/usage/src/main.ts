import {
  createPgPool,
  createServiceBase,
  loadConfig,
  vars,
  z,
  serveGrpc,
  pgReady,
  tenantDataService,
} from "@valora/kit";
import { createUsage } from "./app.js";
import { USAGE_TENANT_TABLES } from "./migrations.js";

export const UsageEnv = z.object({
  DATABASE_URL: vars.url(),
  GRPC_PORT: vars.port(9092),
  HOST: vars.host("0.0.0.0"),
  /** /metrics, /healthz and /readyz. */
  METRICS_PORT: vars.port(9464),
  LOG_LEVEL: vars.logLevel(),
  USAGE_KEY_RETENTION_DAYS: vars.int(7, 1),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});

/** `valora serve usage`: wiring from environment only. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const c = loadConfig(UsageEnv, env);
  const base = createServiceBase({
    name: "usage",
    logLevel: c.LOG_LEVEL,
    drainDelayMs: c.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const pool = createPgPool({
    url: c.DATABASE_URL,
    applicationName: "valora-usage",
    logger: base.logger,
    degraded: base.degraded,
  });
  const usage = createUsage(base, { pool, keyRetentionDays: c.USAGE_KEY_RETENTION_DAYS });
  await usage.start();
  const { port, ops } = await serveGrpc(base, {
    services: [usage.service, tenantDataService({ pool, tables: USAGE_TENANT_TABLES })],
    host: c.HOST,
    grpcPort: c.GRPC_PORT,
    metricsPort: c.METRICS_PORT,
  });
  base.health.addCheck("postgres", () => pgReady(pool));
  base.shutdown.register("usage", () => usage.close());
  base.shutdown.register("postgres", () => pool.end());
  base.shutdown.register("ops", () => ops.close());
  base.shutdown.installSignalHandlers();
  base.logger.info({ port }, "usage service listening");
}
