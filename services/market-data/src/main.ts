import { createPgPool, createServiceBase, loadConfig, vars, z, serveGrpc } from "@valora/kit";
import { createMarketData } from "./app.js";

export const MarketDataEnv = z.object({
  GRPC_PORT: vars.port(9094),
  HOST: vars.host("0.0.0.0"),
  /** /metrics, /healthz and /readyz. */
  METRICS_PORT: vars.port(9464),
  LOG_LEVEL: vars.logLevel(),
  /** The comparables' database: price indices from the platform's own sales. Optional. */
  DATABASE_URL: vars.url().optional(),
  MARKET_TXHOUSING_CSV: z.string().optional(),
  MARKET_JSON_FILES: vars.list(),
  MARKET_HTTP_FEEDS: vars.list(),
  MARKET_HTTP_ALLOWED_HOSTS: vars.list(),
  MARKET_CACHE_TTL_MS: vars.int(600_000, 1000),
  MARKET_MAX_GAP_MONTHS: vars.int(3, 0),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});

/** `valora serve market-data`: wiring from environment only. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const c = loadConfig(MarketDataEnv, env);
  const base = createServiceBase({
    name: "market-data",
    logLevel: c.LOG_LEVEL,
    drainDelayMs: c.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const pool = c.DATABASE_URL
    ? createPgPool({
        url: c.DATABASE_URL,
        applicationName: "valora-market-data",
        logger: base.logger,
        degraded: base.degraded,
      })
    : undefined;
  const market = createMarketData(base, {
    ...(pool ? { pool } : {}),
    ...(c.MARKET_TXHOUSING_CSV ? { texasHousingCsv: c.MARKET_TXHOUSING_CSV } : {}),
    jsonFiles: c.MARKET_JSON_FILES,
    httpFeeds: c.MARKET_HTTP_FEEDS,
    allowedHosts: c.MARKET_HTTP_ALLOWED_HOSTS,
    ttlMs: c.MARKET_CACHE_TTL_MS,
    contract: { maxGapMonths: c.MARKET_MAX_GAP_MONTHS, minPoints: 3 },
  });
  const { port, ops } = await serveGrpc(base, {
    services: [market.service],
    host: c.HOST,
    grpcPort: c.GRPC_PORT,
    metricsPort: c.METRICS_PORT,
  });
  if (pool) base.shutdown.register("postgres", () => pool.end());
  base.shutdown.register("ops", () => ops.close());
  base.shutdown.installSignalHandlers();
  base.logger.info({ port }, "market-data service listening");
}
