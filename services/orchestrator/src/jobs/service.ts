import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { JobService, JobStatus } from "@valora/proto/valora/v1/jobs_pb";
import {
  ValoraError,
  implement,
  type CallContext,
  type InputField,
  type ServiceRegistration,
  currentTraceparent,
} from "@valora/kit";
import { parseJobCsv } from "./csv-input.js";
import { TERMINAL, type JobRow, type JobStore } from "./store.js";
import { jobResults, type ResultsObjectStore } from "./results.js";

const STATUS: Record<JobRow["status"], JobStatus> = {
  queued: JobStatus.QUEUED,
  running: JobStatus.RUNNING,
  succeeded: JobStatus.SUCCEEDED,
  failed: JobStatus.FAILED,
  cancelled: JobStatus.CANCELLED,
};

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
  /** Where exported results are read from (jobs whose results moved to object storage). */
  objects?: ResultsObjectStore;
  maxRows?: number;
  watchIntervalMs?: number;
  /** A job was created (workers in this process start on it at once instead of at their next poll). */
  onCreated?: () => void;
}

const tenantOf = (call: CallContext): string => {
  const t = call.metadata.get("x-tenant-id")[0];
  if (!t) throw new ValoraError("UNAUTHENTICATED", "no tenant on the call");
  return String(t);
};

/** Pure: the position a page token names (the last job of the previous page). */
function pageAfter(token: string): { createdAt: Date; id: string } {
  const [at, id] = Buffer.from(token, "base64url").toString().split("|");
  const createdAt = new Date(at ?? "");
  if (!id || Number.isNaN(createdAt.getTime()) || !/^[0-9a-f-]{36}$/i.test(id))
    throw new ValoraError("INVALID_ARGUMENT", "page token is not one this service gave", {
      details: [{ field: "pageToken", description: "pass the nextPageToken of a previous page" }],
    });
  return { createdAt, id };
}

/** valora.v1.JobService: bulk CSV jobs, tenant-scoped (other tenants' jobs are not found). */
export function jobService(d: JobServiceDeps): ServiceRegistration {
  return implement(JobService, {
    async createJob(req, call) {
      const tenant = tenantOf(call);
      const fields = d.fields(req.assetClass);
      if (!fields)
        throw new ValoraError("NOT_FOUND", `unknown asset class "${req.assetClass}"`, {
          details: [{ field: "assetClass", description: "no AssetPipeline with this name" }],
        });
      const { rows } = parseJobCsv(Buffer.from(req.csv), fields, d.maxRows ?? 100_000);
      const { job } = await d.store.create(
        tenant,
        req.assetClass,
        rows,
        req.idempotencyKey || undefined,
        currentTraceparent(),
      );
      d.onCreated?.();
      return { job: jobMessage(job) };
    },
    async getJob(req, call) {
      return { job: jobMessage(await d.store.get(tenantOf(call), req.id)) };
    },
    async listJobs(req, call) {
      const limit = req.pageSize <= 0 ? 20 : Math.min(req.pageSize, 100);
      const after = req.pageToken ? pageAfter(req.pageToken) : undefined;
      const jobs = await d.store.list(tenantOf(call), {
        limit: limit + 1,
        ...(after ? { after } : {}),
        ...(req.assetClass ? { assetClass: req.assetClass } : {}),
      });
      const page = jobs.slice(0, limit);
      const last = page.at(-1);
      return {
        jobs: page.map(jobMessage),
        nextPageToken:
          jobs.length > limit && last
            ? Buffer.from(`${last.createdAt.toISOString()}|${last.id}`).toString("base64url")
            : "",
      };
    },
    async cancelJob(req, call) {
      return { job: jobMessage(await d.store.cancel(tenantOf(call), req.id)) };
    },
    async holdTenant(req) {
      if (!req.tenantId)
        throw new ValoraError("INVALID_ARGUMENT", "tenant_id required", {
          details: [{ field: "tenant_id", description: "the tenant to hold or release" }],
        });
      const jobs = await d.store.hold(req.tenantId, req.held);
      if (!req.held) d.onCreated?.(); // released chunks are work for the workers at once
      return { jobs };
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
      for await (const csv of jobResults(d.store, d.objects, job, call.signal)) yield { csv };
    },
  });
}
