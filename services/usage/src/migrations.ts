import { migrate, type Migration, type Pool, type TenantTable } from "@valora/kit";

/** Versioned schema of the usage service. Never edit an applied migration: add the next one. */
export const USAGE_MIGRATIONS: Migration[] = [
  {
    id: "001_usage",
    sql: `
      -- One row per recorded idempotency key: what makes a retried Record count once.
      CREATE TABLE usage_events (
        tenant_id text NOT NULL,
        idempotency_key text NOT NULL,
        asset_class text NOT NULL,
        kind text NOT NULL,
        units bigint NOT NULL,
        day date NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, idempotency_key));
      CREATE INDEX usage_events_recorded ON usage_events (recorded_at);
      -- The durable meter: units per tenant, day, asset class and kind.
      CREATE TABLE usage_daily (
        tenant_id text NOT NULL,
        day date NOT NULL,
        asset_class text NOT NULL,
        kind text NOT NULL,
        units bigint NOT NULL,
        PRIMARY KEY (tenant_id, day, asset_class, kind));`,
  },
];

export async function migrateUsage(pool: Pool): Promise<string[]> {
  return migrate(pool, "usage", USAGE_MIGRATIONS);
}

/** What the usage service holds of a tenant: metered events and daily sums (exports, erasure). */
export const USAGE_TENANT_TABLES: TenantTable[] = [
  {
    name: "usage.usage_daily",
    select: "SELECT * FROM usage_daily WHERE tenant_id = $1 ORDER BY day",
    delete: "DELETE FROM usage_daily WHERE tenant_id = $1",
  },
  {
    name: "usage.usage_events",
    select: "SELECT * FROM usage_events WHERE tenant_id = $1",
    delete: "DELETE FROM usage_events WHERE tenant_id = $1",
  },
];
