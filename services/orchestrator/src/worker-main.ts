import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import { createClient, createPgPool, createServiceBase, loadConfig, vars, z } from "@valora/kit";
import { JobStore, JobWorker, migrateJobs, valueRowsWith } from "./jobs/index.js";
import { jobRowUsage } from "./usage.js";
import { JobResultsEnv, jobResultsFrom } from "./jobs/results-config.js";

export const JobWorkerEnv = JobResultsEnv.extend({
  DATABASE_URL: vars.url(),
  ORCHESTRATOR_ADDR: z.string().min(1).default("orchestrator:9090"),
  /** valora.v1.UsageService; valued rows are not metered without it (logged at start). */
  USAGE_ADDR: z.string().min(1).optional(),
  LOG_LEVEL: vars.logLevel(),
  JOB_WORKER_CONCURRENCY: vars.int(2, 1),
  JOB_LEASE_SECONDS: vars.int(30, 1),
  JOB_RETENTION_DAYS: vars.int(30, 1),
});

/**
 * `valora serve job-worker`: bulk-job workers on their own (orchestrator pods run the same
 * JobWorker in-process); they value rows through the orchestrator's ValueBatch.
 */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const c = loadConfig(JobWorkerEnv, env);
  const base = createServiceBase({
    name: "job-worker",
    logLevel: c.LOG_LEVEL,
    exit: (code) => process.exit(code),
  });
  const pool = createPgPool({
    url: c.DATABASE_URL,
    applicationName: "valora-job-worker",
    logger: base.logger,
    degraded: base.degraded,
  });
  await migrateJobs(pool);
  const valuations = createClient(ValuationService, c.ORCHESTRATOR_ADDR, {
    timeoutMs: 60_000,
    registry: base.registry,
  });
  const usage = c.USAGE_ADDR
    ? createClient(UsageService, c.USAGE_ADDR, { timeoutMs: 10_000, registry: base.registry })
    : undefined;
  if (!usage) base.logger.warn("USAGE_ADDR not set: job rows are not metered");
  const results = jobResultsFrom(c);
  const worker = new JobWorker({
    store: new JobStore(pool),
    value: valueRowsWith((req, o) => valuations.valueBatch(req, o)),
    ...(usage ? { recordUsage: jobRowUsage((req) => usage.recordUsage(req)) } : {}),
    logger: base.logger,
    registry: base.registry,
    concurrency: c.JOB_WORKER_CONCURRENCY,
    leaseSeconds: c.JOB_LEASE_SECONDS,
    retentionDays: c.JOB_RETENTION_DAYS,
    ...(results ? { results } : {}),
  });
  worker.start();
  base.shutdown.register("worker", () => worker.stop());
  base.shutdown.register("clients", async () => {
    valuations.close();
    usage?.close();
  });
  base.shutdown.register("postgres", () => pool.end());
  base.shutdown.installSignalHandlers();
  base.logger.info({ worker: worker.id, concurrency: c.JOB_WORKER_CONCURRENCY }, "job worker started");
}
