import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";
import { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import {
  UsageRecorder,
  combineTenantData,
  createClient,
  createGrpcServer,
  createPgPool,
  createServiceBase,
  type Client,
  type Pool,
  type ServiceBase,
  tenantDataService,
} from "@valora/kit";
import { captureLogs, freshDatabase } from "@valora/kit/testing";
import { metadataOf, parseModel } from "@valora/kit/onnx";
import { createModelServer } from "@valora/model-server";
import { ComparablesIndex, salesFromCsv, type Sale } from "@valora/comparables";
import {
  ValuationPipeline,
  grpcModelClient,
  localDispatch,
  modelSchemaFrom,
  salesResiduals,
  type PipelineSpec,
} from "@valora/pipeline";
import {
  JobStore,
  JobWorker,
  MemoryCache,
  jobRowUsage,
  jobService,
  jobTenantData,
  migrateJobs,
  valuationService,
  valuationUsage,
  valueRowsWith,
} from "@valora/orchestrator";
import { USAGE_TENANT_TABLES, createUsage } from "@valora/usage";
import { INGEST_TENANT_TABLES, migrateIngest } from "@valora/ingest";
import { BILLING_TENANT_TABLES, migrateBilling } from "@valora/billing";
import { TenantDataService } from "@valora/proto/valora/v1/tenant_data_pb";
import type { TenantDataClients } from "../../src/index.js";
import { JobService } from "@valora/proto/valora/v1/jobs_pb";
import { createTenants, type TenantsApp } from "@valora/tenants";

export const root = join(import.meta.dirname, "..", "..", "..", "..");

type Spec = PipelineSpec & {
  comparables: PipelineSpec["comparables"] & {
    h3Resolution: number;
    maxRings: number;
    count: number;
    maxAgeMonths: number;
    similarity: { field: string; weight: number }[];
  };
  cache: { ttlSeconds: number };
};

export interface Stack {
  base: ServiceBase;
  pool: Pool;
  tenantsApp: TenantsApp;
  tenants: Client<typeof TenantService>;
  valuations: Client<typeof ValuationService>;
  jobs: Client<typeof JobService>;
  usage: Client<typeof UsageService>;
  bootstrapKey: string;
  sales: Sale[];
  tenantData: TenantDataClients;
  close(): Promise<void>;
}

/**
 * The real parts behind a gateway, on loopback: tenants over gRPC on a fresh Postgres database,
 * and an orchestrator over gRPC whose autos pipeline calls a real model server (onnxruntime).
 */
export async function startStack(databaseUrl: string): Promise<Stack> {
  const { logger } = captureLogs("gateway-test");
  const base = createServiceBase({ name: "gateway-test", logger });
  const db = await freshDatabase(databaseUrl);
  const pool = createPgPool({ url: db.url, max: 4 });
  const tenantsApp = createTenants(base, { pool, webhooks: { allowHttp: true, allowPrivate: true } });
  const { generatedKey } = await tenantsApp.start();
  const usageApp = createUsage(base, { pool });
  await usageApp.start();

  const modelPath = join(root, "models", "autos", "model.onnx");
  const spec = parseAllDocuments(readFileSync(join(root, "manifests", "autos.yaml"), "utf8"))[1]!.toJS()
    .spec as Spec;
  const meta = metadataOf(parseModel(readFileSync(modelPath)));
  const models = createModelServer(base, {
    models: [{ name: "autos", version: "gm-v1", uri: pathToFileURL(modelPath).href }],
    source: { cacheDir: mkdtempSync(join(tmpdir(), "valora-gw-")), allowedHosts: [] },
    batching: { maxBatchSize: 32, maxDelayMicros: 200 },
  });
  const modelPorts = await models.listen({ host: "127.0.0.1", grpcPort: 0, httpPort: 0 });
  await models.loaded;
  const route = {
    version: "gm-v1",
    role: "champion" as const,
    endpoint: `127.0.0.1:${modelPorts.grpcPort}`,
    weight: 100,
  };
  const modelClient = grpcModelClient(route.endpoint, "autos", "gm-v1");
  const schema = modelSchemaFrom(meta, 0);
  const sales = salesFromCsv(readFileSync(join(root, "models", "data", "car_prices.csv"), "utf8"), {
    idPrefix: "gm",
    target: "Price",
    fields: spec.input.fields,
  });
  const residuals = await salesResiduals(sales, schema, spec.input.fields, modelClient);
  const pipeline = new ValuationPipeline({
    spec,
    schema,
    residualQuantiles: JSON.parse(meta["valora.residual_quantiles"]!) as Record<string, number>,
    routes: () => [route],
    client: () => modelClient,
    comparables: new ComparablesIndex(sales, { ...spec.comparables, mode: "attributes" }),
    residualOf: (id) => residuals.get(id),
    logger,
  });

  await migrateJobs(pool);
  let meter: (tenantId: string, assetClass: string, units: number) => Promise<void> = async () => undefined;
  const jobStore = new JobStore(pool);
  const servers = [
    createGrpcServer({
      ...base,
      services: [
        tenantsApp.service,
        usageApp.service,
        tenantDataService(combineTenantData([{ pool, tables: USAGE_TENANT_TABLES }], tenantsApp.dataOptions)),
      ],
    }),
    createGrpcServer({
      ...base,
      services: [
        valuationService({
          catalog: (c) =>
            c === "autos"
              ? {
                  model: "autos",
                  currency: "USD",
                  fields: spec.input.fields,
                  cacheTtlSeconds: 60,
                  championVersion: () => "gm-v1",
                  routes: () => [route],
                }
              : undefined,
          assetClasses: () => ["autos"],
          dispatch: localDispatch(new Map([["autos", pipeline]])),
          cache: new MemoryCache(),
          usage: (...args) => meter(...args),
        }),
        jobService({
          store: jobStore,
          fields: (c) => (c === "autos" ? spec.input.fields : undefined),
          watchIntervalMs: 100,
        }),
        tenantDataService(jobTenantData(pool)),
      ],
    }),
  ];
  // Tenant data as a cluster spreads it: the tenants service (with usage), the orchestrator's jobs,
  // and ingest with billing, each serving its own share (exports gather them, erasures purge them).
  await migrateIngest(pool);
  await migrateBilling(pool);
  const ingestServer = createGrpcServer({
    ...base,
    services: [tenantDataService({ pool, tables: [...INGEST_TENANT_TABLES, ...BILLING_TENANT_TABLES] })],
  });
  servers.push(ingestServer);
  const [tenantsPort, orchestratorPort, ingestPort] = [
    await servers[0]!.listen("127.0.0.1:0"),
    await servers[1]!.listen("127.0.0.1:0"),
    await ingestServer.listen("127.0.0.1:0"),
  ];
  const dataAt = (port: number) =>
    createClient(TenantDataService, `127.0.0.1:${port}`, { timeoutMs: 30_000 });
  const tenantData = { tenants: dataAt(tenantsPort), others: [dataAt(orchestratorPort), dataAt(ingestPort)] };
  const tenants = createClient(TenantService, `127.0.0.1:${tenantsPort}`, { timeoutMs: 5000 });
  const valuations = createClient(ValuationService, `127.0.0.1:${orchestratorPort}`, { timeoutMs: 10_000 });
  const jobs = createClient(JobService, `127.0.0.1:${orchestratorPort}`, { timeoutMs: 10_000 });
  const usage = createClient(UsageService, `127.0.0.1:${tenantsPort}`, { timeoutMs: 10_000 });
  const recorder = new UsageRecorder({ send: (events) => usage.recordUsage({ events }), logger });
  meter = valuationUsage(recorder);
  const worker = new JobWorker({
    store: jobStore,
    value: valueRowsWith((req, o) => valuations.valueBatch(req, o)),
    recordUsage: jobRowUsage((req) => usage.recordUsage(req)),
    logger,
    idleMs: 50,
  });
  worker.start();
  return {
    base,
    pool,
    tenantsApp,
    tenants,
    valuations,
    jobs,
    usage,
    bootstrapKey: generatedKey!,
    sales,
    tenantData,
    async close() {
      tenantData.tenants.close();
      for (const d of tenantData.others) d.close();
      await worker.stop();
      await recorder.close();
      usage.close();
      tenants.close();
      valuations.close();
      jobs.close();
      modelClient.close?.();
      await Promise.all(servers.map((s) => s.shutdown(1000)));
      await models.close();
      await tenantsApp.close();
      await pool.end();
      await db.drop();
    },
  };
}
