import { ValoraError, withTransaction, type Pool, type PoolClient } from "@valora/kit";
import { apiKeyMatches, apiKeyPrefix, generateApiKey, hashApiKey, webhookSecret } from "./keys.js";
import type { RoleName } from "./roles.js";

export type TenantStatus = "active" | "suspended" | "erasing";

export interface TenantRow {
  id: string;
  name: string;
  plan: string;
  platformAdmin: boolean;
  createdAt: Date;
  status: TenantStatus;
  suspendedAt: Date | null;
  suspendReason: string;
  eraseAfter: Date | null;
  /** API keys not revoked (when the query counted them). */
  keyCount: number;
}

export interface PrincipalRow {
  tenantId: string;
  tenantName: string;
  subject: string;
  roles: RoleName[];
  assetClasses: string[];
  platformAdmin: boolean;
  plan: string;
}

export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  roles: RoleName[];
  assetClasses: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface UserRow {
  subject: string;
  email: string;
  role: RoleName;
  createdAt: Date;
}

export interface AuditRow {
  id: string;
  actor: string;
  action: string;
  target: string;
  ip: string;
  at: Date;
  details: Record<string, unknown>;
}

export interface WebhookRow {
  id: string;
  url: string;
  events: string[];
  createdAt: Date;
}

export interface DeliveryRow {
  id: string;
  eventId: string;
  eventType: string;
  status: string;
  attempts: number;
  lastStatusCode: number;
  lastError: string;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
}

