import { ValoraError, withTransaction, type Pool } from "@valora/kit";

export type JobStatusName = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface JobRow {
  id: string;
  tenantId: string;
  assetClass: string;
  status: JobStatusName;
  totalRows: number;
  doneRows: number;
  failedRows: number;
  invalidRows: number;
  error: string;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** s3://bucket/key of the results once exported; null while they are in Postgres. */
  resultsUrl: string | null;
}

export interface RowResult {
  value?: number;
  low?: number;
  high?: number;
  coverage?: number;
  confidence?: number;
  modelVersion?: string;
  route?: string;
  /** What the answer warned about: the attribute and the code (OUTSIDE_TRAINING_RANGE, ...). */
  warnings?: { field: string; code: string }[];
  error?: { code: string; message: string };
}

/** Valued rows of one chunk, to meter (`job:<job id>:<chunk no>` counts once). */
export interface ChunkUsage {
  idempotencyKey: string;
  tenantId: string;
  assetClass: string;
  units: number;
}

export interface ClaimedChunk {
  jobId: string;
  tenantId: string;
  assetClass: string;
  chunkNo: number;
  rows: { rowNo: number; attributes: Record<string, string> }[];
  /** The submitting request's trace (W3C traceparent), when it was recorded. */
  traceparent?: string;
}

interface JobDb {
  id: string;
  tenant_id: string;
  asset_class: string;
  status: JobStatusName;
  total_rows: number;
  done_rows: number;
  failed_rows: number;
  invalid_rows: number;
  error: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  results_url: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const jobOf = (r: JobDb): JobRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  assetClass: r.asset_class,
  status: r.status,
  totalRows: r.total_rows,
  doneRows: r.done_rows,
  failedRows: r.failed_rows,
  invalidRows: r.invalid_rows,
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  resultsUrl: r.results_url ?? null,
});
const notFound = (id: string) => new ValoraError("NOT_FOUND", `job "${id}" not found`);

export const TERMINAL: readonly JobStatusName[] = ["succeeded", "failed", "cancelled"];

/**
 * Jobs in Postgres: a job, its rows (input attributes, then the result, written once), and its
 * chunks — the unit workers claim with FOR UPDATE SKIP LOCKED under a lease.
 */
export class JobStore {
  constructor(
    private readonly pool: Pool,
    private readonly chunkSize = 100,
  ) {}

  /** Creates a job with its rows and chunks in one transaction; the same idempotency key returns the first job. */
  async create(
    tenantId: string,
    assetClass: string,
    rows: Record<string, string>[],
    idempotencyKey?: string,
    traceparent?: string,
  ): Promise<{ job: JobRow; created: boolean }> {
    return withTransaction(this.pool, async (c) => {
      const inserted = await c.query<JobDb>(
        `INSERT INTO jobs (tenant_id, asset_class, total_rows, idempotency_key, traceparent) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING *`,
        [tenantId, assetClass, rows.length, idempotencyKey ?? null, traceparent ?? null],
      );
      if (inserted.rows.length === 0) {
        const existing = await c.query<JobDb>(
          "SELECT * FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2",
          [tenantId, idempotencyKey],
        );
        return { job: jobOf(existing.rows[0]!), created: false };
      }
      const job = jobOf(inserted.rows[0]!);
      for (let i = 0; i < rows.length; i += 2000) {
        const slice = rows.slice(i, i + 2000);
        await c.query(
          `INSERT INTO job_rows (job_id, row_no, attributes) SELECT $1, t.n, t.a FROM jsonb_to_recordset($2::jsonb) AS t(n int, a jsonb)`,
          [job.id, JSON.stringify(slice.map((a, k) => ({ n: i + k + 1, a })))],
        );
      }
      const chunks = Math.ceil(rows.length / this.chunkSize);
      await c.query(
        `INSERT INTO job_chunks (job_id, chunk_no, first_row, last_row)
         SELECT $1, g, g * $2 + 1, least((g + 1) * $2, $3) FROM generate_series(0, $4 - 1) AS g`,
        [job.id, this.chunkSize, rows.length, chunks],
      );
      return { job, created: true };
    });
  }

