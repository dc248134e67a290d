import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Role, TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { okEnvelope, type Client } from "@valora/kit";
import { ROLE_SETS, roleEnum, roleNames } from "../auth.js";
import { iso } from "../valuation-json.js";
import {
  AuditQuery,
  CreateKey,
  CreateWebhook,
  ErrorEnvelope,
  IdParam,
  PutUser,
  envelopeOf,
} from "../schemas.js";

const ROLES = ROLE_SETS;
const roleName = (r: Role) => roleNames([r])[0];
// Role names here have passed the RoleName schema, so each has a proto role.
const roleValue = (name: string) => roleEnum(name)!;
const ts = z.string().nullable();
const RoleName = z.enum(ROLES.any);
const TenantJson = z.object({
  id: z.string(),
  name: z.string(),
  plan: z.string(),
  createdAt: ts,
  principal: z.object({ subject: z.string(), roles: z.array(RoleName), assetClasses: z.array(z.string()) }),
});
const ApiKeyJson = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  roles: z.array(RoleName),
  assetClasses: z.array(z.string()),
  createdAt: ts,
  lastUsedAt: ts,
  revokedAt: ts,
});
const UserJson = z.object({ subject: z.string(), email: z.string(), role: RoleName, createdAt: ts });
const AuditJson = z.object({
  id: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  ip: z.string(),
  at: ts,
  details: z.record(z.string(), z.unknown()),
});
const WebhookJson = z.object({ id: z.string(), url: z.string(), events: z.array(z.string()), createdAt: ts });
const DeliveryJson = z.object({
  id: z.string(),
  eventId: z.string(),
  eventType: z.string(),
  status: z.string(),
  attempts: z.number(),
  lastStatusCode: z.number(),
  lastError: z.string(),
  nextAttemptAt: ts,
  deliveredAt: ts,
});
const Deleted = z.object({ deleted: z.boolean() });
const SubjectParam = z.strictObject({ subject: z.string().min(1).max(255) });

/** Pure: an API key as REST shows it (never its secret or hash). */
export const apiKeyJson = (k: {
  id: string;
  name: string;
  prefix: string;
  roles: Role[];
  assetClasses: string[];
  createdAt?: Timestamp;
  lastUsedAt?: Timestamp;
  revokedAt?: Timestamp;
}) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  roles: roleNames(k.roles),
  assetClasses: k.assetClasses,
  createdAt: iso(k.createdAt),
  lastUsedAt: iso(k.lastUsedAt),
  revokedAt: iso(k.revokedAt),
});

