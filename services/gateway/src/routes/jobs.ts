import { Readable } from "node:stream";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { JobStatus, type Job, type JobService } from "@valora/proto/valora/v1/jobs_pb";
import { ValoraError, okEnvelope, type Client, type PlanCatalog } from "@valora/kit";
import { ROLE_SETS } from "../auth.js";
import { iso } from "../valuation-json.js";
import { reserveQuota, type QuotaCounter } from "../quota.js";
import { ErrorEnvelope, IdParam, envelopeOf } from "../schemas.js";
import { checkAssetClass, checkPlanJob } from "../plans.js";

const STATUS_NAMES: Record<JobStatus, string> = {
  [JobStatus.UNSPECIFIED]: "unknown",
  [JobStatus.QUEUED]: "queued",
  [JobStatus.RUNNING]: "running",
  [JobStatus.SUCCEEDED]: "succeeded",
  [JobStatus.FAILED]: "failed",
  [JobStatus.CANCELLED]: "cancelled",
};
const TERMINAL = new Set([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]);
const ms = (t: Timestamp | undefined) => (t ? timestampDate(t).getTime() : undefined);

/** Pure: the REST shape of a job, with its timings. */
export function jobJson(j: Job) {
  const created = ms(j.createdAt);
  const started = ms(j.startedAt);
  const finished = ms(j.finishedAt);
  return {
    id: j.id,
    assetClass: j.assetClass,
    status: STATUS_NAMES[j.status],
    totalRows: Number(j.totalRows),
    doneRows: Number(j.doneRows),
    failedRows: Number(j.failedRows),
    invalidRows: Number(j.invalidRows),
    createdAt: iso(j.createdAt),
    startedAt: iso(j.startedAt),
    finishedAt: iso(j.finishedAt),
    timings: {
      queuedMs: started !== undefined && created !== undefined ? started - created : null,
      runningMs: started !== undefined ? (finished ?? Date.now()) - started : null,
    },
    error: j.error || null,
  };
}

const Job = z.object({
  id: z.string(),
  assetClass: z.string(),
  status: z.string(),
  totalRows: z.number(),
  doneRows: z.number(),
  failedRows: z.number(),
  invalidRows: z.number(),
  createdAt: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  timings: z.object({ queuedMs: z.number().nullable(), runningMs: z.number().nullable() }),
  error: z.string().nullable(),
});

export interface JobRoutesOptions {
  jobs: Client<typeof JobService>;
  quota: QuotaCounter;
  plans: PlanCatalog;
  timeoutMs: number;
  maxBytes: number;
}

