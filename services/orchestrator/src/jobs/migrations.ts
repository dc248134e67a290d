import { migrate, type Migration, type Pool, type TenantTable } from "@valora/kit";

export const JOB_MIGRATIONS: Migration[] = [
  {
    id: "001_jobs",
    sql: `
      CREATE TABLE jobs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        asset_class text NOT NULL,
        status text NOT NULL DEFAULT 'queued',
        idempotency_key text,
        total_rows int NOT NULL,
        done_rows int NOT NULL DEFAULT 0,
        failed_rows int NOT NULL DEFAULT 0,
        invalid_rows int NOT NULL DEFAULT 0,
        error text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        UNIQUE (tenant_id, idempotency_key));
      CREATE INDEX jobs_active ON jobs (created_at) WHERE status IN ('queued', 'running');
      CREATE TABLE job_rows (
        job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        row_no int NOT NULL,
        attributes jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        result jsonb,
        PRIMARY KEY (job_id, row_no));
      CREATE TABLE job_chunks (
        job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        chunk_no int NOT NULL,
        first_row int NOT NULL,
        last_row int NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        worker text,
        lease_until timestamptz,
        attempts int NOT NULL DEFAULT 0,
        PRIMARY KEY (job_id, chunk_no));
      CREATE INDEX job_chunks_claimable ON job_chunks (job_id, chunk_no) WHERE status <> 'done';`,
  },
  {
    // A transactional outbox for usage: a chunk's valued rows are noted when it commits and
    // metered afterwards, exactly once per job and chunk (chunks done before this have none).
    id: "002_chunk_usage",
    sql: `
      ALTER TABLE job_chunks ADD COLUMN usage_units int, ADD COLUMN metered_at timestamptz;
      CREATE INDEX job_chunks_unmetered ON job_chunks (job_id, chunk_no) WHERE usage_units > 0 AND metered_at IS NULL;`,
  },
  {
    // Results of large jobs move to object storage once the job ends; the column says where.
    id: "003_results_url",
    sql: `ALTER TABLE jobs ADD COLUMN results_url text;`,
  },
  {
    // Held tenants (suspended): none of their chunks is claimed until released.
    id: "004_tenant_holds",
    sql: `CREATE TABLE job_tenant_holds (tenant_id text PRIMARY KEY, held_at timestamptz NOT NULL DEFAULT now());`,
  },
  {
    // A tenant's jobs listed newest first, a page at a time (the console's list of past jobs).
    id: "005_jobs_by_tenant",
    sql: `CREATE INDEX jobs_by_tenant ON jobs (tenant_id, created_at DESC, id DESC);`,
  },
  {
    // The W3C traceparent of the request that submitted the job: each chunk's span links to it.
    id: "006_jobs_traceparent",
    sql: `ALTER TABLE jobs ADD COLUMN traceparent text;`,
  },
];

/** What the jobs hold of a tenant: jobs, their rows and results, chunks, a hold (exports, erasure). */
export const JOB_TENANT_TABLES: TenantTable[] = [
  {
    name: "jobs.job_rows",
    select:
      "SELECT r.job_id, r.row_no, r.attributes, r.status, r.result FROM job_rows r JOIN jobs j ON j.id = r.job_id WHERE j.tenant_id = $1 ORDER BY r.job_id, r.row_no",
    delete: "DELETE FROM job_rows r USING jobs j WHERE j.id = r.job_id AND j.tenant_id = $1",
  },
  {
    name: "jobs.job_chunks",
    delete: "DELETE FROM job_chunks c USING jobs j WHERE j.id = c.job_id AND j.tenant_id = $1",
  },
  {
    name: "jobs.jobs",
    select: "SELECT * FROM jobs WHERE tenant_id = $1 ORDER BY created_at",
    delete: "DELETE FROM jobs WHERE tenant_id = $1",
  },
  { name: "jobs.job_tenant_holds", delete: "DELETE FROM job_tenant_holds WHERE tenant_id = $1" },
];

export async function migrateJobs(pool: Pool): Promise<string[]> {
  return migrate(pool, "jobs", JOB_MIGRATIONS);
}
