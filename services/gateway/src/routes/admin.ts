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
const Any = z.unknown();
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
  const doc = <E extends object = object>(tag: string, summary: string, extra?: E) => ({
    tags: [tag],
    summary,
    response: { 200: envelopeOf(Any), "4xx": ErrorEnvelope },
    ...(extra as E),
  });

  app.get(
    "/v1/tenant",
    { config: { roles: ROLES.any }, schema: doc("tenant", "The caller's tenant and principal") },
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
    { config: { roles: ROLES.admin }, schema: doc("api-keys", "List API keys (never their secrets)") },
    async (req) =>
      okEnvelope((await t.listApiKeys({ tenantId: tenantId(req) }, opts)).apiKeys.map(apiKeyJson), req.id),
  );

  app.post(
    "/v1/api-keys",
    {
      config: { roles: ROLES.admin },
      schema: doc("api-keys", "Create an API key; the secret is in this response only", { body: CreateKey }),
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
    { config: { roles: ROLES.admin }, schema: doc("api-keys", "Revoke an API key", { params: IdParam }) },
    async (req) =>
      okEnvelope(
        apiKeyJson((await t.revokeApiKey({ actor: actor(req), id: req.params.id }, opts)).apiKey!),
        req.id,
      ),
  );

  app.get(
    "/v1/users",
    { config: { roles: ROLES.admin }, schema: doc("users", "List users (OIDC subjects) and their roles") },
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
      schema: doc("users", "Create or update a user's role", { params: SubjectParam, body: PutUser }),
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
    { config: { roles: ROLES.admin }, schema: doc("users", "Remove a user", { params: SubjectParam }) },
    async (req) => {
      await t.deleteUser({ actor: actor(req), subject: req.params.subject }, opts);
      return okEnvelope({ deleted: true }, req.id);
    },
  );

  app.get(
    "/v1/audit",
    {
      config: { roles: ROLES.audit },
      schema: doc("audit", "The tenant's audit log, newest first", { querystring: AuditQuery }),
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
    { config: { roles: ROLES.hooks }, schema: doc("webhooks", "List webhooks") },
    async (req) =>
      okEnvelope((await t.listWebhooks({ tenantId: tenantId(req) }, opts)).webhooks.map(hook), req.id),
  );

  app.post(
    "/v1/webhooks",
    {
      config: { roles: ROLES.hooks },
      schema: doc("webhooks", "Register a webhook; the signing secret is in this response only", {
        body: CreateWebhook,
      }),
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
    { config: { roles: ROLES.hooks }, schema: doc("webhooks", "Delete a webhook", { params: IdParam }) },
    async (req) => {
      await t.deleteWebhook({ actor: actor(req), id: req.params.id }, opts);
      return okEnvelope({ deleted: true }, req.id);
    },
  );

  app.get(
    "/v1/webhooks/:id/deliveries",
    {
      config: { roles: ROLES.hooks },
      schema: doc("webhooks", "Recent deliveries of a webhook", { params: IdParam }),
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
