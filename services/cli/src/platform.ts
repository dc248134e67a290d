import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { BillingService } from "@valora/proto/valora/v1/billing_pb";
import { JobService } from "@valora/proto/valora/v1/jobs_pb";
import { MarketDataService } from "@valora/proto/valora/v1/market_pb";
import { IngestService } from "@valora/proto/valora/v1/ingest_pb";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { TenantDataService } from "@valora/proto/valora/v1/tenant_data_pb";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import {
  UsageRecorder,
  ValoraError,
  createGrpcServer,
  createLocalClient,
  createPgPool,
  createRedis,
  planCatalogFrom,
  type ServiceBase,
  pgReady,
  redisReady,
  combineTenantData,
  tenantDataService,
} from "@valora/kit";
import type { AssetPipelineSpec } from "@valora/pipeline";
import {
  JobStore,
  JobWorker,
  jobCompletedEvent,
  MemoryCache,
  RedisCache,
  catalogFrom,
  jobRowUsage,
  jobService,
  jobTenantData,
  migrateJobs,
  pipelineAddress,
  pipelineDispatch,
  coalescing,
  PIPELINE_CALLS,
  type CoalesceOptions,
  registryHooks,
  valuationService,
  valuationUsage,
  valueRowsWith,
  type AssetPipelineObject,
  type CatalogClass,
  type ResultsObjectStore,
  type ValuationModelObject,
} from "@valora/orchestrator";
import { createTenants } from "@valora/tenants";
import { USAGE_TENANT_TABLES, createUsage } from "@valora/usage";
import { createBilling, parsePrices } from "@valora/billing";
import { createMarketData } from "@valora/market-data";
import {
  INGEST_TENANT_TABLES,
  createIngest,
  driftAnnouncer,
  registerSnapshot,
  schemaOf,
  type PipelineContractSpec,
} from "@valora/ingest";
import {
  Authenticator,
  LocalQuotaCounter,
  LocalRateLimiter,
  RedisQuotaCounter,
  RedisRateLimiter,
  buildGateway,
  defaultConsoleDir,
  type ConsoleOptions,
  type OidcOptions,
  grpcIngress,
  startPurger,
} from "@valora/gateway";
import { startEmbeddedPostgres } from "./embedded-postgres.js";
import { startLocalCluster, waitForPipelines, type LocalCluster } from "./local-cluster.js";
import { seedSales } from "./seed-sales.js";

export interface PlatformOptions {
  /** Where pods' output lines go (see LocalClusterOptions.podOutput). */
  podOutput?: (line: string, stream: "stdout" | "stderr") => void;
  modelsDir: string;
  /** The CRs the local operator reconciles (VALORA_MANIFESTS, default manifests/). */
  manifestsDir: string;
  dataDir: string;
  host: string;
  port: number;
  grpcPort: number;
  /** The local Kubernetes API (0: any free port). */
  kubePort: number;
  databaseUrl?: string;
  redisUrl?: string;
  bootstrapApiKey?: string;
  /** Large jobs' results in S3-compatible storage (JOB_RESULTS_S3_*); Postgres only when absent. */
  jobResults?: { objects: ResultsObjectStore; minRows: number; prefix: string };
  /** Concurrent valuations sharing pipeline calls (PIPELINE_MAX_CALLS_IN_FLIGHT, PIPELINE_MAX_ITEMS_PER_CALL). */
  pipelineCalls?: CoalesceOptions;
  /** Bulk-job chunks in flight (VALORA_JOB_WORKERS, default 16). */
  jobWorkers?: number;
  /** How often due tenant erasures are purged (default a minute). */
  tenantPurgeIntervalMs?: number;
  /** The web console (build directory, OIDC client, map tiles); null serves none; the repository's build by default. */
  console?: ConsoleOptions | null;
  /** OIDC bearer tokens at the gateway (OIDC_ISSUER and friends); API keys only when absent. */
  oidc?: OidcOptions;
  /** Plan catalog as JSON (VALORA_PLANS); the defaults when absent. */
  plans?: string;
  /** Stripe billing (STRIPE_*); off when absent. */
  stripe?: {
    secretKey: string;
    webhookSecret: string;
    prices: string[];
    meteredPrice?: string;
    meterEventName?: string;
  };
  readyTimeoutMs?: number;
}

