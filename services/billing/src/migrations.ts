import { migrate, type Migration, type Pool, type TenantTable } from "@valora/kit";

/** Versioned schema of the billing service. Never edit an applied migration: add the next one. */
export const BILLING_MIGRATIONS: Migration[] = [
  {
    id: "001_billing",
    sql: `
      CREATE TABLE billing_accounts (
        tenant_id text PRIMARY KEY,
        stripe_customer_id text UNIQUE,
        stripe_subscription_id text,
        subscription_item_id text,
        subscription_status text NOT NULL DEFAULT '',
        updated_at timestamptz NOT NULL DEFAULT now());
      -- What was reported to Stripe per tenant and day. pending_units is written before the meter
      -- event is sent: after a crash the same event (same identifier) is sent again, never a new one.
      CREATE TABLE billing_usage_reports (
        tenant_id text NOT NULL,
        day date NOT NULL,
        reported_units bigint NOT NULL DEFAULT 0,
        pending_units bigint,
        reported_at timestamptz,
        PRIMARY KEY (tenant_id, day));
      -- Every webhook delivery, verified or not; verified event ids are acted on once.
      CREATE TABLE billing_webhook_log (
        id bigserial PRIMARY KEY,
        event_id text,
        type text NOT NULL DEFAULT '',
        verified boolean NOT NULL,
        outcome text NOT NULL,
        error text NOT NULL DEFAULT '',
        ip text NOT NULL DEFAULT '',
        received_at timestamptz NOT NULL DEFAULT now());
      CREATE UNIQUE INDEX billing_webhook_events_once ON billing_webhook_log (event_id) WHERE verified;`,
  },
];

export async function migrateBilling(pool: Pool): Promise<string[]> {
  return migrate(pool, "billing", BILLING_MIGRATIONS);
}

/** What billing holds of a tenant: its Stripe account link and usage reports (exports, erasure). */
export const BILLING_TENANT_TABLES: TenantTable[] = [
  {
    name: "billing.billing_usage_reports",
    select: "SELECT * FROM billing_usage_reports WHERE tenant_id = $1 ORDER BY day",
    delete: "DELETE FROM billing_usage_reports WHERE tenant_id = $1",
  },
  {
    name: "billing.billing_accounts",
    select: "SELECT * FROM billing_accounts WHERE tenant_id = $1",
    delete: "DELETE FROM billing_accounts WHERE tenant_id = $1",
  },
];
