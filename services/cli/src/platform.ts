import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";
import { BillingService } from "@valora/proto/valora/v1/billing_pb";
import { JobService } from "@valora/proto/valora/v1/jobs_pb";
import { MarketDataService } from "@valora/proto/valora/v1/market_pb";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import { UsageRecorder, ValoraError, createClient, createGrpcServer, createPgPool, createRedis, planCatalogFrom, type ServiceBase } from "@valora/kit";
import { metadataOf, parseModel } from "@valora/kit/onnx";
import { insertSales, loadSales, migrateSales, salesFromCsv, type Sale } from "@valora/comparables";
import { MarketIndexFeed, assemblePipeline, grpcModelClient, localDispatch, pipelineMetrics, type AssetPipelineSpec, type ValuationPipeline } from "@valora/pipeline";
import { JobStore, JobWorker, MemoryCache, RedisCache, jobRowUsage, type ResultsObjectStore, jobService, migrateJobs, valuationService, valuationUsage, valueRowsWith, type AssetClassEntry } from "@valora/orchestrator";
import { createTenants } from "@valora/tenants";
import { createUsage } from "@valora/usage";
import { createBilling, parsePrices } from "@valora/billing";
import { createMarketData } from "@valora/market-data";
import { Authenticator, LocalQuotaCounter, LocalRateLimiter, RedisQuotaCounter, RedisRateLimiter, buildGateway, grpcIngress } from "@valora/gateway";
import { startEmbeddedPostgres } from "./embedded-postgres.js";
import { startChildService } from "./child-service.js";

export interface PlatformOptions {
  modelsDir: string;
  dataDir: string;
  host: string;
  port: number;
  grpcPort: number;
  modelGrpcPort: number;
  modelHttpPort: number;
  databaseUrl?: string;
  redisUrl?: string;
  bootstrapApiKey?: string;
  /** Large jobs' results in S3-compatible storage (JOB_RESULTS_S3_*); Postgres only when absent. */
  jobResults?: { objects: ResultsObjectStore; minRows: number; prefix: string };
  /** Bulk-job chunks in flight (VALORA_JOB_WORKERS, default 8). */
  jobWorkers?: number;
  /** Plan catalog as JSON (VALORA_PLANS); the defaults when absent. */
  plans?: string;
  /** Stripe billing (STRIPE_*); off when absent. */
  stripe?: { secretKey: string; webhookSecret: string; prices: string[]; meteredPrice?: string; meterEventName?: string };
}

export interface Platform {
  restUrl: string;
  grpcAddress: string;
  modelServer: { rest: string; grpc: string };
  database: "embedded" | "external";
  cache: "redis" | "memory";
  assetClasses: { name: string; version: string; sample: Record<string, unknown> }[];
  /** Set on the first start only, when the key was generated. */
  generatedKey?: string;
}


interface AssetClassFiles {
  name: string;
  model: string;
  version: string;
  spec: AssetPipelineSpec;
  data?: string;
  target: string;
}

