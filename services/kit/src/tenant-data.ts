import { TenantDataService } from "@valora/proto/valora/v1/tenant_data_pb";
import { ValoraError } from "./errors.js";
import { implement, type ServiceRegistration } from "./grpc/server.js";
import { withTransaction, type Pool, type PoolClient } from "./pg.js";

/** One table's share of a tenant's data: how to read it for an export and how to delete it. */
export interface TenantTable {
  /** Section name in exports and counts, `<service>.<table>`. */
  name: string;
  /** A query of the tenant's rows ($1 = tenant id), or undefined to purge without exporting. */
  select?: string;
  /** Deletes the tenant's rows ($1 = tenant id), or undefined to export only. Purged in list order: children first. */
  delete?: string;
}

export interface TenantDataOptions {
  pool: Pool;
  tables: TenantTable[];
  /** Refuses a purge that must not run yet (the tenants service: not marked for erasure, or in its grace period). */
  guard?: (tenantId: string) => Promise<void>;
  /** Stored objects of the tenant outside the database (job results in S3), deleted before its rows. */
  purgeObjects?: (tenantId: string) => Promise<{ name: string; rows: number }[]>;
  /** Runs inside the purge's transaction after the tables (the tenants service records the erasure). */
  afterPurge?: (db: PoolClient, tenantId: string, counts: { name: string; rows: number }[]) => Promise<void>;
}

const TENANT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function checkTenant(id: string): string {
  if (!TENANT_ID.test(id))
    throw new ValoraError("INVALID_ARGUMENT", "tenant_id required", {
      details: [{ field: "tenant_id", description: "a tenant id" }],
    });
  return id;
}

/** A tenant's rows of every table, as NDJSON sections (one JSON object per line, as Postgres encodes the row). */
export async function exportTenantTables(
  pool: Pool,
  tables: TenantTable[],
  tenantId: string,
): Promise<{ name: string; ndjson: Buffer; rows: number }[]> {
  const out: { name: string; ndjson: Buffer; rows: number }[] = [];
  for (const t of tables) {
    if (!t.select) continue;
    const { rows } = await pool.query<{ row: string }>(
      `SELECT row_to_json(x)::text AS row FROM (${t.select}) x`,
      [checkTenant(tenantId)],
    );
    out.push({
      name: t.name,
      ndjson: Buffer.from(rows.map((r) => `${r.row}\n`).join("")),
      rows: rows.length,
    });
  }
  return out;
}

/**
 * Deletes a tenant's rows of every table in one transaction, children first; counts per table
 * (`afterPurge` also gets what other services purged). Idempotent.
 */
export async function purgeTenantTables(
  o: TenantDataOptions,
  tenantId: string,
  purgedElsewhere: { name: string; rows: number }[] = [],
) {
  const id = checkTenant(tenantId);
  await o.guard?.(id);
  const objects = (await o.purgeObjects?.(id)) ?? [];
  return withTransaction(o.pool, async (db) => {
    const counts = [...objects];
    for (const t of o.tables)
      if (t.delete) counts.push({ name: t.name, rows: (await db.query(t.delete, [id])).rowCount ?? 0 });
    await o.afterPurge?.(db, id, [...counts, ...purgedElsewhere]);
    return counts;
  });
}

/** valora.v1.TenantDataService over a service's tenant tables: exports and erasure (callers are trusted services). */
export function tenantDataService(o: TenantDataOptions): ServiceRegistration {
  return implement(TenantDataService, {
    async exportTenantData(req) {
      return {
        sections: (await exportTenantTables(o.pool, o.tables, req.tenantId)).map((s) => ({
          ...s,
          rows: BigInt(s.rows),
        })),
      };
    },
    async purgeTenantData(req) {
      const elsewhere = req.purgedElsewhere.map((x) => ({ name: x.name, rows: Number(x.rows) }));
      const counts = await purgeTenantTables(o, req.tenantId, elsewhere);
      return { counts: counts.map((c) => ({ name: c.name, rows: BigInt(c.rows) })) };
    },
  });
}

/**
 * Pure: one tenant-data service over several services' shares of one database (services sharing
 * a process and a database, as `valora up` runs them). `owner` (the tenants service's) comes last:
 * its guard and record of the erasure apply to the whole.
 */
export function combineTenantData(parts: TenantDataOptions[], owner: TenantDataOptions): TenantDataOptions {
  const all = [...parts, owner];
  return {
    pool: owner.pool,
    tables: all.flatMap((p) => p.tables),
    purgeObjects: async (tenantId) => {
      const out: { name: string; rows: number }[] = [];
      for (const p of all) out.push(...((await p.purgeObjects?.(tenantId)) ?? []));
      return out;
    },
    ...(owner.guard ? { guard: owner.guard } : {}),
    ...(owner.afterPurge ? { afterPurge: owner.afterPurge } : {}),
  };
}
