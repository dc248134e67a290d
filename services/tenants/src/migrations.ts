import { migrate, type Migration, type Pool } from "@valora/kit";

/** Versioned schema of the tenants service. Never edit an applied migration: add the next one. */
export const TENANT_MIGRATIONS: Migration[] = [
  {
    id: "001_tenants",
    sql: `
      CREATE TABLE tenants (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL UNIQUE,
        plan text NOT NULL DEFAULT 'free',
        platform_admin boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE tenant_users (
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        subject text NOT NULL,
        email text NOT NULL DEFAULT '',
        role text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, subject));
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL,
        prefix text NOT NULL UNIQUE,
        hash bytea NOT NULL,
        roles text[] NOT NULL,
        asset_classes text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz);
      CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        actor text NOT NULL,
        action text NOT NULL,
        target text NOT NULL DEFAULT '',
        ip text NOT NULL DEFAULT '',
        details jsonb NOT NULL DEFAULT '{}',
        at timestamptz NOT NULL DEFAULT now());
      CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);`,
  },
  {
    id: "002_webhooks",
    sql: `
      CREATE TABLE webhooks (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        url text NOT NULL,
        events text[] NOT NULL,
        secret text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz);
      CREATE INDEX webhooks_tenant ON webhooks (tenant_id) WHERE deleted_at IS NULL;
      CREATE TABLE webhook_events (
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        event_id text NOT NULL,
        type text NOT NULL,
        data jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, event_id));
      CREATE TABLE webhook_deliveries (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        webhook_id uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL,
        event_id text NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        attempts int NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_status_code int NOT NULL DEFAULT 0,
        last_error text NOT NULL DEFAULT '',
        delivered_at timestamptz,
        UNIQUE (webhook_id, event_id),
        FOREIGN KEY (tenant_id, event_id) REFERENCES webhook_events (tenant_id, event_id) ON DELETE CASCADE);
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';`,
  },
  {
    // Tenant lifecycle: suspension, erasure after a grace period, exports of everything held.
    id: "003_lifecycle",
    sql: `
      ALTER TABLE tenants
        ADD COLUMN status text NOT NULL DEFAULT 'active',
        ADD COLUMN suspended_at timestamptz,
        ADD COLUMN suspend_reason text NOT NULL DEFAULT '',
        ADD COLUMN erase_after timestamptz;
      CREATE INDEX tenants_erasing ON tenants (erase_after) WHERE status = 'erasing';
      CREATE TABLE tenant_exports (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        status text NOT NULL DEFAULT 'running',
        requested_by text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        archive bytea,
        size bigint NOT NULL DEFAULT 0,
        counts jsonb NOT NULL DEFAULT '{}',
        error text NOT NULL DEFAULT '');
      CREATE INDEX tenant_exports_tenant ON tenant_exports (tenant_id, created_at DESC);`,
  },
];

export async function migrateTenants(pool: Pool): Promise<string[]> {
  return migrate(pool, "tenants", TENANT_MIGRATIONS);
}