/** Every `<dir>/<class>/` holding model.onnx, model-card.json and the class's CRs (<class>.yaml). */
export function discoverAssetClasses(dir: string): AssetClassFiles[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, "model.onnx")) && existsSync(join(dir, d.name, `${d.name}.yaml`)))
    .map((d) => {
      const card = JSON.parse(readFileSync(join(dir, d.name, "model-card.json"), "utf8")) as { version: string; data: { name: string; target: { name: string } } };
      const docs = parseAllDocuments(readFileSync(join(dir, d.name, `${d.name}.yaml`), "utf8")).map((x) => x.toJS() as { kind: string; spec: unknown });
      const ap = docs.find((x) => x.kind === "AssetPipeline");
      if (!ap) throw new ValoraError("FAILED_PRECONDITION", `${d.name}.yaml has no AssetPipeline`);
      const data = join(dir, "data", card.data.name);
      return { name: d.name, model: resolve(dir, d.name, "model.onnx"), version: card.version, spec: ap.spec as AssetPipelineSpec, ...(existsSync(data) ? { data } : {}), target: card.data.target.name };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The platform in one process on loopback, each part the same library its pod runs: tenants
 * (Postgres: external or embedded), a model server with every model, a pipeline per asset class
 * with comparables from the `sales` table (seeded from the training data), the orchestrator,
 * and the gateway (REST + gRPC). Parts talk gRPC to each other as they do in a cluster.
 */
export async function startPlatform(base: ServiceBase, o: PlatformOptions): Promise<Platform> {
  const classes = discoverAssetClasses(o.modelsDir);
  if (classes.length === 0) throw new ValoraError("FAILED_PRECONDITION", `no models under ${o.modelsDir}: run make models`);
  const log = base.logger;
  // Shutdown runs steps in registration order; parts start inside-out, so they stop outside-in.
  const closers: [string, () => Promise<void>][] = [];
  const register = () => {
    for (const [name, run] of closers.reverse()) base.shutdown.register(name, run);
  };

  const embedded = o.databaseUrl ? undefined : await startEmbeddedPostgres(join(o.dataDir, "pg"));
  if (embedded) closers.push(["embedded-postgres", () => embedded.close()]);
  const pool = createPgPool({ url: o.databaseUrl ?? embedded!.url, max: embedded ? 1 : 10, applicationName: "valora-up", logger: log });
  closers.push(["postgres", () => pool.end()]);
  log.info({ database: embedded ? `embedded PGlite in ${join(o.dataDir, "pg")}` : "DATABASE_URL" }, "database ready");

  const tenants = createTenants(base, { pool, webhooks: { allowHttp: true, allowPrivate: false }, ...(o.bootstrapApiKey ? { bootstrapApiKey: o.bootstrapApiKey } : {}) });
  const { generatedKey } = await tenants.start();
  closers.push(["webhooks", () => tenants.close()]);

  const usageApp = createUsage(base, { pool });
  await usageApp.start();
  closers.push(["usage", () => usageApp.close()]);
  const txhousing = join(o.modelsDir, "data", "txhousing.csv");
  const marketApp = createMarketData(base, { pool, ...(existsSync(txhousing) ? { texasHousingCsv: txhousing } : {}) });
  // Comparables read the series their AssetPipeline names straight from the catalog (one process).
  const feeds: MarketIndexFeed[] = [];
  const marketIndexFor = (id: string) => {
    const feed = new MarketIndexFeed({ seriesId: id, fetch: async (x) => (await marketApp.catalog.get(x)).points, logger: log });
    feeds.push(feed);
    return () => feed.current();
  };

  const models = await startChildService(
    ["model-server", ...classes.flatMap((c) => ["--model", `${c.name}=${pathToFileURL(c.model).href}`, "--model-version", c.version]), "--grpc-port", String(o.modelGrpcPort), "--http-port", String(o.modelHttpPort)],
    { LOG_LEVEL: "info", HOST: o.host, VALORA_MODEL_CACHE_DIR: join(o.dataDir, "model-cache"), MAX_BATCH_SIZE: "64", MAX_BATCH_DELAY_MICROS: "500" },
    { readyMessage: "model server ready", listeningMessage: "model server listening", failMessage: "model server not ready: some models failed to load", logger: log },
  );
  closers.push(["model-server", () => models.stop()]);
  const modelPorts = { grpcPort: Number(models.listening["grpcPort"]), httpPort: Number(models.listening["httpPort"]) };
  base.health.addCheck("model-server", async () => (await fetch(`http://${o.host}:${modelPorts.httpPort}/v2/health/ready`, { signal: AbortSignal.timeout(2000) })).ok);

  await migrateSales(pool);
  const pipelines = new Map<string, ValuationPipeline>();
  const catalog = new Map<string, AssetClassEntry>();
  const samples: Platform["assetClasses"] = [];
  const metrics = pipelineMetrics(base.registry);
  for (const c of classes) {
    const meta = metadataOf(parseModel(readFileSync(c.model)));
    const route = { version: c.version, role: "champion" as const, endpoint: `127.0.0.1:${modelPorts.grpcPort}`, weight: 100 };
    const client = grpcModelClient(route.endpoint, c.name, c.version, base.registry);
    closers.push([`model-client-${c.name}`, async () => client.close()]);
    const spec = c.spec;
    const cmp = spec.comparables;
    const column = (field?: string) => spec.input.fields.find((f) => f.name === field)?.feature;
    const lat = column(cmp?.latitude);
    const lon = column(cmp?.longitude);
    const year = column(cmp?.soldAt?.year);
    const month = column(cmp?.soldAt?.month);
    const seed: Sale[] = c.data ? salesFromCsv(readFileSync(c.data, "utf8"), { idPrefix: c.name, target: c.target, fields: spec.input.fields, ...(lat ? { latitude: lat } : {}), ...(lon ? { longitude: lon } : {}), ...(year && month ? { year, month } : {}) }) : [];
    const inserted = await insertSales(pool, c.name, seed, "seed");
    const sales = await loadSales(pool, c.name);
    pipelines.set(c.name, await assemblePipeline({ spec, metadata: meta, sales, routes: () => [route], client: () => client, champion: client, ...(cmp?.marketIndex ? { marketIndex: marketIndexFor(cmp.marketIndex) } : {}), logger: log, metrics }));
    catalog.set(c.name, { model: spec.model.name, currency: spec.currency, fields: spec.input.fields, cacheTtlSeconds: spec.cache?.ttlSeconds ?? 3600, championVersion: () => c.version, routes: () => [route] });
    samples.push({ name: c.name, version: c.version, sample: seed[0]?.attributes ?? {} });
    log.info({ assetClass: c.name, model: `${spec.model.name}@${c.version}`, sales: sales.length, seeded: inserted }, "asset pipeline ready");
  }

  // The sales are in: load each named index now, refresh it every 10 minutes.
  for (const f of feeds) {
    await f.refresh();
    f.start();
    closers.push(["market-index", async () => f.stop()]);
  }

  const redis = o.redisUrl ? createRedis({ url: o.redisUrl, logger: log }) : undefined;
  if (redis) closers.push(["redis", async () => redis.disconnect()]);
  await migrateJobs(pool);
  const jobStore = new JobStore(pool);
  const plans = planCatalogFrom(o.plans);
  // Business services first, then the orchestrator that meters through them, as pods would.
  const business = createGrpcServer({ ...base, services: [tenants.service, usageApp.service, marketApp.service] });
  const businessAddress = `127.0.0.1:${await business.listen("127.0.0.1:0")}`;
  closers.push(["business-grpc", () => business.shutdown()]);
  const tenantsClient = createClient(TenantService, businessAddress, { timeoutMs: 10_000 });
  const usage = createClient(UsageService, businessAddress, { timeoutMs: 10_000 });
  const marketClient = createClient(MarketDataService, businessAddress, { timeoutMs: 10_000 });
  const recorder = new UsageRecorder({ send: (events) => usage.recordUsage({ events }), logger: log, registry: base.registry });
  const internal = createGrpcServer({
    ...base,
    services: [
      jobService({ store: jobStore, fields: (c) => catalog.get(c)?.fields, ...(o.jobResults ? { objects: o.jobResults.objects } : {}) }),
      valuationService({ catalog: (c) => catalog.get(c), assetClasses: () => [...catalog.keys()], cache: redis ? new RedisCache(redis) : new MemoryCache(), registry: base.registry, dispatch: localDispatch(pipelines), usage: valuationUsage(recorder) }),
    ],
  });
  const internalPort = await internal.listen("127.0.0.1:0");
  closers.push(["internal-grpc", () => internal.shutdown()]);
  // Billing calls tenants and usage, so it gets its own server once their clients exist.
  const billingApp = createBilling(base, {
    pool,
    tenants: tenantsClient,
    usage,
    plans,
    ...(o.stripe ? { stripe: { secretKey: o.stripe.secretKey, webhookSecret: o.stripe.webhookSecret, prices: parsePrices(o.stripe.prices, (p) => plans.has(p)), meterEventName: o.stripe.meterEventName ?? "valora_valuations", ...(o.stripe.meteredPrice ? { meteredPrice: o.stripe.meteredPrice } : {}) } } : {}),
  });
  await billingApp.start();
  closers.push(["billing", () => billingApp.close()]);
  const billingServer = createGrpcServer({ ...base, services: [billingApp.service] });
  const billingClient = createClient(BillingService, `127.0.0.1:${await billingServer.listen("127.0.0.1:0")}`, { timeoutMs: 30_000 });
  closers.push(["billing-grpc", () => billingServer.shutdown()]);
  const valuations = createClient(ValuationService, `127.0.0.1:${internalPort}`, { timeoutMs: 10_000 });
  const jobs = createClient(JobService, `127.0.0.1:${internalPort}`, { timeoutMs: 30_000 });
  const worker = new JobWorker({
    store: jobStore,
    value: valueRowsWith((req, opts) => valuations.valueBatch(req, opts)),
    recordUsage: jobRowUsage((req) => usage.recordUsage(req)),
    logger: log,
    registry: base.registry,
    // Enough chunks in flight to keep the model server process busy while this one prepares the next.
    concurrency: o.jobWorkers ?? 8,
    retentionDays: 30,
    ...(o.jobResults ? { results: o.jobResults } : {}),
    onFinished: async (job) => {
      await tenantsClient.publish({ tenantId: job.tenantId, eventId: `job-${job.id}`, type: "job.completed", data: { jobId: job.id, assetClass: job.assetClass, totalRows: job.totalRows, doneRows: job.doneRows, failedRows: job.failedRows } });
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
    },
  ]);
  // Unsent usage is flushed before the clients close.
  closers.push(["usage-recorder", () => recorder.close()]);
  // Stops before the clients it values through are closed.
  closers.push(["job-worker", () => worker.stop()]);

  const limiter = redis ? new RedisRateLimiter(redis, log, base.registry) : new LocalRateLimiter();
  const auth = new Authenticator({ tenants: tenantsClient });
  const quota = redis ? new RedisQuotaCounter(redis, log) : new LocalQuotaCounter();
  const app = await buildGateway({ base, valuations, tenants: tenantsClient, jobs, usage, billing: billingClient, market: marketClient, plans, auth, limiter, quota });
  await app.listen({ host: o.host, port: o.port });
  closers.push(["gateway", () => app.close()]);
  const edge = createGrpcServer({ ...base, services: [grpcIngress({ auth, limiter, valuations, plans, quota })] });
  const grpcPort = await edge.listen(`${o.host}:${o.grpcPort}`);
  closers.push(["edge-grpc", () => edge.shutdown()]);

  register();
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : o.port;
  return {
    restUrl: `http://${o.host}:${port}`,
    grpcAddress: `${o.host}:${grpcPort}`,
    modelServer: { rest: `http://${o.host}:${modelPorts.httpPort}`, grpc: `${o.host}:${modelPorts.grpcPort}` },
    database: embedded ? "embedded" : "external",
    cache: redis ? "redis" : "memory",
    assetClasses: samples,
    ...(generatedKey ? { generatedKey } : {}),
  };
}