export interface Platform {
  restUrl: string;
  grpcAddress: string;
  kubernetesUrl: string;
  database: "embedded" | "external";
  cache: "redis" | "memory";
  assetClasses: { name: string; version: string; sample: Record<string, unknown> }[];
  /** Set on the first start only, when the key was generated. */
  generatedKey?: string;
}

/** The namespace `valora up` applies manifests without one to (as kubectl would). */
export const NAMESPACE = "default";

/**
 * The platform on one machine, each part the same library or process its pod runs: tenants,
 * usage, market data and billing (Postgres: external or embedded); the operator reconciling the
 * CRs of `manifests/` into a model server per live model version and a pipeline per asset class
 * (processes on loopback, see startLocalCluster); the orchestrator following those CRs; the
 * gateway (REST + gRPC). Parts talk gRPC to each other as they do in a cluster.
 */
export async function startPlatform(base: ServiceBase, o: PlatformOptions): Promise<Platform> {
  const log = base.logger;
  // Shutdown runs steps in registration order; parts start inside-out, so they stop outside-in.
  const closers: [string, () => Promise<void>][] = [];
  let registered = false;
  // Stopped while starting (or failing to start): what started so far stops, newest first.
  base.shutdown.register("starting", async () => {
    if (registered) return;
    for (const [name, run] of [...closers].reverse())
      await run().catch((err: unknown) => log.warn({ step: name, err }, "stop failed"));
  });
  const register = () => {
    registered = true;
    for (const [name, run] of closers.reverse()) base.shutdown.register(name, run);
  };
  const specs = readPipelineSpecs(o.manifestsDir);
  if (specs.length === 0)
    throw new ValoraError(
      "FAILED_PRECONDITION",
      `no AssetPipelines in ${o.manifestsDir}: run make models, or set VALORA_MANIFESTS`,
    );

  const embedded = o.databaseUrl
    ? undefined
    : await startEmbeddedPostgres(join(o.dataDir, "pg"), (err) =>
        log.error({ err }, "embedded PostgreSQL failed: the platform answers as in a database outage"),
      );
  if (embedded) closers.push(["embedded-postgres", () => embedded.close()]);
  const pool = createPgPool({
    url: o.databaseUrl ?? embedded!.url,
    max: embedded ? 1 : 10,
    applicationName: "valora-up",
    logger: log,
    degraded: base.degraded,
  });
  closers.push(["postgres", () => pool.end()]);
  log.info(
    { database: embedded ? `embedded PGlite in ${join(o.dataDir, "pg")}` : "DATABASE_URL" },
    "database ready",
  );

  const tenants = createTenants(base, {
    pool,
    webhooks: { allowHttp: true, allowPrivate: false },
    ...(o.bootstrapApiKey ? { bootstrapApiKey: o.bootstrapApiKey } : {}),
  });
  const { generatedKey } = await tenants.start();
  closers.push(["webhooks", () => tenants.close()]);
  const usageApp = createUsage(base, { pool });
  await usageApp.start();
  closers.push(["usage", () => usageApp.close()]);
  const txhousing = join(o.modelsDir, "data", "txhousing.csv");
  const marketApp = createMarketData(base, {
    pool,
    ...(existsSync(txhousing) ? { texasHousingCsv: txhousing } : {}),
  });
  // Data feeds check records against each AssetPipeline's contract, read from the local cluster.
  const started: { cluster?: LocalCluster } = {};
  const pipelineSpecs = () =>
    (started.cluster?.api.list("assetpipelines", NAMESPACE) ?? []) as unknown as {
      spec: PipelineContractSpec;
    }[];
  let announceDrift: (e: {
    model: string;
    modelVersion: string;
    month: string;
    mdape: number;
    thresholdPct: number;
  }) => void = () => undefined;
  const ingestApp = createIngest(base, {
    pool,
    schema: (assetClass) => {
      const spec = pipelineSpecs().find((p) => p.spec.assetClass === assetClass)?.spec;
      return spec ? schemaOf(spec) : undefined;
    },
    classOfModel: (model) => pipelineSpecs().find((p) => p.spec.model.name === model)?.spec.assetClass,
    onDrift: (e) => announceDrift(e),
  });
  await ingestApp.start();
  const business = createGrpcServer({
    ...base,
    services: [tenants.service, usageApp.service, marketApp.service, ingestApp.service],
  });
  const businessAddress = `127.0.0.1:${await business.listen("127.0.0.1:0")}`;
  closers.push(["business-grpc", () => business.shutdown()]);

  // The sales each AssetPipeline compares with are in before its pods start (the ingest
  // migrations above created the sales table).
  const samples = new Map<string, Record<string, unknown>>();
  for (const spec of specs) {
    const { seeded, sales, sample, card } = await seedSales(pool, spec, o.modelsDir);
    if (sample) samples.set(spec.assetClass, sample);
    // Lineage of the default models: the seed is the snapshot their cards name.
    if (card && sales > 0) {
      await registerSnapshot(pool, {
        id: card.data.sha256,
        assetClass: spec.assetClass,
        source: `seed:${card.data.name}`,
        sales,
        seed: true,
        batchIds: [],
      });
      await ingestApp.store.registerModel({
        model: spec.model.name,
        version: card.version,
        assetClass: spec.assetClass,
        dataSha256: card.data.sha256,
        dataName: card.data.name,
        card,
      });
    }
    if (seeded > 0) log.info({ assetClass: spec.assetClass, seeded }, "sales seeded from the training data");
  }

  const local = await startLocalCluster({
    dataDir: o.dataDir,
    manifestsDir: o.manifestsDir,
    modelsDir: o.modelsDir,
    namespace: NAMESPACE,
    pipelineEnv: {
      DATABASE_URL: embedded ? embedded.url : o.databaseUrl!,
      MARKET_DATA_ADDR: businessAddress,
    },
    kubePort: o.kubePort,
    logger: log,
    registry: base.registry,
    ...(o.podOutput ? { podOutput: o.podOutput } : {}),
  });
  started.cluster = local;
  closers.push(["local-cluster", () => local.close()]);
  log.info(
    {
      kubernetes: local.apiUrl,
      manifests: o.manifestsDir,
      ...(local.refused.length > 0 ? { refused: local.refused } : {}),
    },
    "local cluster up: the operator reconciles the manifests",
  );
  await waitForPipelines(local.api, NAMESPACE, log, o.readyTimeoutMs ?? 180_000);
  // /readyz follows the asset pipelines (and so their models) as the operator reports them.
  base.health.addCheck("asset-pipelines", async () =>
    (
      local.api.list("assetpipelines", NAMESPACE) as {
        status?: { conditions?: { type: string; status: string }[] };
      }[]
    ).every((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")),
  );

  // Dependencies the platform serves without for a while (cached valuations, resolved keys,
  // comparables in memory, buffered usage): /readyz names them when down and stays ready.
  base.health.addDependency("postgres", () => pgReady(pool));

  // The orchestrator's catalog follows the CRs as they change (pods poll the API; here it is in-process).
  let catalog = new Map<string, CatalogClass>();
  const refreshCatalog = () => {
    catalog = catalogFrom(
      local.api.list("assetpipelines", NAMESPACE) as unknown as AssetPipelineObject[],
      local.api.list("valuationmodels", NAMESPACE) as unknown as ValuationModelObject[],
    );
  };
  refreshCatalog();
  const unsubscribe = local.api.subscribe(
    (_t, plural) => (plural === "assetpipelines" || plural === "valuationmodels") && refreshCatalog(),
  );
  closers.push(["catalog", async () => unsubscribe()]);
  const pipelines = pipelineDispatch({
    addressOf: (assetClass) =>
      pipelineAddress("{name}.{namespace}.svc:9090", catalog.get(assetClass)!.pipeline, NAMESPACE),
    timeoutMs: 10_000,
    registry: base.registry,
  });
  closers.push(["pipeline-clients", async () => pipelines.close()]);

  const redis = o.redisUrl ? createRedis({ url: o.redisUrl, logger: log }) : undefined;
  if (redis) base.health.addDependency("redis", () => redisReady(redis));
  if (redis) closers.push(["redis", async () => redis.disconnect()]);
  await migrateJobs(pool);
  const jobStore = new JobStore(pool);
  const plans = planCatalogFrom(o.plans);
  // This process calls the business services in process; the pipeline pods reach them over gRPC.
  const tenantsClient = createLocalClient(TenantService, tenants.service, { timeoutMs: 10_000 });
  const usage = createLocalClient(UsageService, usageApp.service, { timeoutMs: 10_000 });
  const marketClient = createLocalClient(MarketDataService, marketApp.service, { timeoutMs: 10_000 });
  const ingestClient = createLocalClient(IngestService, ingestApp.service, { timeoutMs: 60_000 });
  // Drift is announced to every tenant whose valuations of the model were scored (once per model and month).
  announceDrift = driftAnnouncer(pool, (e) => tenantsClient.publish(e), log);
  const recorder = new UsageRecorder({
    send: (events) => usage.recordUsage({ events }),
    logger: log,
    registry: base.registry,
  });
  // The orchestrator shares this process with the gateway and the job workers: they call it in
  // process (same handlers, metadata and deadlines as over gRPC, no encoding or socket).
  const jobsRegistration = jobService({
    store: jobStore,
    fields: (c) => catalog.get(c)?.entry.fields,
    ...(o.jobResults ? { objects: o.jobResults.objects } : {}),
    onCreated: () => worker.wake(),
  });
  const valuationRegistration = valuationService({
    catalog: (c) => catalog.get(c)?.entry,
    assetClasses: () => [...catalog.keys()],
    cache: redis ? new RedisCache(redis) : new MemoryCache(),
    registry: base.registry,
    dispatch: coalescing(pipelines.dispatch, o.pipelineCalls ?? PIPELINE_CALLS),
    usage: valuationUsage(recorder),
    ...registryHooks(ingestClient, log),
  });
  // Billing calls tenants and usage, so it gets its own server once their clients exist.
  const billingApp = createBilling(base, {
    pool,
    tenants: tenantsClient,
    usage,
    plans,
    ...(o.stripe
      ? {
          stripe: {
            secretKey: o.stripe.secretKey,
            webhookSecret: o.stripe.webhookSecret,
            prices: parsePrices(o.stripe.prices, (p) => plans.has(p)),
            meterEventName: o.stripe.meterEventName ?? "valora_valuations",
            ...(o.stripe.meteredPrice ? { meteredPrice: o.stripe.meteredPrice } : {}),
          },
        }
      : {}),
  });
  await billingApp.start();
  closers.push(["billing", () => billingApp.close()]);
  const billingClient = createLocalClient(BillingService, billingApp.service, { timeoutMs: 30_000 });
  const valuations = createLocalClient(ValuationService, valuationRegistration, { timeoutMs: 10_000 });
  const jobs = createLocalClient(JobService, jobsRegistration, { timeoutMs: 30_000 });
  const worker = new JobWorker({
    store: jobStore,
    value: valueRowsWith((req, opts) => valuations.valueBatch(req, opts)),
    recordUsage: jobRowUsage((req) => usage.recordUsage(req)),
    logger: log,
    registry: base.registry,
    degraded: base.degraded,
    // Enough chunks in flight to keep the pipeline and model-server processes busy while this one
    // prepares and commits the next (16: 2,400 rows/s against 2,200 with 8, see bench:jobs).
    concurrency: o.jobWorkers ?? 16,
    retentionDays: 30,
    ...(o.jobResults ? { results: o.jobResults } : {}),
    onFinished: async (job) => {
      await tenantsClient.publish(jobCompletedEvent(job));
    },
  });
  worker.start();
  closers.push([
    "clients",
    async () => {
      tenantsClient.close();
      valuations.close();
      jobs.close();
      usage.close();
      billingClient.close();
      marketClient.close();
      ingestClient.close();
    },
  ]);
  // Unsent usage is flushed before the clients close.
  closers.push(["usage-recorder", () => recorder.close()]);
  // Stops before the clients it values through are closed.
  closers.push(["job-worker", () => worker.stop()]);

  // One database: one tenant-data service over every service's tables (exports, erasure).
  const tenantData = createLocalClient(
    TenantDataService,
    tenantDataService(
      combineTenantData(
        [
          jobTenantData(pool, o.jobResults?.objects),
          { pool, tables: INGEST_TENANT_TABLES },
          { pool, tables: USAGE_TENANT_TABLES },
          billingApp.data,
        ],
        tenants.dataOptions,
      ),
    ),
    { timeoutMs: 120_000 },
  );
  closers.push(["tenant-data", async () => tenantData.close()]);
  const limiter = redis ? new RedisRateLimiter(redis, log, base.registry) : new LocalRateLimiter();
  const auth = new Authenticator({
    tenants: tenantsClient,
    degraded: base.degraded,
    ...(o.oidc ? { oidc: o.oidc } : {}),
  });
  const quota = redis ? new RedisQuotaCounter(redis, base.degraded) : new LocalQuotaCounter();
  const app = await buildGateway({
    base,
    valuations,
    tenants: tenantsClient,
    jobs,
    usage,
    billing: billingClient,
    market: marketClient,
    ingest: ingestClient,
    plans,
    auth,
    limiter,
    quota,
    tenantData: { tenants: tenantData, others: [] },
    ...(o.console !== null ? { console: o.console ?? { dir: defaultConsoleDir() } } : {}),
  });
  await app.listen({ host: o.host, port: o.port });
  closers.push(["gateway", () => app.close()]);
  const purger = startPurger(app.valoraLifecycle, o.tenantPurgeIntervalMs ?? 60_000, base.degraded);
  closers.push(["erasure-sweep", async () => purger.stop()]);
  const edge = createGrpcServer({
    ...base,
    services: [grpcIngress({ auth, limiter, valuations, plans, quota })],
  });
  const grpcPort = await edge.listen(`${o.host}:${o.grpcPort}`);
  closers.push(["edge-grpc", () => edge.shutdown()]);

  register();
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : o.port;
  return {
    restUrl: `http://${o.host}:${port}`,
    grpcAddress: `${o.host}:${grpcPort}`,
    kubernetesUrl: local.apiUrl,
    database: embedded ? "embedded" : "external",
    cache: redis ? "redis" : "memory",
    assetClasses: [...catalog]
      .map(([name, c]) => ({
        name,
        version: c.entry.championVersion() ?? "",
        sample: samples.get(name) ?? {},
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    ...(generatedKey ? { generatedKey } : {}),
  };
}

/** The AssetPipeline specs of a manifests folder (the seeding needs them before the cluster starts). */
function readPipelineSpecs(dir: string): AssetPipelineSpec[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), "utf8")).map(
        (d) => d.toJS() as { kind?: string; spec?: AssetPipelineSpec } | null,
      ),
    )
    .flatMap((d) => (d?.kind === "AssetPipeline" && d.spec ? [d.spec] : []));
}
