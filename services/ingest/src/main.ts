import { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import {
  createClient,
  createPgPool,
  createServiceBase,
  kubeReader,
  loadConfig,
  pollEvery,
  serveGrpc,
  vars,
  z,
  tenantDataService,
} from "@valora/kit";
import { createIngest, driftAnnouncer } from "./app.js";
import { schemaOf, type PipelineContractSpec } from "./contract.js";
import { INGEST_TENANT_TABLES } from "./store.js";

export const IngestEnv = z.object({
  DATABASE_URL: vars.url(),
  GRPC_PORT: vars.port(9095),
  HOST: vars.host("0.0.0.0"),
  METRICS_PORT: vars.port(9464),
  LOG_LEVEL: vars.logLevel(),
  POD_NAMESPACE: z.string().min(1).default("default"),
  KUBE_API_URL: vars.url().optional(),
  CATALOG_POLL_MS: vars.int(5000, 100),
  /** model.drift webhooks. */
  TENANTS_ADDR: z.string().min(1).optional(),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});

/**
 * `valora serve ingest`: valora.v1.IngestService with the contracts of the namespace's
 * AssetPipelines (read from the Kubernetes API, polled). Ready once they are read.
 */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const c = loadConfig(IngestEnv, env);
  const base = createServiceBase({
    name: "ingest",
    logLevel: c.LOG_LEVEL,
    drainDelayMs: c.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const log = base.logger;
  const pool = createPgPool({
    url: c.DATABASE_URL,
    applicationName: "valora-ingest",
    logger: log,
    degraded: base.degraded,
  });
  const kube = kubeReader(c.KUBE_API_URL ? { url: c.KUBE_API_URL } : {});
  let specs: PipelineContractSpec[] = [];
  let loaded = false;
  const tenants = c.TENANTS_ADDR
    ? createClient(TenantService, c.TENANTS_ADDR, { timeoutMs: 10_000 })
    : undefined;
  const app = createIngest(base, {
    pool,
    schema: (assetClass) => {
      const spec = specs.find((s) => s.assetClass === assetClass);
      return spec ? schemaOf(spec) : undefined;
    },
    classOfModel: (model) => specs.find((s) => s.model.name === model)?.assetClass,
    ...(tenants ? { onDrift: driftAnnouncer(pool, (e) => tenants.publish(e), log) } : {}),
  });
  await app.start();
  const poller = pollEvery(
    async () => {
      specs = (
        await kube.list<{ spec: PipelineContractSpec }>(
          `/apis/valora.dev/v1alpha1/namespaces/${c.POD_NAMESPACE}/assetpipelines`,
        )
      ).map((p) => p.spec);
      loaded = true;
    },
    {
      intervalMs: c.CATALOG_POLL_MS,
      logger: log,
      message: "could not read AssetPipelines; keeping the last contracts",
    },
  );
  base.health.addCheck("contracts", async () => loaded);
  const { port, ops } = await serveGrpc(base, {
    services: [app.service, tenantDataService({ pool, tables: INGEST_TENANT_TABLES })],
    host: c.HOST,
    grpcPort: c.GRPC_PORT,
    metricsPort: c.METRICS_PORT,
  });
  base.shutdown.register("contracts", () => poller.stop());
  base.shutdown.register("clients", async () => {
    tenants?.close();
    await pool.end();
  });
  base.shutdown.register("ops", () => ops.close());
  base.shutdown.installSignalHandlers();
  log.info({ port, namespace: c.POD_NAMESPACE }, "ingest service listening");
}
