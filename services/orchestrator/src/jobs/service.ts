import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { stringify } from "csv-stringify/sync";
import { JobService, JobStatus } from "@valora/proto/valora/v1/jobs_pb";
import { ValoraError, implement, type CallContext, type InputField, type ServiceRegistration } from "@valora/kit";
import { parseJobCsv } from "./csv-input.js";
import { TERMINAL, type JobRow, type JobStore } from "./store.js";

const STATUS: Record<JobRow["status"], JobStatus> = { queued: JobStatus.QUEUED, running: JobStatus.RUNNING, succeeded: JobStatus.SUCCEEDED, failed: JobStatus.FAILED, cancelled: JobStatus.CANCELLED };

export const RESULT_COLUMNS = ["row", "value", "interval_low", "interval_high", "coverage", "confidence", "model_version", "route", "error_code", "error"];

export function jobMessage(j: JobRow) {
  return {
    id: j.id,
    assetClass: j.assetClass,
    status: STATUS[j.status],
    totalRows: BigInt(j.totalRows),
    doneRows: BigInt(j.doneRows),
    failedRows: BigInt(j.failedRows),
    invalidRows: BigInt(j.invalidRows),
    createdAt: timestampFromDate(j.createdAt),
    ...(j.startedAt ? { startedAt: timestampFromDate(j.startedAt) } : {}),
    ...(j.finishedAt ? { finishedAt: timestampFromDate(j.finishedAt) } : {}),
    error: j.error,
  };
}

export interface JobServiceDeps {
  store: JobStore;
  fields: (assetClass: string) => InputField[] | undefined;
  maxRows?: number;
  watchIntervalMs?: number;
}

const tenantOf = (call: CallContext): string => {
  const t = call.metadata.get("x-tenant-id")[0];
  if (!t) throw new ValoraError("UNAUTHENTICATED", "no tenant on the call");
  return String(t);
};

/** valora.v1.JobService: bulk CSV jobs, tenant-scoped (other tenants' jobs are not found). */
export function jobService(d: JobServiceDeps): ServiceRegistration {
  return implement(JobService, {
    async createJob(req, call) {
      const tenant = tenantOf(call);
      const fields = d.fields(req.assetClass);
      if (!fields) throw new ValoraError("NOT_FOUND", `unknown asset class "${req.assetClass}"`, { details: [{ field: "assetClass", description: "no AssetPipeline with this name" }] });
      const { rows } = parseJobCsv(Buffer.from(req.csv), fields, d.maxRows ?? 100_000);
      const { job } = await d.store.create(tenant, req.assetClass, rows, req.idempotencyKey || undefined);
      return { job: jobMessage(job) };
    },
    async getJob(req, call) {
      return { job: jobMessage(await d.store.get(tenantOf(call), req.id)) };
    },
    async cancelJob(req, call) {
      return { job: jobMessage(await d.store.cancel(tenantOf(call), req.id)) };
    },
    async *watchJob(req, call) {
      const tenant = tenantOf(call);
      let last = "";
      for (;;) {
        const job = await d.store.get(tenant, req.id);
        const key = `${job.status}:${job.doneRows}:${job.failedRows}`;
        if (key !== last) {
          last = key;
          yield { job: jobMessage(job) };
        }
        if (TERMINAL.includes(job.status) || call.signal.aborted) return;
        await new Promise((r) => setTimeout(r, d.watchIntervalMs ?? 500));
      }
    },
    async *getJobResults(req, call) {
      const job = await d.store.get(tenantOf(call), req.id);
      yield { csv: Buffer.from(stringify([RESULT_COLUMNS])) };
      let after = 0;
      for (;;) {
        const page = await d.store.results(job.id, after, 2000);
        if (page.length === 0 || call.signal.aborted) return;
        after = page.at(-1)!.rowNo;
        const lines = page.map((p) => {
          const r = p.result;
          if (!r) return [p.rowNo, "", "", "", "", "", "", "", "PENDING", "not valued yet"];
          if (r.error) return [p.rowNo, "", "", "", "", "", "", "", r.error.code, r.error.message];
          return [p.rowNo, r.value, r.low, r.high, r.coverage, r.confidence, r.modelVersion, r.route, "", ""];
        });
        yield { csv: Buffer.from(stringify(lines)) };
      }
    },
  });
}