/** Who acts, for the audit row written in the same transaction as the change. */
export interface ActorRef {
  tenantId: string;
  subject: string;
  ip: string;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TENANT_NAME = /^[a-z0-9][a-z0-9-]{1,62}$/;
const unauthenticated = () => new ValoraError("UNAUTHENTICATED", "invalid or revoked API key");
/** Ids from other tenants or malformed ids are simply not found: no existence leak, no 403. */
export const notFound = (what: string, id: string) =>
  new ValoraError("NOT_FOUND", `${what} "${id}" not found`);

/** How often a key's use is written (last_used_at and an `apikey.use` audit row) at most. */
export const KEY_USE_RECORD_INTERVAL_SECONDS = 60;

export async function audit(
  c: PoolClient | Pool,
  actor: ActorRef,
  action: string,
  target: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  await c.query(
    "INSERT INTO audit_log (tenant_id, actor, action, target, ip, details) VALUES ($1, $2, $3, $4, $5, $6)",
    [actor.tenantId, actor.subject, action, target, actor.ip, JSON.stringify(details)],
  );
}

export interface TenantDb {
  id: string;
  name: string;
  plan: string;
  platform_admin: boolean;
  created_at: Date;
  status: TenantStatus;
  suspended_at: Date | null;
  suspend_reason: string;
  erase_after: Date | null;
  key_count?: number;
}

/** Columns of a tenant with its live key count, for `SELECT ${TENANT_COLUMNS} FROM tenants t`. */
export const TENANT_COLUMNS =
  "t.*, (SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL)::int AS key_count";

/**
 * Pure: whether a tenant's credentials work. Suspended: 403 TENANT_SUSPENDED (the tenant exists and
 * may come back); marked for erasure: refused as unknown credentials.
 */
export function checkTenantStatus(status: TenantStatus, reason = ""): void {
  if (status === "suspended")
    throw new ValoraError(
      "TENANT_SUSPENDED",
      `the tenant is suspended${reason ? ` (${reason})` : ""}; contact the platform administrators`,
    );
  if (status === "erasing") throw new ValoraError("UNAUTHENTICATED", "the tenant is being erased");
}
export interface KeyDb {
  id: string;
  name: string;
  prefix: string;
  roles: string[];
  asset_classes: string[];
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}
export const tenantOf = (r: TenantDb): TenantRow => ({
  id: r.id,
  name: r.name,
  plan: r.plan,
  platformAdmin: r.platform_admin,
  createdAt: r.created_at,
  status: r.status,
  suspendedAt: r.suspended_at,
  suspendReason: r.suspend_reason,
  eraseAfter: r.erase_after,
  keyCount: r.key_count ?? 0,
});
export const keyOf = (r: KeyDb): ApiKeyRow => ({
  id: r.id,
  name: r.name,
  prefix: r.prefix,
  roles: r.roles as RoleName[],
  assetClasses: r.asset_classes,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** Refuses what cannot be a tenant's name (it names the tenant in URLs and OIDC claims). */
export function checkTenantName(name: string): void {
  if (!TENANT_NAME.test(name))
    throw new ValoraError("INVALID_ARGUMENT", "invalid tenant name", {
      details: [
        {
          field: "name",
          description: "2-63 lowercase letters, digits and dashes, starting with a letter or digit",
        },
      ],
    });
}

/** Refuses what cannot be a plan's name (`free`, `pro`, `enterprise`, ...). */
export function checkPlanName(plan: string): void {
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(plan))
    throw new ValoraError("INVALID_ARGUMENT", "invalid plan name", {
      details: [{ field: "plan", description: "a plan name such as free, pro, enterprise" }],
    });
}

/** Checks a key's name and roles (the same for a tenant's own keys and those minted for it). */
export function checkKeyRequest(name: string, roles: RoleName[]): void {
  if (name.trim().length === 0 || name.length > 100)
    throw new ValoraError("INVALID_ARGUMENT", "invalid key name", {
      details: [{ field: "name", description: "1-100 characters" }],
    });
  if (roles.length === 0)
    throw new ValoraError("INVALID_ARGUMENT", "a key needs at least one role", {
      details: [{ field: "roles", description: "at least one role" }],
    });
}

/** Inserts a new key for a tenant (the caller audits); the secret is returned once. */
export async function insertApiKey(
  c: PoolClient,
  tenantId: string,
  name: string,
  roles: RoleName[],
  assetClasses: string[],
): Promise<{ key: ApiKeyRow; secret: string }> {
  const generated = generateApiKey();
  const { rows } = await c.query<KeyDb>(
    "INSERT INTO api_keys (tenant_id, name, prefix, hash, roles, asset_classes) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
    [tenantId, name, generated.prefix, generated.hash, roles, assetClasses],
  );
  return { key: keyOf(rows[0]!), secret: generated.key };
}

/** Postgres access of the tenants service; every administrative change writes its audit row in the same transaction. */
export class TenantStore {
  constructor(private readonly pool: Pool) {}

  async createTenant(
    actor: ActorRef | undefined,
    name: string,
    plan: string,
    platformAdmin = false,
  ): Promise<TenantRow> {
    return (await this.onboardTenant(actor, name, plan, platformAdmin, async () => undefined)).tenant;
  }

  /** Creates a tenant and, in the same transaction, whatever `then` adds (its first key or user). */
  async onboardTenant<T>(
    actor: ActorRef | undefined,
    name: string,
    plan: string,
    platformAdmin: boolean,
    then: (c: PoolClient, tenant: TenantRow) => Promise<T>,
  ): Promise<{ tenant: TenantRow; added: T }> {
    checkTenantName(name);
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query<TenantDb>(
        "INSERT INTO tenants (name, plan, platform_admin) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING *",
        [name, plan, platformAdmin],
      );
      if (rows.length === 0)
        throw new ValoraError("ALREADY_EXISTS", `tenant "${name}" already exists`, {
          details: [{ field: "name", description: "taken" }],
        });
      const t = tenantOf(rows[0]!);
      if (actor) await audit(c, actor, "tenant.create", `tenant/${t.id}`, { name, plan });
      await audit(
        c,
        { tenantId: t.id, subject: actor?.subject ?? "system", ip: actor?.ip ?? "" },
        "tenant.create",
        `tenant/${t.id}`,
        { name, plan },
      );
      const added = await then(c, t);
      const reread = await c.query<TenantDb>(`SELECT ${TENANT_COLUMNS} FROM tenants t WHERE t.id = $1`, [
        t.id,
      ]);
      return { tenant: tenantOf(reread.rows[0]!), added };
    });
  }

  async tenant(idOrName: string): Promise<TenantRow | undefined> {
    const { rows } = await this.pool.query<TenantDb>(
      `SELECT ${TENANT_COLUMNS} FROM tenants t WHERE ${UUID.test(idOrName) ? "t.id = $1" : "t.name = $1"}`,
      [idOrName],
    );
    return rows[0] ? tenantOf(rows[0]) : undefined;
  }

