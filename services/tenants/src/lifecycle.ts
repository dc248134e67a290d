import { createHash } from "node:crypto";
import { ValoraError, withTransaction, type Pool, type PoolClient, type TenantTable } from "@valora/kit";
import type { RoleName } from "./roles.js";
import {
  TENANT_COLUMNS,
  UUID,
  audit,
  checkKeyRequest,
  checkPlanName,
  checkTenantName,
  insertApiKey,
  notFound,
  tenantOf,
  type ActorRef,
  type ApiKeyRow,
  type TenantDb,
  type TenantRow,
  type TenantStatus,
  type UserRow,
} from "./store.js";

/** How long a tenant marked for erasure keeps its data before the purge (cancellable meanwhile). */
export const DEFAULT_ERASURE_GRACE_SECONDS = 7 * 24 * 3600;

export interface TenantFilter {
  name?: string;
  plan?: string;
  status?: string;
  dueForErasure?: boolean;
  pageSize?: number;
  pageToken?: string;
}

export interface ExportRow {
  id: string;
  tenantId: string;
  status: "running" | "succeeded" | "failed";
  createdAt: Date;
  finishedAt: Date | null;
  size: number;
  error: string;
  counts: Record<string, number>;
}

interface ExportDb {
  id: string;
  tenant_id: string;
  status: ExportRow["status"];
  created_at: Date;
  finished_at: Date | null;
  size: string;
  error: string;
  counts: Record<string, number>;
}

const exportOf = (r: ExportDb): ExportRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  status: r.status,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
  size: Number(r.size),
  error: r.error,
  counts: r.counts,
});

/** An export left running this long was interrupted (its gateway went away): it reads as failed. */
const EXPORT_STALE_MS = 15 * 60_000;

/** Pure: the record an erased tenant leaves — a digest of its id (checkable by who knows the id; the id itself is gone). */
export const erasedTarget = (tenantId: string): string =>
  `tenant/erased:${createHash("sha256").update(tenantId).digest("hex").slice(0, 16)}`;

/** Page tokens are the last name of the page before (names are unique). */
const encodeToken = (name: string) => Buffer.from(name).toString("base64url");
const decodeToken = (token: string) => Buffer.from(token, "base64url").toString();

/**
 * A tenant's lifecycle as platform administrators run it: onboarding with a first key or an
 * invitation, keys minted for a tenant, name and plan changes, suspension, erasure after a grace
 * period, exports. Every change is audited in the acting (platform) tenant's log and, as
 * `platform:<subject>`, in the target tenant's, in the same transaction as the change.
 */
export class TenantLifecycle {
  constructor(private readonly pool: Pool) {}

  private async auditBoth(
    c: PoolClient,
    actor: ActorRef,
    tenantId: string,
    action: string,
    target: string,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    await audit(c, actor, action, target, details);
    if (tenantId !== actor.tenantId)
      await audit(
        c,
        { tenantId, subject: `platform:${actor.subject}`, ip: actor.ip },
        action,
        target,
        details,
      );
  }

  /** Locks and reads a tenant for a change; platform tenants cannot be suspended or erased. */
  private async locked(c: PoolClient, tenantId: string, change?: string): Promise<TenantRow> {
    if (!UUID.test(tenantId)) throw notFound("tenant", tenantId);
    const { rows } = await c.query<TenantDb>(
      `SELECT ${TENANT_COLUMNS} FROM tenants t WHERE t.id = $1 FOR UPDATE`,
      [tenantId],
    );
    if (!rows[0]) throw notFound("tenant", tenantId);
    const t = tenantOf(rows[0]);
    if (change && t.platformAdmin)
      throw new ValoraError("FAILED_PRECONDITION", `the platform tenant "${t.name}" cannot be ${change}`, {
        details: [{ field: "id", description: "a platform tenant administers the others" }],
      });
    return t;
  }

