import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { Explainer } from "@valora/proto/valora/v1/explain_pb";
import { MarketDataService } from "@valora/proto/valora/v1/market_pb";
import {
  ValoraError,
  createClient,
  createPgPool,
  createServiceBase,
  kubeReader,
  loadConfig,
  vars,
  z,
  serveGrpc,
  pollEvery,
  pgReady,
} from "@valora/kit";
import { followSales, loadBacktestSales, loadSalesSince, type SalesFollower } from "@valora/comparables";
import { assemblePipeline, type AssetPipelineSpec } from "./assemble.js";
import { pipelineService } from "./grpc.js";
import { MarketIndexFeed } from "./market-index.js";
import { pipelineMetrics } from "./metrics.js";
import { grpcModelClient, type ModelClient } from "./model-client.js";
import type { Route } from "./routing.js";
import type { ValuationPipeline } from "./valuation.js";

export const PipelineEnv = z.object({
  PIPELINE_CONFIG: z.string().default("/etc/valora/pipeline.yaml"),
  GRPC_PORT: vars.port(9090),
  METRICS_PORT: vars.port(9464),
  HOST: vars.host("0.0.0.0"),
  LOG_LEVEL: vars.logLevel(),
  POD_NAMESPACE: z.string().min(1).default("default"),
  /** The comparables' sales table; without it the pipeline values without comparables. */
  DATABASE_URL: vars.url().optional(),
  /** valora.v1.MarketDataService, for the series the AssetPipeline names (comparables.marketIndex). */
  MARKET_DATA_ADDR: z.string().min(1).optional(),
  /** Kubernetes API (in a pod: the service account's; `kubectl proxy` elsewhere). */
  KUBE_API_URL: vars.url().optional(),
  ROUTING_POLL_MS: vars.int(2000, 100),
  MODEL_TIMEOUT_MS: vars.int(1000, 1),
  /** How often landed sales are looked for when no notification came (LISTEN is the fast path). */
  SALES_POLL_MS: vars.int(5000, 100),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});

interface ValuationModelStatus {
  status?: { routing?: Route[] };
}

/** Pure: the rendered AssetPipeline configuration (the operator's ConfigMap), checked for what the runtime needs. */
export function readPipelineConfig(text: string): AssetPipelineSpec {
  const spec = parse(text) as Partial<AssetPipelineSpec> | null;
  const missing = ["assetClass", "model", "input"].filter((k) => !spec?.[k as keyof AssetPipelineSpec]);
  if (!spec || missing.length > 0 || !Array.isArray(spec.input?.fields))
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `pipeline config lacks ${missing.join(", ") || "input.fields"}`,
      { details: missing.map((m) => ({ field: m, description: "required" })) },
    );
  return { currency: "USD", ...spec } as AssetPipelineSpec;
}