  /** Moves a tenant to a plan (the caller checked it exists); audited in the same transaction. */
  async setPlan(
    actor: ActorRef,
    tenantId: string,
    plan: string,
    reason = "",
  ): Promise<{ tenant: TenantRow; previousPlan: string }> {
    if (!UUID.test(tenantId)) throw notFound("tenant", tenantId);
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query<TenantDb & { previous: string }>(
        "UPDATE tenants t SET plan = $2 FROM (SELECT id, plan AS previous FROM tenants WHERE id = $1 FOR UPDATE) old WHERE t.id = old.id RETURNING t.*, old.previous",
        [tenantId, plan],
      );
      if (!rows[0]) throw notFound("tenant", tenantId);
      if (rows[0].previous !== plan)
        await audit(c, { ...actor, tenantId }, "tenant.plan", `tenant/${tenantId}`, {
          plan,
          previous: rows[0].previous,
          ...(reason ? { reason } : {}),
        });
      return { tenant: tenantOf(rows[0]), previousPlan: rows[0].previous };
    });
  }

  async listTenants(): Promise<TenantRow[]> {
    const { rows } = await this.pool.query<TenantDb>(
      `SELECT ${TENANT_COLUMNS} FROM tenants t ORDER BY t.created_at, t.name`,
    );
    return rows.map(tenantOf);
  }

  /** The principal of an API key; records its use at most once a minute (last_used_at + audit). */
  async authenticate(key: string, ip: string): Promise<PrincipalRow> {
    const prefix = apiKeyPrefix(key);
    if (!prefix) throw unauthenticated();
    const { rows } = await this.pool.query(
      `SELECT k.id, k.hash, k.roles, k.asset_classes, k.revoked_at, k.last_used_at, t.id AS tenant_id, t.name AS tenant_name, t.plan, t.platform_admin,
              t.status, t.suspend_reason
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = $1`,
      [prefix],
    );
    const r = rows[0] as
      | {
          id: string;
          hash: Buffer;
          roles: RoleName[];
          asset_classes: string[];
          revoked_at: Date | null;
          last_used_at: Date | null;
          tenant_id: string;
          tenant_name: string;
          plan: string;
          platform_admin: boolean;
          status: TenantStatus;
          suspend_reason: string;
        }
      | undefined;
    if (!r || r.revoked_at || !apiKeyMatches(key, r.hash)) throw unauthenticated();
    checkTenantStatus(r.status, r.suspend_reason);
    if (!r.last_used_at || Date.now() - r.last_used_at.getTime() > KEY_USE_RECORD_INTERVAL_SECONDS * 1000) {
      await withTransaction(this.pool, async (c) => {
        const used = await c.query(
          `UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2)) RETURNING id`,
          [r.id, KEY_USE_RECORD_INTERVAL_SECONDS],
        );
        if (used.rowCount)
          await audit(
            c,
            { tenantId: r.tenant_id, subject: `key:${r.id}`, ip },
            "apikey.use",
            `apikey/${r.id}`,
          );
      });
    }
    return {
      tenantId: r.tenant_id,
      tenantName: r.tenant_name,
      subject: `key:${r.id}`,
      roles: r.roles,
      assetClasses: r.asset_classes,
      platformAdmin: r.platform_admin,
      plan: r.plan,
    };
  }

  /** The principal of an OIDC subject: its user record's role, else the roles its token carries. */
  async resolveSubject(tenant: string, subject: string, tokenRoles: RoleName[]): Promise<PrincipalRow> {
    const t = await this.tenant(tenant);
    if (!t) throw new ValoraError("UNAUTHENTICATED", "token names an unknown tenant");
    checkTenantStatus(t.status, t.suspendReason);
    const { rows } = await this.pool.query<{ role: RoleName }>(
      "SELECT role FROM tenant_users WHERE tenant_id = $1 AND subject = $2",
      [t.id, subject],
    );
    const roles = rows[0] ? [rows[0].role] : tokenRoles;
    if (roles.length === 0)
      throw new ValoraError("PERMISSION_DENIED", "the token's subject has no role in this tenant");
    return {
      tenantId: t.id,
      tenantName: t.name,
      subject: `user:${subject}`,
      roles,
      assetClasses: [],
      platformAdmin: t.platformAdmin,
      plan: t.plan,
    };
  }

  async createApiKey(
    actor: ActorRef,
    name: string,
    roles: RoleName[],
    assetClasses: string[],
  ): Promise<{ key: ApiKeyRow; secret: string }> {
    checkKeyRequest(name, roles);
    return withTransaction(this.pool, async (c) => {
      const created = await insertApiKey(c, actor.tenantId, name, roles, assetClasses);
      await audit(c, actor, "apikey.create", `apikey/${created.key.id}`, { name, roles, assetClasses });
      return created;
    });
  }

  /** Stores a key whose secret comes from outside (a bootstrap key from the environment); idempotent. */
  async importApiKey(actor: ActorRef, name: string, key: string, roles: RoleName[]): Promise<boolean> {
    const prefix = apiKeyPrefix(key);
    if (!prefix)
      throw new ValoraError("INVALID_ARGUMENT", "malformed API key", {
        details: [
          {
            field: "VALORA_BOOTSTRAP_API_KEY",
            description:
              "vk_ + 10 letters/digits + _ + 32 letters/digits (generate one with `valora keygen`)",
          },
        ],
      });
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query(
        "INSERT INTO api_keys (tenant_id, name, prefix, hash, roles) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (prefix) DO NOTHING RETURNING id",
        [actor.tenantId, name, prefix, hashApiKey(key), roles],
      );
      if (rows.length > 0)
        await audit(c, actor, "apikey.create", `apikey/${(rows[0] as { id: string }).id}`, {
          name,
          roles,
          source: "environment",
        });
      return rows.length > 0;
    });
  }

  async listApiKeys(tenantId: string): Promise<ApiKeyRow[]> {
    const { rows } = await this.pool.query<KeyDb>(
      "SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
      [tenantId],
    );
    return rows.map(keyOf);
  }

  async revokeApiKey(actor: ActorRef, id: string): Promise<ApiKeyRow> {
    if (!UUID.test(id)) throw notFound("API key", id);
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query<KeyDb>(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND tenant_id = $2 RETURNING *",
        [id, actor.tenantId],
      );
      if (rows.length === 0) throw notFound("API key", id);
      await audit(c, actor, "apikey.revoke", `apikey/${id}`);
      return keyOf(rows[0]!);
    });
  }

  async putUser(actor: ActorRef, subject: string, email: string, role: RoleName): Promise<UserRow> {
    if (subject.trim().length === 0 || subject.length > 255)
      throw new ValoraError("INVALID_ARGUMENT", "invalid subject", {
        details: [{ field: "subject", description: "1-255 characters" }],
      });
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query(
        `INSERT INTO tenant_users (tenant_id, subject, email, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, subject) DO UPDATE SET email = excluded.email, role = excluded.role RETURNING *`,
        [actor.tenantId, subject, email, role],
      );
      await audit(c, actor, "user.put", `user/${subject}`, { email, role });
      const r = rows[0] as { subject: string; email: string; role: RoleName; created_at: Date };
      return { subject: r.subject, email: r.email, role: r.role, createdAt: r.created_at };
    });
  }

  async listUsers(tenantId: string): Promise<UserRow[]> {
    const { rows } = await this.pool.query(
      "SELECT * FROM tenant_users WHERE tenant_id = $1 ORDER BY subject",
      [tenantId],
    );
    return rows.map((r: { subject: string; email: string; role: RoleName; created_at: Date }) => ({
      subject: r.subject,
      email: r.email,
      role: r.role,
      createdAt: r.created_at,
    }));
  }

  async deleteUser(actor: ActorRef, subject: string): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      const res = await c.query("DELETE FROM tenant_users WHERE tenant_id = $1 AND subject = $2", [
        actor.tenantId,
        subject,
      ]);
      if (res.rowCount === 0) throw notFound("user", subject);
      await audit(c, actor, "user.delete", `user/${subject}`);
    });
  }

  async listAudit(
    tenantId: string,
    options: { limit?: number; before?: string; action?: string } = {},
  ): Promise<AuditRow[]> {
    const limit = Math.min(Math.max(options.limit || 100, 1), 1000);
    if (options.before && !/^\d+$/.test(options.before))
      throw new ValoraError("INVALID_ARGUMENT", "invalid cursor", {
        details: [{ field: "before", description: "an audit entry id" }],
      });
    const { rows } = await this.pool.query(
      `SELECT * FROM audit_log WHERE tenant_id = $1 AND ($2::bigint IS NULL OR id < $2) AND ($3::text IS NULL OR action = $3) ORDER BY id DESC LIMIT $4`,
      [tenantId, options.before || null, options.action || null, limit],
    );
    return rows.map(
      (r: {
        id: string;
        actor: string;
        action: string;
        target: string;
        ip: string;
        at: Date;
        details: Record<string, unknown>;
      }) => ({
        id: String(r.id),
        actor: r.actor,
        action: r.action,
        target: r.target,
        ip: r.ip,
        at: r.at,
        details: r.details,
      }),
    );
  }

  async createWebhook(
    actor: ActorRef,
    url: string,
    events: string[],
  ): Promise<{ webhook: WebhookRow; secret: string }> {
    const secret = webhookSecret();
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query(
        "INSERT INTO webhooks (tenant_id, url, events, secret) VALUES ($1, $2, $3, $4) RETURNING id, url, events, created_at",
        [actor.tenantId, url, events, secret],
      );
      const r = rows[0] as { id: string; url: string; events: string[]; created_at: Date };
      await audit(c, actor, "webhook.create", `webhook/${r.id}`, { url, events });
      return { webhook: { id: r.id, url: r.url, events: r.events, createdAt: r.created_at }, secret };
    });
  }

  async listWebhooks(tenantId: string): Promise<WebhookRow[]> {
    const { rows } = await this.pool.query(
      "SELECT id, url, events, created_at FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
      [tenantId],
    );
    return rows.map((r: { id: string; url: string; events: string[]; created_at: Date }) => ({
      id: r.id,
      url: r.url,
      events: r.events,
      createdAt: r.created_at,
    }));
  }

  async deleteWebhook(actor: ActorRef, id: string): Promise<void> {
    if (!UUID.test(id)) throw notFound("webhook", id);
    await withTransaction(this.pool, async (c) => {
      const res = await c.query(
        "UPDATE webhooks SET deleted_at = now() WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        [id, actor.tenantId],
      );
      if (res.rowCount === 0) throw notFound("webhook", id);
      await c.query(
        "UPDATE webhook_deliveries SET status = 'cancelled' WHERE webhook_id = $1 AND status = 'pending'",
        [id],
      );
      await audit(c, actor, "webhook.delete", `webhook/${id}`);
    });
  }

  async listDeliveries(tenantId: string, webhookId: string): Promise<DeliveryRow[]> {
    if (!UUID.test(webhookId)) throw notFound("webhook", webhookId);
    const hook = await this.pool.query("SELECT 1 FROM webhooks WHERE id = $1 AND tenant_id = $2", [
      webhookId,
      tenantId,
    ]);
    if (hook.rowCount === 0) throw notFound("webhook", webhookId);
    const { rows } = await this.pool.query(
      `SELECT d.*, e.type FROM webhook_deliveries d JOIN webhook_events e ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id
        WHERE d.webhook_id = $1 ORDER BY e.created_at DESC LIMIT 100`,
      [webhookId],
    );
    return rows.map(
      (r: {
        id: string;
        event_id: string;
        type: string;
        status: string;
        attempts: number;
        last_status_code: number;
        last_error: string;
        next_attempt_at: Date;
        delivered_at: Date | null;
      }) => ({
        id: r.id,
        eventId: r.event_id,
        eventType: r.type,
        status: r.status,
        attempts: r.attempts,
        lastStatusCode: r.last_status_code,
        lastError: r.last_error,
        nextAttemptAt: r.next_attempt_at,
        deliveredAt: r.delivered_at,
      }),
    );
  }

  /** Records the event once (by id) and queues one delivery per subscribed webhook; returns deliveries queued. */
  async publish(tenantId: string, eventId: string, type: string, data: unknown): Promise<number> {
    return withTransaction(this.pool, async (c) => {
      const inserted = await c.query(
        "INSERT INTO webhook_events (tenant_id, event_id, type, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [tenantId, eventId, type, JSON.stringify(data ?? {})],
      );
      if (inserted.rowCount === 0) return 0;
      const res = await c.query(
        `INSERT INTO webhook_deliveries (webhook_id, tenant_id, event_id)
         SELECT id, tenant_id, $2 FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL AND $3 = ANY(events)
         ON CONFLICT DO NOTHING`,
        [tenantId, eventId, type],
      );
      return res.rowCount ?? 0;
    });
  }
}
