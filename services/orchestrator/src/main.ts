import { IngestService } from "@valora/proto/valora/v1/ingest_pb";
import { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import {
  UsageRecorder,
  pollEvery,
  serveGrpc,
  createClient,
  createPgPool,
  createRedis,
  createServiceBase,
  kubeReader,
  loadConfig,
  vars,
  z,
  pgReady,
  redisReady,
  tenantDataService,
} from "@valora/kit";
import { MemoryCache, RedisCache } from "./cache.js";
import { jobService } from "./jobs/service.js";
import { JobStore } from "./jobs/store.js";
import { JobWorker, jobCompletedEvent } from "./jobs/worker.js";
import { migrateJobs } from "./jobs/migrations.js";
import { JobResultsEnv, jobResultsFrom } from "./jobs/results-config.js";
import { valueRowsWith } from "./jobs/value-rows.js";
import { jobTenantData } from "./jobs/tenant-data.js";
import {
  catalogFrom,
  pipelineAddress,
  type AssetPipelineObject,
  type CatalogClass,
  type ValuationModelObject,
} from "./kube-catalog.js";
import { pipelineDispatch } from "./pipeline-dispatch.js";
import { PipelineCallsEnv, coalesceOptionsFrom, coalescing } from "./coalesce.js";
import { registryHooks } from "./registry-hooks.js";
import { valuationService } from "./service.js";
import { jobRowUsage, valuationUsage } from "./usage.js";

export const OrchestratorEnv = JobResultsEnv.extend(PipelineCallsEnv.shape).extend({
  GRPC_PORT: vars.port(9090),
  METRICS_PORT: vars.port(9464),
  HOST: vars.host("0.0.0.0"),
  LOG_LEVEL: vars.logLevel(),
  POD_NAMESPACE: z.string().min(1).default("default"),
  KUBE_API_URL: vars.url().optional(),
  CATALOG_POLL_MS: vars.int(2000, 100),
  /** Where an AssetPipeline's pipeline Service answers; {name} is pipeline-<AssetPipeline name>. */
  PIPELINE_ADDR_TEMPLATE: z.string().default("{name}.{namespace}.svc:9090"),
  /** Bulk jobs (and their workers in this pod); without it the JobService is absent. */
  DATABASE_URL: vars.url().optional(),
  REDIS_URL: vars.url().optional(),
  USAGE_ADDR: z.string().min(1).optional(),
  /** job.completed webhooks. */
  TENANTS_ADDR: z.string().min(1).optional(),
  /** valora.v1.IngestService: the asset registry (value by assetId) and outcome tracking. */
  INGEST_ADDR: z.string().min(1).optional(),
  JOB_WORKER_CONCURRENCY: vars.int(4, 0),
  JOB_LEASE_SECONDS: vars.int(30, 1),
  PIPELINE_TIMEOUT_MS: vars.int(10_000, 1),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});

/**
 * `valora serve orchestrator`: valora.v1.ValuationService (and JobService with its workers when
 * DATABASE_URL is set) for the AssetPipelines of its namespace, read from the Kubernetes API
 * (polled), dispatching to each pipeline's Service over gRPC. Ready once the catalog is loaded.
 */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const c = loadConfig(OrchestratorEnv, env);
  const base = createServiceBase({
    name: "orchestrator",
    logLevel: c.LOG_LEVEL,
    drainDelayMs: c.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const log = base.logger;
  const kube = kubeReader(c.KUBE_API_URL ? { url: c.KUBE_API_URL } : {});
  const prefix = `/apis/valora.dev/v1alpha1/namespaces/${c.POD_NAMESPACE}`;
  let catalog = new Map<string, CatalogClass>();
  let loaded = false;
  const refresh = async () => {
    const [aps, vms] = await Promise.all([
      kube.list<AssetPipelineObject>(`${prefix}/assetpipelines`),
      kube.list<ValuationModelObject>(`${prefix}/valuationmodels`),
    ]);
    const next = catalogFrom(aps, vms);
    const summary = (m: Map<string, CatalogClass>) =>
      JSON.stringify([...m].map(([k, v]) => [k, v.entry.championVersion(), v.entry.routes()]));
    if (!loaded || summary(next) !== summary(catalog))
      log.info({ assetClasses: [...next.keys()] }, "catalog changed");
    catalog = next;
    loaded = true;
  };

  const pipelines = pipelineDispatch({
    addressOf: (assetClass) =>
      pipelineAddress(c.PIPELINE_ADDR_TEMPLATE, catalog.get(assetClass)!.pipeline, c.POD_NAMESPACE),
    timeoutMs: c.PIPELINE_TIMEOUT_MS,
    registry: base.registry,
  });
  // Concurrent valuations share pipeline calls (PIPELINE_MAX_CALLS_IN_FLIGHT, PIPELINE_MAX_ITEMS_PER_CALL).
  const dispatch = coalescing(pipelines.dispatch, coalesceOptionsFrom(c));

  const redis = c.REDIS_URL ? createRedis({ url: c.REDIS_URL, logger: log }) : undefined;
  if (redis) base.health.addDependency("redis", () => redisReady(redis));
  const usage = c.USAGE_ADDR
    ? createClient(UsageService, c.USAGE_ADDR, { timeoutMs: 10_000, registry: base.registry })
    : undefined;
  if (!usage) log.warn("USAGE_ADDR not set: valuations are not metered");
  const recorder = usage
    ? new UsageRecorder({
        send: (events) => usage.recordUsage({ events }),
        logger: log,
        registry: base.registry,
      })
    : undefined;
  const tenants = c.TENANTS_ADDR
    ? createClient(TenantService, c.TENANTS_ADDR, { timeoutMs: 10_000, registry: base.registry })
    : undefined;
  const ingest = c.INGEST_ADDR
    ? createClient(IngestService, c.INGEST_ADDR, { timeoutMs: 5000, registry: base.registry })
    : undefined;
  const pool = c.DATABASE_URL
    ? createPgPool({
        url: c.DATABASE_URL,
        applicationName: "valora-orchestrator",
        logger: log,
        degraded: base.degraded,
      })
    : undefined;
  // Jobs pause while Postgres is away; valuations go on: a dependency, not a readiness check.
  if (pool) base.health.addDependency("postgres", () => pgReady(pool));
  if (pool) await migrateJobs(pool);
  const store = pool ? new JobStore(pool) : undefined;
  const results = jobResultsFrom(c);

  const services = [
    valuationService({
      catalog: (a) => catalog.get(a)?.entry,
      assetClasses: () => [...catalog.keys()],
      dispatch,
      cache: redis ? new RedisCache(redis) : new MemoryCache(),
      registry: base.registry,
      ...(recorder ? { usage: valuationUsage(recorder) } : {}),
      ...(ingest ? registryHooks(ingest, log) : {}),
    }),
    ...(store
      ? [
          jobService({
            store,
            fields: (a) => catalog.get(a)?.entry.fields,
            ...(results ? { objects: results.objects } : {}),
            onCreated: () => worker?.wake(),
          }),
          tenantDataService(jobTenantData(pool!, results?.objects)),
        ]
      : []),
  ];
  base.health.addCheck("catalog", async () => loaded);
  const { port, opsPort, ops } = await serveGrpc(base, {
    services,
    host: c.HOST,
    grpcPort: c.GRPC_PORT,
    metricsPort: c.METRICS_PORT,
  });

  // Job workers value through this pod's own ValuationService, like any other client.
  const self = createClient(ValuationService, `127.0.0.1:${port}`, { timeoutMs: 60_000 });
  const worker =
    store && c.JOB_WORKER_CONCURRENCY > 0
      ? new JobWorker({
          store,
          value: valueRowsWith((req, o) => self.valueBatch(req, o)),
          ...(usage ? { recordUsage: jobRowUsage((req) => usage.recordUsage(req)) } : {}),
          logger: log,
          registry: base.registry,
          concurrency: c.JOB_WORKER_CONCURRENCY,
          leaseSeconds: c.JOB_LEASE_SECONDS,
          retentionDays: 30,
          ...(results ? { results } : {}),
          ...(tenants
            ? {
                onFinished: async (job) => void (await tenants.publish(jobCompletedEvent(job))),
              }
            : {}),
        })
      : undefined;
  worker?.start();

  const poller = pollEvery(refresh, {
    intervalMs: c.CATALOG_POLL_MS,
    logger: log,
    message: "could not read AssetPipelines; keeping the last catalog",
  });

  base.shutdown.register("job-worker", async () => worker?.stop());
  base.shutdown.register("catalog", () => poller.stop());
  base.shutdown.register("usage", async () => recorder?.close());
  base.shutdown.register("clients", async () => {
    self.close();
    pipelines.close();
    usage?.close();
    tenants?.close();
    ingest?.close();
    redis?.disconnect();
    await pool?.end();
  });
  base.shutdown.register("ops", () => ops.close());
  base.shutdown.installSignalHandlers();
  log.info({ port, opsPort, namespace: c.POD_NAMESPACE, jobs: Boolean(store) }, "orchestrator listening");
}