  async get(tenantId: string, id: string): Promise<JobRow> {
    if (!UUID.test(id)) throw notFound(id);
    const { rows } = await this.pool.query<JobDb>("SELECT * FROM jobs WHERE id = $1 AND tenant_id = $2", [
      id,
      tenantId,
    ]);
    if (!rows[0]) throw notFound(id);
    return jobOf(rows[0]);
  }

  /**
   * A tenant's jobs newest first, `limit` at a time; `after` is the last job of the previous page
   * (keyset paging: a page never repeats or skips a job while new ones arrive).
   */
  async list(
    tenantId: string,
    o: { limit: number; after?: { createdAt: Date; id: string }; assetClass?: string },
  ): Promise<JobRow[]> {
    const { rows } = await this.pool.query<JobDb>(
      `SELECT * FROM jobs WHERE tenant_id = $1
          AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))
          AND ($4::text IS NULL OR asset_class = $4)
        ORDER BY created_at DESC, id DESC LIMIT $5`,
      [tenantId, o.after?.createdAt ?? null, o.after?.id ?? null, o.assetClass ?? null, o.limit],
    );
    return rows.map(jobOf);
  }

  /** Holds (or releases) a tenant's jobs: held tenants' chunks are not claimed. Returns its unfinished jobs. */
  async hold(tenantId: string, held: boolean): Promise<number> {
    await this.pool.query(
      held
        ? "INSERT INTO job_tenant_holds (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING"
        : "DELETE FROM job_tenant_holds WHERE tenant_id = $1",
      [tenantId],
    );
    const { rows } = await this.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM jobs WHERE tenant_id = $1 AND status IN ('queued', 'running')",
      [tenantId],
    );
    return rows[0]!.n;
  }

  async cancel(tenantId: string, id: string): Promise<JobRow> {
    if (!UUID.test(id)) throw notFound(id);
    const { rows } = await this.pool.query<JobDb>(
      `UPDATE jobs SET status = CASE WHEN status IN ('queued', 'running') THEN 'cancelled' ELSE status END,
              finished_at = CASE WHEN status IN ('queued', 'running') THEN now() ELSE finished_at END
        WHERE id = $1 AND tenant_id = $2 RETURNING *`,
      [id, tenantId],
    );
    if (!rows[0]) throw notFound(id);
    return jobOf(rows[0]);
  }

  /** Results in row order, a page at a time (row numbers after `afterRow`). */
  async results(
    jobId: string,
    afterRow: number,
    limit: number,
  ): Promise<{ rowNo: number; status: string; result: RowResult | null }[]> {
    const { rows } = await this.pool.query<{ row_no: number; status: string; result: RowResult | null }>(
      "SELECT row_no, status, result FROM job_rows WHERE job_id = $1 AND row_no > $2 ORDER BY row_no LIMIT $3",
      [jobId, afterRow, limit],
    );
    return rows.map((r) => ({ rowNo: r.row_no, status: r.status, result: r.result }));
  }

  /**
   * Claims the oldest runnable chunk: pending, or running with an expired lease (its worker died).
   * The row lock with SKIP LOCKED lets any number of workers claim concurrently without waiting.
   */
  async claim(worker: string, leaseSeconds: number): Promise<ClaimedChunk | undefined> {
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{
        job_id: string;
        chunk_no: number;
        first_row: number;
        last_row: number;
        tenant_id: string;
        asset_class: string;
        traceparent: string | null;
      }>(
        `SELECT c.job_id, c.chunk_no, c.first_row, c.last_row, j.tenant_id, j.asset_class, j.traceparent
           FROM job_chunks c JOIN jobs j ON j.id = c.job_id
          WHERE j.status IN ('queued', 'running')
            AND (c.status = 'pending' OR (c.status = 'running' AND c.lease_until < now()))
            AND NOT EXISTS (SELECT 1 FROM job_tenant_holds h WHERE h.tenant_id = j.tenant_id)
          ORDER BY j.created_at, c.chunk_no
          LIMIT 1 FOR UPDATE OF c SKIP LOCKED`,
      );
      const chunk = rows[0];
      if (!chunk) return undefined;
      await c.query(
        `UPDATE job_chunks SET status = 'running', worker = $3, lease_until = now() + make_interval(secs => $4), attempts = attempts + 1 WHERE job_id = $1 AND chunk_no = $2`,
        [chunk.job_id, chunk.chunk_no, worker, leaseSeconds],
      );
      await c.query(
        `UPDATE jobs SET status = 'running', started_at = coalesce(started_at, now()) WHERE id = $1 AND status = 'queued'`,
        [chunk.job_id],
      );
      // Rows already valued by an earlier attempt keep their result and are not valued again.
      const pending = await c.query<{ row_no: number; attributes: Record<string, string> }>(
        `SELECT row_no, attributes FROM job_rows WHERE job_id = $1 AND row_no BETWEEN $2 AND $3 AND status = 'pending' ORDER BY row_no`,
        [chunk.job_id, chunk.first_row, chunk.last_row],
      );
      return {
        jobId: chunk.job_id,
        tenantId: chunk.tenant_id,
        assetClass: chunk.asset_class,
        chunkNo: chunk.chunk_no,
        rows: pending.rows.map((r) => ({ rowNo: r.row_no, attributes: r.attributes })),
        ...(chunk.traceparent ? { traceparent: chunk.traceparent } : {}),
      };
    });
  }

  /**
   * Records a chunk's results once: rows are written only while still pending, counters grow by
   * what was written, and the chunk completes only for the worker that holds it. A worker whose
   * lease was taken over writes nothing twice. Returns the job when this completed it.
   */
  /**
   * Meters done chunks not metered yet: hands up to `limit` of them to `record` (keyed by job and
   * chunk), then marks them metered. No lock is held while `record` runs (with one embedded
   * connection the usage service needs it): two meterers may send the same chunks, and a crash
   * before the mark sends them again — the keys make each count once.
   */
  async meterChunks(record: (usage: ChunkUsage[]) => Promise<void>, limit = 500): Promise<number> {
    const { rows } = await this.pool.query<{
      job_id: string;
      chunk_no: number;
      usage_units: number;
      tenant_id: string;
      asset_class: string;
    }>(
      `SELECT c.job_id, c.chunk_no, c.usage_units, j.tenant_id, j.asset_class
         FROM job_chunks c JOIN jobs j ON j.id = c.job_id
        WHERE c.usage_units > 0 AND c.metered_at IS NULL
        ORDER BY c.job_id, c.chunk_no LIMIT $1`,
      [limit],
    );
    if (rows.length === 0) return 0;
    await record(
      rows.map((r) => ({
        idempotencyKey: `job:${r.job_id}:${r.chunk_no}`,
        tenantId: r.tenant_id,
        assetClass: r.asset_class,
        units: r.usage_units,
      })),
    );
    await this.pool.query(
      `UPDATE job_chunks c SET metered_at = now() FROM unnest($1::uuid[], $2::int[]) AS t(job_id, chunk_no) WHERE c.job_id = t.job_id AND c.chunk_no = t.chunk_no`,
      [rows.map((r) => r.job_id), rows.map((r) => r.chunk_no)],
    );
    return rows.length;
  }

  async complete(
    worker: string,
    chunk: ClaimedChunk,
    results: Map<number, RowResult>,
  ): Promise<{ finished?: JobRow }> {
    return withTransaction(this.pool, async (c) => {
      // Completions of one job take turns, so the last chunk always sees the others done.
      await c.query("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", [chunk.jobId]);
      const held = await c.query(
        `SELECT 1 FROM job_chunks WHERE job_id = $1 AND chunk_no = $2 AND status = 'running' AND worker = $3 FOR UPDATE`,
        [chunk.jobId, chunk.chunkNo, worker],
      );
      if (held.rowCount === 0) return {};
      const payload = [...results.entries()].map(([n, r]) => ({
        n,
        r,
        ok: r.error ? 0 : 1,
        invalid: r.error?.code === "INVALID_ARGUMENT" ? 1 : 0,
      }));
      const numbers = payload.map((p) => p.n);
      // The row-number range lets the planner read only this chunk's rows through the primary key;
      // without it a bitmap scan over all the job's rows ran per chunk (a 10,000-row job: 100x).
      const written = await c.query<{ ok: number; invalid: number }>(
        `UPDATE job_rows AS r SET status = CASE WHEN t.ok = 1 THEN 'done' ELSE 'failed' END, result = t.r
           FROM jsonb_to_recordset($2::jsonb) AS t(n int, r jsonb, ok int, invalid int)
          WHERE r.job_id = $1 AND r.row_no BETWEEN $3 AND $4 AND r.row_no = t.n AND r.status = 'pending'
          RETURNING t.ok, t.invalid`,
        [
          chunk.jobId,
          JSON.stringify(payload),
          numbers.length ? Math.min(...numbers) : 0,
          numbers.length ? Math.max(...numbers) : -1,
        ],
      );
      const ok = written.rows.filter((w) => w.ok === 1).length;
      const invalid = written.rows.filter((w) => w.invalid === 1).length;
      await c.query(
        `UPDATE job_chunks SET status = 'done', lease_until = NULL, usage_units = $3 WHERE job_id = $1 AND chunk_no = $2`,
        [chunk.jobId, chunk.chunkNo, ok],
      );
      const open = await c.query<{ open: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM job_chunks WHERE job_id = $1 AND status <> 'done') AS open`,
        [chunk.jobId],
      );
      const last = !open.rows[0]!.open;
      const { rows } = await c.query<JobDb>(
        `UPDATE jobs SET done_rows = done_rows + $2, failed_rows = failed_rows + $3, invalid_rows = invalid_rows + $4,
                status = CASE WHEN status = 'running' AND $5 THEN 'succeeded' ELSE status END,
                finished_at = CASE WHEN status = 'running' AND $5 THEN now() ELSE finished_at END
          WHERE id = $1 RETURNING *`,
        [chunk.jobId, ok, written.rows.length - ok, invalid, last],
      );
      const job = rows[0] ? jobOf(rows[0]) : undefined;
      return job?.status === "succeeded" ? { finished: job } : {};
    });
  }

  /** Deletes jobs that ended more than `days` ago (rows and chunks go with them). */
  /**
   * Deletes jobs that ended more than `days` ago; their exported results objects are removed
   * first (a failure there keeps the job, to be retried at the next purge).
   */
  async purge(days: number, removeObject?: (url: string) => Promise<void>): Promise<number> {
    if (removeObject) {
      const { rows } = await this.pool.query<{ id: string; results_url: string }>(
        `SELECT id, results_url FROM jobs WHERE finished_at < now() - make_interval(days => $1) AND results_url IS NOT NULL`,
        [days],
      );
      for (const r of rows) await removeObject(r.results_url);
    }
    const res = await this.pool.query(
      `DELETE FROM jobs WHERE finished_at < now() - make_interval(days => $1)`,
      [days],
    );
    return res.rowCount ?? 0;
  }

  /** Ended jobs of at least `minRows` rows whose results are still in Postgres. */
  async unexported(minRows: number, limit = 10): Promise<JobRow[]> {
    const { rows } = await this.pool.query<JobDb>(
      `SELECT * FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled') AND results_url IS NULL AND total_rows >= $1 ORDER BY finished_at LIMIT $2`,
      [minRows, limit],
    );
    return rows.map(jobOf);
  }

  /**
   * Records where a job's results now live and drops its rows from Postgres, in one transaction
   * (the object is written first: a crash before this re-exports the same object).
   */
  async markExported(jobId: string, url: string): Promise<boolean> {
    return withTransaction(this.pool, async (c) => {
      const res = await c.query(
        `UPDATE jobs SET results_url = $2 WHERE id = $1 AND results_url IS NULL AND status IN ('succeeded', 'failed', 'cancelled')`,
        [jobId, url],
      );
      if (res.rowCount === 0) return false;
      await c.query(`DELETE FROM job_rows WHERE job_id = $1`, [jobId]);
      return true;
    });
  }
}