/** Tenant administration: the tenant itself, API keys, users, audit log, webhooks. Tenant-scoped by the caller's principal. */
export const adminRoutes: FastifyPluginAsync<{
  tenants: Client<typeof TenantService>;
  timeoutMs: number;
  /** Drops the tenant's cached principals on every replica: a revoked key is refused at once. */
  tenantChanged?: (tenantId: string) => void;
}> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const t = o.tenants;
  const opts = { timeoutMs: o.timeoutMs };
  const actor = (req: FastifyRequest) => ({
    tenantId: req.principal!.tenantId,
    subject: req.principal!.subject,
    ip: req.ip,
  });
  const tenantId = (req: FastifyRequest) => req.principal!.tenantId;
  const doc = <E extends object = object>(
    tag: string,
    summary: string,
    data: z.ZodType,
    extra?: E,
    status = 200,
  ) => ({
    tags: [tag],
    summary,
    response: { [status]: envelopeOf(data), "4xx": ErrorEnvelope },
    ...(extra as E),
  });

  app.get(
    "/v1/tenant",
    { config: { roles: ROLES.any }, schema: doc("tenant", "The caller's tenant and principal", TenantJson) },
    async (req) => {
      const { tenant } = await t.getTenant({ tenantId: tenantId(req) }, opts);
      const p = req.principal!;
      return okEnvelope(
        {
          id: tenant!.id,
          name: tenant!.name,
          plan: tenant!.plan,
          createdAt: iso(tenant!.createdAt),
          principal: { subject: p.subject, roles: p.roles, assetClasses: p.assetClasses },
        },
        req.id,
      );
    },
  );

  app.get(
    "/v1/api-keys",
    {
      config: { roles: ROLES.admin },
      schema: doc("api-keys", "List API keys (never their secrets)", z.array(ApiKeyJson)),
    },
    async (req) =>
      okEnvelope((await t.listApiKeys({ tenantId: tenantId(req) }, opts)).apiKeys.map(apiKeyJson), req.id),
  );

  app.post(
    "/v1/api-keys",
    {
      config: { roles: ROLES.admin },
      schema: doc(
        "api-keys",
        "Create an API key; the secret is in this response only",
        ApiKeyJson.extend({ secret: z.string() }),
        { body: CreateKey },
        201,
      ),
    },
    async (req, reply) => {
      const res = await t.createApiKey(
        {
          actor: actor(req),
          name: req.body.name,
          roles: req.body.roles.map(roleValue),
          assetClasses: req.body.assetClasses ?? [],
        },
        opts,
      );
      return reply.code(201).send(okEnvelope({ ...apiKeyJson(res.apiKey!), secret: res.secret }, req.id));
    },
  );

  app.delete(
    "/v1/api-keys/:id",
    {
      config: { roles: ROLES.admin },
      schema: doc("api-keys", "Revoke an API key", ApiKeyJson, { params: IdParam }),
    },
    async (req) => {
      const { apiKey } = await t.revokeApiKey({ actor: actor(req), id: req.params.id }, opts);
      o.tenantChanged?.(tenantId(req));
      return okEnvelope(apiKeyJson(apiKey!), req.id);
    },
  );

  app.get(
    "/v1/users",
    {
      config: { roles: ROLES.admin },
      schema: doc("users", "List users (OIDC subjects) and their roles", z.array(UserJson)),
    },
    async (req) =>
      okEnvelope(
        (await t.listUsers({ tenantId: tenantId(req) }, opts)).users.map((u) => ({
          subject: u.subject,
          email: u.email,
          role: roleName(u.role),
          createdAt: iso(u.createdAt),
        })),
        req.id,
      ),
  );

  app.put(
    "/v1/users/:subject",
    {
      config: { roles: ROLES.admin },
      schema: doc("users", "Create or update a user's role", UserJson, {
        params: SubjectParam,
        body: PutUser,
      }),
    },
    async (req) => {
      const { user } = await t.putUser(
        {
          actor: actor(req),
          subject: req.params.subject,
          email: req.body.email ?? "",
          role: roleValue(req.body.role),
        },
        opts,
      );
      return okEnvelope(
        {
          subject: user!.subject,
          email: user!.email,
          role: roleName(user!.role),
          createdAt: iso(user!.createdAt),
        },
        req.id,
      );
    },
  );

  app.delete(
    "/v1/users/:subject",
    {
      config: { roles: ROLES.admin },
      schema: doc("users", "Remove a user", Deleted, { params: SubjectParam }),
    },
    async (req) => {
      await t.deleteUser({ actor: actor(req), subject: req.params.subject }, opts);
      return okEnvelope({ deleted: true }, req.id);
    },
  );

  app.get(
    "/v1/audit",
    {
      config: { roles: ROLES.audit },
      schema: doc("audit", "The tenant's audit log, newest first", z.array(AuditJson), {
        querystring: AuditQuery,
      }),
    },
    async (req) => {
      const { entries } = await t.listAudit(
        {
          tenantId: tenantId(req),
          limit: req.query.limit ?? 100,
          before: req.query.before ?? "",
          action: req.query.action ?? "",
        },
        opts,
      );
      return okEnvelope(
        entries.map((e) => ({
          id: e.id,
          actor: e.actor,
          action: e.action,
          target: e.target,
          ip: e.ip,
          at: iso(e.at),
          details: e.details ?? {},
        })),
        req.id,
      );
    },
  );

  const hook = (w: { id: string; url: string; events: string[]; createdAt?: Timestamp }) => ({
    id: w.id,
    url: w.url,
    events: w.events,
    createdAt: iso(w.createdAt),
  });
  app.get(
    "/v1/webhooks",
    { config: { roles: ROLES.hooks }, schema: doc("webhooks", "List webhooks", z.array(WebhookJson)) },
    async (req) =>
      okEnvelope((await t.listWebhooks({ tenantId: tenantId(req) }, opts)).webhooks.map(hook), req.id),
  );

  app.post(
    "/v1/webhooks",
    {
      config: { roles: ROLES.hooks },
      schema: doc(
        "webhooks",
        "Register a webhook; the signing secret is in this response only",
        WebhookJson.extend({ secret: z.string() }),
        { body: CreateWebhook },
        201,
      ),
    },
    async (req, reply) => {
      const res = await t.createWebhook(
        { actor: actor(req), url: req.body.url, events: req.body.events },
        opts,
      );
      return reply.code(201).send(okEnvelope({ ...hook(res.webhook!), secret: res.secret }, req.id));
    },
  );

  app.delete(
    "/v1/webhooks/:id",
    {
      config: { roles: ROLES.hooks },
      schema: doc("webhooks", "Delete a webhook", Deleted, { params: IdParam }),
    },
    async (req) => {
      await t.deleteWebhook({ actor: actor(req), id: req.params.id }, opts);
      return okEnvelope({ deleted: true }, req.id);
    },
  );

  app.get(
    "/v1/webhooks/:id/deliveries",
    {
      config: { roles: ROLES.hooks },
      schema: doc("webhooks", "Recent deliveries of a webhook", z.array(DeliveryJson), { params: IdParam }),
    },
    async (req) =>
      okEnvelope(
        (await t.listDeliveries({ tenantId: tenantId(req), webhookId: req.params.id }, opts)).deliveries.map(
          (x) => ({
            id: x.id,
            eventId: x.eventId,
            eventType: x.eventType,
            status: x.status,
            attempts: x.attempts,
            lastStatusCode: x.lastStatusCode,
            lastError: x.lastError,
            nextAttemptAt: iso(x.nextAttemptAt),
            deliveredAt: iso(x.deliveredAt),
          }),
        ),
        req.id,
      ),
  );
};
