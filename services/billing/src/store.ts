import { withTransaction, type Pool, type PoolClient } from "@valora/kit";

export interface AccountRow {
  tenantId: string;
  customerId: string | null;
  subscriptionId: string | null;
  subscriptionItemId: string | null;
  subscriptionStatus: string;
}

export interface ReportRow {
  day: string;
  reportedUnits: number;
  pendingUnits: number | null;
}

interface AccountDb {
  tenant_id: string;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
  subscription_item_id: string | null;
  subscription_status: string;
}
const accountOf = (r: AccountDb): AccountRow => ({
  tenantId: r.tenant_id,
  customerId: r.stripe_customer_id,
  subscriptionId: r.stripe_subscription_id,
  subscriptionItemId: r.subscription_item_id,
  subscriptionStatus: r.subscription_status,
});

/** Billing's own state: the Stripe ids of each tenant, what was reported, and the webhook log. */
export class BillingStore {
  constructor(private readonly pool: Pool) {}

  async account(tenantId: string): Promise<AccountRow | undefined> {
    const { rows } = await this.pool.query<AccountDb>("SELECT * FROM billing_accounts WHERE tenant_id = $1", [
      tenantId,
    ]);
    return rows[0] ? accountOf(rows[0]) : undefined;
  }

  async accountByCustomer(customerId: string): Promise<AccountRow | undefined> {
    const { rows } = await this.pool.query<AccountDb>(
      "SELECT * FROM billing_accounts WHERE stripe_customer_id = $1",
      [customerId],
    );
    return rows[0] ? accountOf(rows[0]) : undefined;
  }

  async accountsWithCustomer(): Promise<AccountRow[]> {
    const { rows } = await this.pool.query<AccountDb>(
      "SELECT * FROM billing_accounts WHERE stripe_customer_id IS NOT NULL ORDER BY tenant_id",
    );
    return rows.map(accountOf);
  }

  async saveCustomer(tenantId: string, customerId: string): Promise<void> {
    await this.pool.query(
      "INSERT INTO billing_accounts (tenant_id, stripe_customer_id) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id, updated_at = now()",
      [tenantId, customerId],
    );
  }

  async saveSubscription(
    tenantId: string,
    s: { id: string | null; itemId: string | null; status: string },
    c: Pool | PoolClient = this.pool,
  ): Promise<void> {
    await c.query(
      "UPDATE billing_accounts SET stripe_subscription_id = $2, subscription_item_id = $3, subscription_status = $4, updated_at = now() WHERE tenant_id = $1",
      [tenantId, s.id, s.itemId, s.status],
    );
  }

  async reports(tenantId: string, days: string[]): Promise<ReportRow[]> {
    const { rows } = await this.pool.query<{
      day: string;
      reported_units: string;
      pending_units: string | null;
    }>(
      "SELECT to_char(day, 'YYYY-MM-DD') AS day, reported_units::text, pending_units::text FROM billing_usage_reports WHERE tenant_id = $1 AND day = ANY($2::date[]) ORDER BY day",
      [tenantId, days],
    );
    return rows.map((r) => ({
      day: r.day,
      reportedUnits: Number(r.reported_units),
      pendingUnits: r.pending_units === null ? null : Number(r.pending_units),
    }));
  }

  /** Records the intent to report `units` in total for a day (before the meter event is sent). */
  async markPending(tenantId: string, day: string, units: number): Promise<void> {
    await this.pool.query(
      "INSERT INTO billing_usage_reports (tenant_id, day, pending_units) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, day) DO UPDATE SET pending_units = EXCLUDED.pending_units",
      [tenantId, day, units],
    );
  }

  async markReported(tenantId: string, day: string, units: number): Promise<void> {
    await this.pool.query(
      "UPDATE billing_usage_reports SET reported_units = $3, pending_units = NULL, reported_at = now() WHERE tenant_id = $1 AND day = $2",
      [tenantId, day, units],
    );
  }

  async totals(tenantId: string): Promise<{ units: number; lastReportedAt: Date | null }> {
    const { rows } = await this.pool.query<{ units: string; last: Date | null }>(
      "SELECT COALESCE(sum(reported_units), 0)::text AS units, max(reported_at) AS last FROM billing_usage_reports WHERE tenant_id = $1",
      [tenantId],
    );
    return { units: Number(rows[0]?.units ?? 0), lastReportedAt: rows[0]?.last ?? null };
  }

  async logRejected(error: string, ip: string): Promise<void> {
    await this.pool.query(
      "INSERT INTO billing_webhook_log (verified, outcome, error, ip) VALUES (false, 'rejected', $1, $2)",
      [error.slice(0, 500), ip],
    );
  }

  /**
   * Acts on a verified event once: the log row and the action commit together, so a failed action
   * leaves nothing behind and Stripe's retry is acted on; a repeated delivery is a duplicate.
   */
  async onceForEvent(
    eventId: string,
    type: string,
    ip: string,
    act: (c: PoolClient) => Promise<"applied" | "ignored">,
  ): Promise<"applied" | "ignored" | "duplicate"> {
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ id: string }>(
        "INSERT INTO billing_webhook_log (event_id, type, verified, outcome, ip) VALUES ($1, $2, true, 'processing', $3) ON CONFLICT (event_id) WHERE verified DO NOTHING RETURNING id",
        [eventId, type, ip],
      );
      if (!rows[0]) return "duplicate";
      const outcome = await act(c);
      await c.query("UPDATE billing_webhook_log SET outcome = $2 WHERE id = $1", [rows[0].id, outcome]);
      return outcome;
    });
  }

  async webhookLog(
    limit = 100,
  ): Promise<{ eventId: string | null; type: string; verified: boolean; outcome: string; error: string }[]> {
    const { rows } = await this.pool.query<{
      event_id: string | null;
      type: string;
      verified: boolean;
      outcome: string;
      error: string;
    }>("SELECT event_id, type, verified, outcome, error FROM billing_webhook_log ORDER BY id DESC LIMIT $1", [
      limit,
    ]);
    return rows.map((r) => ({
      eventId: r.event_id,
      type: r.type,
      verified: r.verified,
      outcome: r.outcome,
      error: r.error,
    }));
  }
}
