import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { JsonObject } from "@bufbuild/protobuf";
import { TenantService, type Actor } from "@valora/proto/valora/v1/tenants_pb";
import { ValoraError, implement, type ServiceRegistration } from "@valora/kit";
import { roleName, roleOf } from "./roles.js";
import {
  checkPlanName,
  type ActorRef,
  type ApiKeyRow,
  type PrincipalRow,
  type TenantRow,
  type TenantStore,
  type UserRow,
} from "./store.js";
import { WEBHOOK_EVENTS, checkWebhookUrl, type DeliveryWorker } from "./webhooks.js";
import { TenantLifecycle, type ExportRow } from "./lifecycle.js";

export interface TenantServiceDeps {
  store: TenantStore;
  lifecycle: TenantLifecycle;
  webhooks: { allowHttp: boolean; allowPrivate: boolean };
  /** Woken after a publish so deliveries go out at once rather than at the next poll. */
  worker?: Pick<DeliveryWorker, "drain">;
}

const actorOf = (a: Actor | undefined): ActorRef => {
  if (!a?.tenantId || !a.subject)
    throw new ValoraError("INVALID_ARGUMENT", "actor required", {
      details: [{ field: "actor", description: "tenant_id and subject of the caller" }],
    });
  return { tenantId: a.tenantId, subject: a.subject, ip: a.ip };
};
const ts = (d: Date | null | undefined) => (d ? timestampFromDate(d) : undefined);
const principal = (p: PrincipalRow) => ({ ...p, roles: p.roles.map(roleOf) });
const tenant = (t: TenantRow) => ({
  id: t.id,
  name: t.name,
  plan: t.plan,
  platformAdmin: t.platformAdmin,
  createdAt: ts(t.createdAt),
  status: t.status,
  suspendedAt: ts(t.suspendedAt),
  suspendReason: t.suspendReason,
  eraseAfter: ts(t.eraseAfter),
  keyCount: t.keyCount,
});
const exported = (e: ExportRow) => ({
  ...e,
  createdAt: ts(e.createdAt),
  finishedAt: ts(e.finishedAt),
  size: BigInt(e.size),
  counts: Object.fromEntries(Object.entries(e.counts).map(([k, v]) => [k, BigInt(v)])),
});
const apiKey = (k: ApiKeyRow) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  roles: k.roles.map(roleOf),
  assetClasses: k.assetClasses,
  createdAt: ts(k.createdAt),
  lastUsedAt: ts(k.lastUsedAt),
  revokedAt: ts(k.revokedAt),
});