/**
 * `valora serve pipeline` (the pods the operator renders per AssetPipeline): the generic pipeline
 * runtime configured by the mounted AssetPipeline, following its ValuationModel's `status.routing`
 * (polled) for champion / canary / shadow endpoints, the champion's feature schema from the model
 * server (Explainer/GetModelInfo), comparables from the sales table, and the market index the
 * spec names. Ready once the schema is loaded and a champion is routed.
 */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const c = loadConfig(PipelineEnv, env);
  const base = createServiceBase({
    name: "pipeline",
    logLevel: c.LOG_LEVEL,
    drainDelayMs: c.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const log = base.logger;
  const spec = readPipelineConfig(readFileSync(c.PIPELINE_CONFIG, "utf8"));
  const kube = kubeReader(c.KUBE_API_URL ? { url: c.KUBE_API_URL } : {});
  const vmPath = `/apis/valora.dev/v1alpha1/namespaces/${c.POD_NAMESPACE}/valuationmodels/${spec.model.name}`;
  const metrics = pipelineMetrics(base.registry);
  const pipelines = new Map<string, ValuationPipeline>();
  const clients = new Map<string, ModelClient>();
  const clientFor = (r: Route): ModelClient => {
    const key = `${r.endpoint}|${r.version}`;
    let client = clients.get(key);
    if (!client) {
      client = grpcModelClient(r.endpoint, spec.model.name, r.version, base.registry);
      clients.set(key, client);
    }
    return client;
  };
  let routes: Route[] = [];
  const refreshRoutes = async (): Promise<void> => {
    const vm = await kube.get<ValuationModelStatus>(vmPath);
    const next = vm?.status?.routing ?? [];
    if (JSON.stringify(next) !== JSON.stringify(routes))
      log.info(
        {
          model: spec.model.name,
          routes: next.map((r) => `${r.role}:${r.version}@${r.endpoint}(${r.weight})`),
        },
        "routing changed",
      );
    routes = next;
  };
  const pool = c.DATABASE_URL
    ? createPgPool({
        url: c.DATABASE_URL,
        max: 2,
        applicationName: "valora-pipeline",
        logger: log,
        degraded: base.degraded,
      })
    : undefined;
  // Comparables are in memory: valuations go on while Postgres is away (new sales wait for it).
  if (pool) base.health.addDependency("postgres", () => pgReady(pool));
  const market = c.MARKET_DATA_ADDR
    ? createClient(MarketDataService, c.MARKET_DATA_ADDR, { timeoutMs: 10_000 })
    : undefined;
  const feed =
    spec.comparables?.marketIndex && market
      ? new MarketIndexFeed({
          seriesId: spec.comparables.marketIndex,
          fetch: async (id) => (await market.getSeries({ id })).series?.points ?? [],
          logger: log,
        })
      : undefined;

  let follower: SalesFollower | undefined;
  /** Builds the pipeline once a champion is routed and its model server answers. */
  const build = async (): Promise<void> => {
    const champion = routes.find((r) => r.role === "champion");
    if (!champion)
      throw new ValoraError("UNAVAILABLE", `ValuationModel ${spec.model.name} routes no champion yet`);
    const explainer = createClient(Explainer, champion.endpoint, { timeoutMs: 5000 });
    try {
      const info = await explainer.getModelInfo({
        modelName: spec.model.name,
        modelVersion: champion.version,
      });
      const loaded =
        pool && spec.comparables
          ? await loadSalesSince(pool, spec.assetClass, 0).catch(
              (err: unknown) => (
                log.warn({ err }, "no sales table: valuing without comparables"),
                { sales: [], seq: 0 }
              ),
            )
          : { sales: [], seq: 0 };
      if (feed) await feed.refresh();
      const assembled = await assemblePipeline({
        spec,
        metadata: info.metadata,
        sales: loaded.sales,
        routes: () => routes,
        client: clientFor,
        champion: clientFor(champion),
        ...(feed ? { marketIndex: () => feed.current() } : {}),
        logger: log,
        metrics,
        timeoutMs: c.MODEL_TIMEOUT_MS,
        degraded: base.degraded,
      });
      pipelines.set(spec.assetClass, assembled.pipeline);
      // Sales landed from now on (ingest) join the comparables at once, without a restart.
      if (pool && spec.comparables) {
        follower = await followSales({
          pool,
          assetClass: spec.assetClass,
          fromSeq: loaded.seq,
          logger: log,
          pollMs: c.SALES_POLL_MS,
          onSales: (sales) =>
            void assembled
              .addSales(sales)
              .then((added) =>
                log.info({ assetClass: spec.assetClass, added }, "landed sales joined the comparables"),
              )
              .catch((err: unknown) =>
                log.warn(
                  { err: err instanceof Error ? err.message : String(err) },
                  "could not add landed sales",
                ),
              ),
        });
      }
      log.info(
        {
          assetClass: spec.assetClass,
          model: `${spec.model.name}@${champion.version}`,
          sales: loaded.sales.length,
        },
        "pipeline ready",
      );
    } finally {
      explainer.close();
    }
  };

  base.health.addCheck(
    "pipeline",
    async () => pipelines.has(spec.assetClass) && routes.some((r) => r.role === "champion"),
  );
  const { port, opsPort, ops } = await serveGrpc(base, {
    services: [
      pipelineService(
        pipelines,
        pool ? (o) => loadBacktestSales(pool, { ...o, model: spec.model.name }) : undefined,
      ),
    ],
    host: c.HOST,
    grpcPort: c.GRPC_PORT,
    metricsPort: c.METRICS_PORT,
  });
  const poller = pollEvery(
    async () => {
      await refreshRoutes();
      if (!pipelines.has(spec.assetClass)) await build();
    },
    { intervalMs: c.ROUTING_POLL_MS, logger: log, message: "pipeline not ready yet; retrying" },
  );
  feed?.start();
  base.shutdown.register("routing", async () => {
    feed?.stop();
    await poller.stop();
    await follower?.stop();
  });
  base.shutdown.register("clients", async () => {
    for (const cl of clients.values()) cl.close?.();
    market?.close();
    await pool?.end();
  });
  base.shutdown.register("ops", () => ops.close());
  base.shutdown.installSignalHandlers();
  log.info({ port, opsPort, assetClass: spec.assetClass, model: spec.model.name }, "pipeline listening");
}
