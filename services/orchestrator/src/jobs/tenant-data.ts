import type { Pool, TenantDataOptions } from "@valora/kit";
import { JOB_TENANT_TABLES } from "./migrations.js";
import type { ResultsObjectStore } from "./results.js";

/**
 * The jobs' share of a tenant's export and erasure: its jobs, rows (results included) and chunks,
 * and the results files moved to object storage, removed before the rows that point at them.
 */
export function jobTenantData(pool: Pool, objects?: ResultsObjectStore): TenantDataOptions {
  return {
    pool,
    tables: JOB_TENANT_TABLES,
    purgeObjects: async (tenantId) => {
      const { rows } = await pool.query<{ results_url: string }>(
        "SELECT results_url FROM jobs WHERE tenant_id = $1 AND results_url IS NOT NULL",
        [tenantId],
      );
      if (rows.length > 0 && !objects)
        throw new Error("results in object storage but no object store is configured to remove them");
      for (const r of rows) await objects!.remove(r.results_url);
      return [{ name: "jobs.results_objects", rows: rows.length }];
    },
  };
}