/** valora.v1.TenantService over the store. Authorisation is the gateway's; this service trusts its callers' actor. */
export function tenantService(d: TenantServiceDeps): ServiceRegistration {
  const s = d.store;
  return implement(TenantService, {
    async authenticate(req) {
      return { principal: principal(await s.authenticate(req.apiKey, req.ip)) };
    },
    async resolveSubject(req) {
      return {
        principal: principal(await s.resolveSubject(req.tenant, req.subject, req.tokenRoles.map(roleName))),
      };
    },
    async createTenant(req) {
      const actor = req.actor ? actorOf(req.actor) : undefined;
      // The first way in: an admin key shown once, or with OIDC an invitation of a named subject.
      type Added = { invitation: UserRow } | { first: { key: ApiKeyRow; secret: string } };
      const { tenant: t, added } = await s.onboardTenant<Added>(
        actor,
        req.name,
        req.plan || "free",
        false,
        (c, created) =>
          req.adminSubject
            ? TenantLifecycle.invite(
                c,
                actor,
                created,
                req.adminSubject,
                req.adminRole ? roleName(req.adminRole) : "admin",
                req.adminEmail,
              ).then((invitation) => ({ invitation }))
            : TenantLifecycle.firstKey(c, actor, created).then((first) => ({ first })),
      );
      return {
        tenant: tenant(t),
        ...("first" in added
          ? { firstKey: apiKey(added.first.key), firstKeySecret: added.first.secret }
          : {}),
        ...("invitation" in added
          ? {
              invitation: {
                ...added.invitation,
                role: roleOf(added.invitation.role),
                createdAt: ts(added.invitation.createdAt),
              },
            }
          : {}),
      };
    },
    async updateTenant(req) {
      return {
        tenant: tenant(
          await d.lifecycle.update(actorOf(req.actor), req.tenantId, {
            ...(req.name !== undefined ? { name: req.name } : {}),
            ...(req.plan !== undefined ? { plan: req.plan } : {}),
          }),
        ),
      };
    },
    async createTenantApiKey(req) {
      const { key, secret } = await d.lifecycle.createKeyFor(
        actorOf(req.actor),
        req.tenantId,
        req.name,
        req.roles.map(roleName),
        req.assetClasses,
      );
      return { apiKey: apiKey(key), secret };
    },
    async suspendTenant(req) {
      return { tenant: tenant(await d.lifecycle.suspend(actorOf(req.actor), req.tenantId, req.reason)) };
    },
    async resumeTenant(req) {
      return { tenant: tenant(await d.lifecycle.resume(actorOf(req.actor), req.tenantId)) };
    },
    async eraseTenant(req) {
      const grace = req.graceSeconds === undefined ? undefined : Number(req.graceSeconds);
      return { tenant: tenant(await d.lifecycle.erase(actorOf(req.actor), req.tenantId, grace)) };
    },
    async cancelErasure(req) {
      return { tenant: tenant(await d.lifecycle.cancelErasure(actorOf(req.actor), req.tenantId)) };
    },
    async startExport(req) {
      return { export: exported(await d.lifecycle.startExport(actorOf(req.actor), req.tenantId)) };
    },
    async finishExport(req) {
      const counts = Object.fromEntries(Object.entries(req.counts).map(([k, v]) => [k, Number(v)]));
      return {
        export: exported(await d.lifecycle.finishExport(req.id, Buffer.from(req.archive), req.error, counts)),
      };
    },
    async getExport(req) {
      const got = await d.lifecycle.getExport(req.tenantId, req.id, req.withArchive);
      return { export: exported(got.export), ...(got.archive ? { archive: got.archive } : {}) };
    },
    async getTenant(req) {
      const t = await s.tenant(req.tenantId);
      if (!t) throw new ValoraError("NOT_FOUND", `tenant "${req.tenantId}" not found`);
      return { tenant: tenant(t) };
    },
    async setPlan(req) {
      checkPlanName(req.plan);
      const { tenant: t, previousPlan } = await s.setPlan(
        actorOf(req.actor),
        req.tenantId,
        req.plan,
        req.reason,
      );
      return { tenant: tenant(t), previousPlan };
    },
    async listTenants(req) {
      const { tenants, nextPageToken } = await d.lifecycle.list({
        name: req.name,
        plan: req.plan,
        status: req.status,
        dueForErasure: req.dueForErasure,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { tenants: tenants.map(tenant), nextPageToken };
    },
    async putUser(req) {
      const u = await s.putUser(actorOf(req.actor), req.subject, req.email, roleName(req.role));
      return { user: { ...u, role: roleOf(u.role), createdAt: ts(u.createdAt) } };
    },
    async listUsers(req) {
      return {
        users: (await s.listUsers(req.tenantId)).map((u) => ({
          ...u,
          role: roleOf(u.role),
          createdAt: ts(u.createdAt),
        })),
      };
    },
    async deleteUser(req) {
      await s.deleteUser(actorOf(req.actor), req.subject);
      return {};
    },
    async createApiKey(req) {
      const { key, secret } = await s.createApiKey(
        actorOf(req.actor),
        req.name,
        req.roles.map(roleName),
        req.assetClasses,
      );
      return { apiKey: apiKey(key), secret };
    },
    async listApiKeys(req) {
      return { apiKeys: (await s.listApiKeys(req.tenantId)).map(apiKey) };
    },
    async revokeApiKey(req) {
      return { apiKey: apiKey(await s.revokeApiKey(actorOf(req.actor), req.id)) };
    },
    async listAudit(req) {
      const rows = await s.listAudit(req.tenantId, {
        limit: req.limit,
        before: req.before,
        action: req.action,
      });
      return { entries: rows.map((r) => ({ ...r, at: ts(r.at), details: r.details as JsonObject })) };
    },
    async createWebhook(req) {
      const url = checkWebhookUrl(req.url, d.webhooks);
      const unknown = req.events.filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
      if (req.events.length === 0 || unknown.length > 0)
        throw new ValoraError(
          "INVALID_ARGUMENT",
          unknown.length ? `unknown events: ${unknown.join(", ")}` : "no events",
          { details: [{ field: "events", description: `one or more of ${WEBHOOK_EVENTS.join(", ")}` }] },
        );
      const { webhook, secret } = await s.createWebhook(actorOf(req.actor), url, [...new Set(req.events)]);
      return { webhook: { ...webhook, createdAt: ts(webhook.createdAt) }, secret };
    },
    async listWebhooks(req) {
      return {
        webhooks: (await s.listWebhooks(req.tenantId)).map((w) => ({ ...w, createdAt: ts(w.createdAt) })),
      };
    },
    async deleteWebhook(req) {
      await s.deleteWebhook(actorOf(req.actor), req.id);
      return {};
    },
    async listDeliveries(req) {
      return {
        deliveries: (await s.listDeliveries(req.tenantId, req.webhookId)).map((x) => ({
          ...x,
          nextAttemptAt: ts(x.nextAttemptAt),
          deliveredAt: ts(x.deliveredAt),
        })),
      };
    },
    async publish(req) {
      if (!req.tenantId || !req.eventId || !(WEBHOOK_EVENTS as readonly string[]).includes(req.type))
        throw new ValoraError("INVALID_ARGUMENT", "tenant_id, event_id and a known type are required", {
          details: [{ field: "type", description: WEBHOOK_EVENTS.join(", ") }],
        });
      const deliveries = await s.publish(req.tenantId, req.eventId, req.type, req.data ?? {});
      if (deliveries > 0) void d.worker?.drain().catch(() => undefined);
      return { deliveries };
    },
  });
}