/** Bulk CSV jobs: submit, status, server-sent progress, results as CSV, cancel. Tenant-scoped. */
export const jobRoutes: FastifyPluginAsync<JobRoutesOptions> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.addContentTypeParser(
    ["text/csv", "application/csv"],
    { parseAs: "buffer", bodyLimit: o.maxBytes },
    (_req, body, done) => done(null, body),
  );
  const meta = (req: FastifyRequest) => ({ "x-tenant-id": req.principal!.tenantId, "x-request-id": req.id });

  app.post(
    "/v1/jobs",
    {
      bodyLimit: o.maxBytes,
      config: { roles: ROLE_SETS.value },
      schema: {
        tags: ["jobs"],
        summary: "Submit a CSV of assets to value (header row = input fields); answers 202 with the job",
        querystring: z.strictObject({ assetClass: z.string().min(1).max(100) }),
        headers: z.object({ "idempotency-key": z.string().min(1).max(200).optional() }),
        consumes: ["text/csv"],
        response: { 202: envelopeOf(Job), "4xx": ErrorEnvelope },
      },
    },
    async (req, reply) => {
      const p = req.principal!;
      checkAssetClass(o.plans, p, req.query.assetClass);
      const csv = req.body as Buffer | undefined;
      if (!Buffer.isBuffer(csv) || csv.length === 0)
        throw new ValoraError("INVALID_ARGUMENT", "send the CSV as the body with content-type text/csv", {
          details: [{ field: "body", description: "text/csv" }],
        });
      // Reserve the plan quota for every data row before any work (lines after the header).
      let rows = 0;
      for (let i = csv.indexOf(10); i !== -1; i = csv.indexOf(10, i + 1)) rows++;
      checkPlanJob(o.plans, p, rows);
      await reserveQuota(o.quota, o.plans, p, Math.max(1, rows));
      const idempotencyKey = req.headers["idempotency-key"];
      const { job } = await o.jobs.createJob(
        {
          assetClass: req.query.assetClass,
          csv,
          idempotencyKey: typeof idempotencyKey === "string" ? idempotencyKey : "",
        },
        { timeoutMs: o.timeoutMs, metadata: meta(req) },
      );
      return reply
        .code(202)
        .header("location", `/v1/jobs/${job!.id}`)
        .send(okEnvelope(jobJson(job!), req.id));
    },
  );

  app.get(
    "/v1/jobs",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["jobs"],
        summary: "The tenant's jobs, newest first, a page at a time",
        querystring: z.strictObject({
          assetClass: z.string().min(1).max(100).optional(),
          pageSize: z.coerce.number().int().min(1).max(100).optional(),
          pageToken: z.string().max(200).optional(),
        }),
        response: {
          200: envelopeOf(z.object({ jobs: z.array(Job), nextPageToken: z.string().nullable() })),
          "4xx": ErrorEnvelope,
        },
      },
    },
    async (req) => {
      const res = await o.jobs.listJobs(
        {
          pageSize: req.query.pageSize ?? 20,
          pageToken: req.query.pageToken ?? "",
          assetClass: req.query.assetClass ?? "",
        },
        { timeoutMs: o.timeoutMs, metadata: meta(req) },
      );
      return okEnvelope({ jobs: res.jobs.map(jobJson), nextPageToken: res.nextPageToken || null }, req.id);
    },
  );

  app.get(
    "/v1/jobs/:id",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["jobs"],
        summary: "A job's status, progress and timings",
        params: IdParam,
        response: { 200: envelopeOf(Job), "4xx": ErrorEnvelope },
      },
    },
    async (req) =>
      okEnvelope(
        jobJson(
          (await o.jobs.getJob({ id: req.params.id }, { timeoutMs: o.timeoutMs, metadata: meta(req) })).job!,
        ),
        req.id,
      ),
  );

  app.delete(
    "/v1/jobs/:id",
    {
      config: { roles: ROLE_SETS.value },
      schema: {
        tags: ["jobs"],
        summary: "Cancel a job; rows already valued keep their results",
        params: IdParam,
        response: { 200: envelopeOf(Job), "4xx": ErrorEnvelope },
      },
    },
    async (req) =>
      okEnvelope(
        jobJson(
          (await o.jobs.cancelJob({ id: req.params.id }, { timeoutMs: o.timeoutMs, metadata: meta(req) }))
            .job!,
        ),
        req.id,
      ),
  );

  app.get(
    "/v1/jobs/:id/events",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["jobs"],
        summary: "Server-sent progress events until the job ends (event: progress, then done)",
        params: IdParam,
      },
    },
    async (req, reply) => {
      // Look the job up first, so an unknown id is a normal 404 envelope rather than a broken stream.
      await o.jobs.getJob({ id: req.params.id }, { timeoutMs: o.timeoutMs, metadata: meta(req) });
      const abort = new AbortController();
      req.raw.on("close", () => abort.abort());
      reply.hijack();
      reply.raw.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
        "x-request-id": req.id,
      });
      try {
        for await (const { job } of o.jobs.watchJob(
          { id: req.params.id },
          { timeoutMs: 24 * 3_600_000, metadata: meta(req), signal: abort.signal },
        )) {
          const terminal = TERMINAL.has(job!.status);
          reply.raw.write(
            `event: ${terminal ? "done" : "progress"}\ndata: ${JSON.stringify(jobJson(job!))}\n\n`,
          );
        }
      } catch (err) {
        if (!abort.signal.aborted)
          reply.raw.write(
            `event: error\ndata: ${JSON.stringify({ message: err instanceof Error ? err.message : "stream failed" })}\n\n`,
          );
      }
      reply.raw.end();
    },
  );

  app.get(
    "/v1/jobs/:id/results",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["jobs"],
        summary:
          "Results as CSV in input order: row, value, interval, confidence, model version, or the row's error",
        params: IdParam,
      },
    },
    async (req, reply) => {
      await o.jobs.getJob({ id: req.params.id }, { timeoutMs: o.timeoutMs, metadata: meta(req) });
      const abort = new AbortController();
      req.raw.on("close", () => abort.abort());
      const stream = o.jobs.getJobResults(
        { id: req.params.id },
        { timeoutMs: 3_600_000, metadata: meta(req), signal: abort.signal },
      );
      const body = Readable.from(
        (async function* () {
          for await (const chunk of stream) yield Buffer.from(chunk.csv);
        })(),
      );
      return reply
        .type("text/csv; charset=utf-8")
        .header("content-disposition", `attachment; filename="${req.params.id}.csv"`)
        .send(body);
    },
  );
};