  private async reread(c: PoolClient, tenantId: string): Promise<TenantRow> {
    const { rows } = await c.query<TenantDb>(`SELECT ${TENANT_COLUMNS} FROM tenants t WHERE t.id = $1`, [
      tenantId,
    ]);
    return tenantOf(rows[0]!);
  }

  /** The first admin key of a new tenant, minted in its creation's transaction. */
  static async firstKey(
    c: PoolClient,
    actor: ActorRef | undefined,
    tenant: TenantRow,
  ): Promise<{ key: ApiKeyRow; secret: string }> {
    const created = await insertApiKey(c, tenant.id, "first admin key", ["admin"], []);
    await audit(
      c,
      { tenantId: tenant.id, subject: actor ? `platform:${actor.subject}` : "system", ip: actor?.ip ?? "" },
      "apikey.create",
      `apikey/${created.key.id}`,
      { name: "first admin key", roles: ["admin"], onboarding: true },
    );
    return created;
  }

  /** An invitation of a new tenant: a user record for the subject, so its first token has a role. */
  static async invite(
    c: PoolClient,
    actor: ActorRef | undefined,
    tenant: TenantRow,
    subject: string,
    role: RoleName,
    email: string,
  ): Promise<UserRow> {
    if (subject.length === 0 || subject.length > 255)
      throw new ValoraError("INVALID_ARGUMENT", "invalid subject", {
        details: [{ field: "admin.subject", description: "the OIDC subject (sub), 1-255 characters" }],
      });
    const { rows } = await c.query<{ created_at: Date }>(
      "INSERT INTO tenant_users (tenant_id, subject, email, role) VALUES ($1, $2, $3, $4) RETURNING created_at",
      [tenant.id, subject, email, role],
    );
    await audit(
      c,
      { tenantId: tenant.id, subject: actor ? `platform:${actor.subject}` : "system", ip: actor?.ip ?? "" },
      "user.invite",
      `user/${subject}`,
      { role, email },
    );
    return { subject, email, role, createdAt: rows[0]!.created_at };
  }

  async list(f: TenantFilter): Promise<{ tenants: TenantRow[]; nextPageToken: string }> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length}`);
    if (f.name) where.push(`t.name ILIKE ${arg(`%${f.name.replace(/[%_\\]/g, "\\$&")}%`)}`);
    if (f.plan) where.push(`t.plan = ${arg(f.plan)}`);
    if (f.status) where.push(`t.status = ${arg(f.status)}`);
    if (f.dueForErasure) where.push("t.status = 'erasing' AND t.erase_after <= now()");
    if (f.pageToken) where.push(`t.name > ${arg(decodeToken(f.pageToken))}`);
    const size = f.pageSize && f.pageSize > 0 ? Math.min(f.pageSize, 500) : undefined;
    const { rows } = await this.pool.query<TenantDb>(
      `SELECT ${TENANT_COLUMNS} FROM tenants t ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
        ORDER BY t.name ${size ? `LIMIT ${size + 1}` : ""}`,
      args,
    );
    const page = size ? rows.slice(0, size) : rows;
    return {
      tenants: page.map(tenantOf),
      nextPageToken: size && rows.length > size ? encodeToken(page.at(-1)!.name) : "",
    };
  }

  async update(
    actor: ActorRef,
    tenantId: string,
    change: { name?: string; plan?: string },
  ): Promise<TenantRow> {
    if (change.name !== undefined) checkTenantName(change.name);
    if (change.plan !== undefined) checkPlanName(change.plan);
    return withTransaction(this.pool, async (c) => {
      const before = await this.locked(c, tenantId);
      const taken =
        change.name !== undefined && change.name !== before.name
          ? await c.query("SELECT 1 FROM tenants WHERE name = $1", [change.name])
          : undefined;
      if (taken?.rowCount)
        throw new ValoraError("ALREADY_EXISTS", `tenant "${change.name}" already exists`, {
          details: [{ field: "name", description: "taken" }],
        });
      await c.query("UPDATE tenants SET name = coalesce($2, name), plan = coalesce($3, plan) WHERE id = $1", [
        tenantId,
        change.name ?? null,
        change.plan ?? null,
      ]);
      const changes = Object.fromEntries(
        (["name", "plan"] as const)
          .filter((k) => change[k] !== undefined && change[k] !== before[k])
          .map((k) => [k, { from: before[k], to: change[k] }]),
      );
      if (Object.keys(changes).length > 0)
        await this.auditBoth(c, actor, tenantId, "tenant.update", `tenant/${tenantId}`, changes);
      return this.reread(c, tenantId);
    });
  }

  /** A key for another tenant (its admins lost theirs), audited in both logs. */
  async createKeyFor(
    actor: ActorRef,
    tenantId: string,
    name: string,
    roles: RoleName[],
    assetClasses: string[],
  ): Promise<{ key: ApiKeyRow; secret: string }> {
    checkKeyRequest(name, roles);
    return withTransaction(this.pool, async (c) => {
      const t = await this.locked(c, tenantId);
      if (t.status === "erasing")
        throw new ValoraError(
          "FAILED_PRECONDITION",
          "the tenant is marked for erasure: cancel the erasure first",
          {
            details: [{ field: "id", description: "tenant being erased" }],
          },
        );
      const created = await insertApiKey(c, tenantId, name, roles, assetClasses);
      await this.auditBoth(
        c,
        actor,
        tenantId,
        "apikey.create",
        `tenant/${tenantId}/apikey/${created.key.id}`,
        {
          name,
          roles,
          assetClasses,
          mintedBy: "platform",
        },
      );
      return created;
    });
  }

  private async setStatus(
    actor: ActorRef,
    tenantId: string,
    action: string,
    apply: (t: TenantRow) => { sql: string; args: unknown[]; details?: Record<string, unknown> } | undefined,
    change: string,
  ): Promise<TenantRow> {
    return withTransaction(this.pool, async (c) => {
      const t = await this.locked(c, tenantId, change);
      const update = apply(t);
      if (update) {
        await c.query(update.sql, [tenantId, ...update.args]);
        await this.auditBoth(c, actor, tenantId, action, `tenant/${tenantId}`, update.details ?? {});
      }
      return this.reread(c, tenantId);
    });
  }

  /** Suspends an active tenant (idempotent): its credentials are refused with TENANT_SUSPENDED. */
  suspend(actor: ActorRef, tenantId: string, reason: string): Promise<TenantRow> {
    return this.setStatus(
      actor,
      tenantId,
      "tenant.suspend",
      (t) => {
        if (t.status === "erasing") throw erasing();
        return t.status === "suspended"
          ? undefined
          : {
              sql: "UPDATE tenants SET status = 'suspended', suspended_at = now(), suspend_reason = $2 WHERE id = $1",
              args: [reason.slice(0, 500)],
              details: reason ? { reason } : {},
            };
      },
      "suspended",
    );
  }

  resume(actor: ActorRef, tenantId: string): Promise<TenantRow> {
    return this.setStatus(
      actor,
      tenantId,
      "tenant.resume",
      (t) => {
        if (t.status === "erasing") throw erasing();
        return t.status === "active"
          ? undefined
          : {
              sql: "UPDATE tenants SET status = 'active', suspended_at = NULL, suspend_reason = '' WHERE id = $1",
              args: [],
            };
      },
      "resumed",
    );
  }

  /** Marks a tenant for erasure after `graceSeconds`: its credentials stop working at once. */
  erase(actor: ActorRef, tenantId: string, graceSeconds = DEFAULT_ERASURE_GRACE_SECONDS): Promise<TenantRow> {
    if (!Number.isFinite(graceSeconds) || graceSeconds < 0)
      throw new ValoraError("INVALID_ARGUMENT", "invalid grace period", {
        details: [{ field: "graceSeconds", description: "0 or more seconds" }],
      });
    return this.setStatus(
      actor,
      tenantId,
      "tenant.erase.requested",
      (t) =>
        t.status === "erasing"
          ? undefined
          : {
              sql: "UPDATE tenants SET status = 'erasing', erase_after = now() + make_interval(secs => $2) WHERE id = $1",
              args: [graceSeconds],
              details: { graceSeconds, previousStatus: t.status },
            },
      "erased",
    );
  }

  cancelErasure(actor: ActorRef, tenantId: string): Promise<TenantRow> {
    return this.setStatus(
      actor,
      tenantId,
      "tenant.erase.cancelled",
      (t) =>
        t.status !== "erasing"
          ? undefined
          : {
              sql: "UPDATE tenants SET status = CASE WHEN suspended_at IS NULL THEN 'active' ELSE 'suspended' END, erase_after = NULL WHERE id = $1",
              args: [],
            },
      "restored",
    );
  }

  /** The purge may run: the tenant is marked for erasure and its grace period has passed (or it is gone already). */
  async checkDue(tenantId: string): Promise<void> {
    const { rows } = await this.pool.query<{ status: TenantStatus; due: boolean }>(
      "SELECT status, erase_after <= now() AS due FROM tenants WHERE id::text = $1",
      [tenantId],
    );
    const t = rows[0];
    if (t && !(t.status === "erasing" && t.due))
      throw new ValoraError("FAILED_PRECONDITION", "the tenant is not due for erasure", {
        details: [
          {
            field: "tenant_id",
            description: t.status === "erasing" ? "grace period running" : "not marked for erasure",
          },
        ],
      });
  }

  /** After every row is gone: the one record of the erasure, in the platform tenant's log, with counts. */
  static async recordErasure(
    db: PoolClient,
    tenantId: string,
    counts: { name: string; rows: number }[],
  ): Promise<void> {
    const { rows } = await db.query<{ id: string }>(
      "SELECT id FROM tenants WHERE platform_admin ORDER BY created_at LIMIT 1",
    );
    if (!rows[0] || counts.every((c) => c.rows === 0)) return;
    await audit(
      db,
      { tenantId: rows[0].id, subject: "system:erasure", ip: "" },
      "tenant.erase.purged",
      erasedTarget(tenantId),
      {
        counts: Object.fromEntries(counts.filter((c) => c.rows > 0).map((c) => [c.name, c.rows])),
        rows: counts.reduce((n, c) => n + c.rows, 0),
      },
    );
  }

  async startExport(actor: ActorRef, tenantId: string): Promise<ExportRow> {
    return withTransaction(this.pool, async (c) => {
      await this.locked(c, tenantId);
      const { rows } = await c.query<ExportDb>(
        "INSERT INTO tenant_exports (tenant_id, requested_by) VALUES ($1, $2) RETURNING *",
        [tenantId, actor.subject],
      );
      const e = exportOf(rows[0]!);
      await this.auditBoth(c, actor, tenantId, "tenant.export", `tenant/${tenantId}/export/${e.id}`);
      return e;
    });
  }

  async finishExport(
    id: string,
    archive: Buffer,
    error: string,
    counts: Record<string, number>,
  ): Promise<ExportRow> {
    if (!UUID.test(id)) throw notFound("export", id);
    const { rows } = await this.pool.query<ExportDb>(
      `UPDATE tenant_exports SET status = $2, archive = $3, size = $4, error = $5, counts = $6, finished_at = now()
        WHERE id = $1 AND status = 'running' RETURNING *`,
      [
        id,
        error ? "failed" : "succeeded",
        error ? null : archive,
        error ? 0 : archive.length,
        error,
        JSON.stringify(counts),
      ],
    );
    if (!rows[0]) throw notFound("export", id);
    return exportOf(rows[0]);
  }

  async getExport(
    tenantId: string,
    id: string,
    withArchive: boolean,
  ): Promise<{ export: ExportRow; archive?: Buffer }> {
    if (!UUID.test(id) || !UUID.test(tenantId)) throw notFound("export", id);
    const { rows } = await this.pool.query<ExportDb & { archive: Buffer | null }>(
      `SELECT id, tenant_id, status, created_at, finished_at, size, error, counts${withArchive ? ", archive" : ""}
         FROM tenant_exports WHERE id = $1 AND tenant_id = $2`,
      [id, tenantId],
    );
    const r = rows[0];
    if (!r) throw notFound("export", id);
    const e = exportOf(r);
    if (e.status === "running" && Date.now() - e.createdAt.getTime() > EXPORT_STALE_MS)
      return { export: { ...e, status: "failed", error: "interrupted: start the export again" } };
    return { export: e, ...(r.archive ? { archive: r.archive } : {}) };
  }
}

const erasing = () =>
  new ValoraError("FAILED_PRECONDITION", "the tenant is marked for erasure: cancel the erasure first", {
    details: [{ field: "id", description: "tenant being erased" }],
  });

/** Everything the tenants service holds for a tenant: exported without secrets, purged children first. */
export const TENANT_TABLES: TenantTable[] = [
  {
    name: "tenants.tenant",
    select:
      "SELECT id, name, plan, status, created_at, suspended_at, suspend_reason, erase_after FROM tenants WHERE id::text = $1",
  },
  {
    name: "tenants.users",
    select: "SELECT subject, email, role, created_at FROM tenant_users WHERE tenant_id::text = $1",
    delete: "DELETE FROM tenant_users WHERE tenant_id::text = $1",
  },
  {
    name: "tenants.api_keys",
    select:
      "SELECT id, name, prefix, roles, asset_classes, created_at, last_used_at, revoked_at FROM api_keys WHERE tenant_id::text = $1",
    delete: "DELETE FROM api_keys WHERE tenant_id::text = $1",
  },
  {
    name: "tenants.audit_log",
    select:
      "SELECT id, actor, action, target, ip, details, at FROM audit_log WHERE tenant_id::text = $1 ORDER BY id",
    delete: "DELETE FROM audit_log WHERE tenant_id::text = $1",
  },
  {
    name: "tenants.webhook_deliveries",
    select:
      "SELECT id, webhook_id, event_id, status, attempts, next_attempt_at, last_status_code, last_error, delivered_at FROM webhook_deliveries WHERE tenant_id::text = $1",
    delete: "DELETE FROM webhook_deliveries WHERE tenant_id::text = $1",
  },
  {
    name: "tenants.webhook_events",
    select: "SELECT event_id, type, data, created_at FROM webhook_events WHERE tenant_id::text = $1",
    delete: "DELETE FROM webhook_events WHERE tenant_id::text = $1",
  },
  {
    name: "tenants.webhooks",
    select: "SELECT id, url, events, created_at, deleted_at FROM webhooks WHERE tenant_id::text = $1",
    delete: "DELETE FROM webhooks WHERE tenant_id::text = $1",
  },
  { name: "tenants.exports", delete: "DELETE FROM tenant_exports WHERE tenant_id::text = $1" },
  {
    // Other tenants' audit rows about it (the platform created, suspended, erased it) keep the
    // event but name it by the digest erasedTarget gives, not by its id or name.
    name: "tenants.audit_references",
    delete: `WITH erased AS (
        SELECT 'erased:' || left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 16) AS tag,
               (SELECT '"' || name || '"' FROM tenants WHERE id::text = $1) AS quoted)
      UPDATE audit_log a
         SET target = replace(a.target, $1, e.tag),
             details = replace(CASE WHEN e.quoted IS NULL THEN a.details::text
                                    ELSE replace(a.details::text, e.quoted, '"' || e.tag || '"') END, $1, e.tag)::jsonb
        FROM erased e
       WHERE a.tenant_id::text <> $1
         AND (a.target LIKE '%' || $1 || '%' OR a.details::text LIKE '%' || $1 || '%'
              OR (e.quoted IS NOT NULL AND a.details::text LIKE '%' || e.quoted || '%'))`,
  },
  { name: "tenants.tenant", delete: "DELETE FROM tenants WHERE id::text = $1" },
];
