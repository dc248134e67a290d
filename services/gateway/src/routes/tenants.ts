import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Tenant, TenantExport, TenantService } from "@valora/proto/valora/v1/tenants_pb";
import type { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { ValoraError, okEnvelope, type Client } from "@valora/kit";
import { ROLE_SETS, roleEnum, roleNames } from "../auth.js";
import { iso } from "../valuation-json.js";
import { CreateKey, ErrorEnvelope, RoleName, envelopeOf } from "../schemas.js";
import type { TenantLifecycleOps } from "../tenant-lifecycle.js";
import { apiKeyJson } from "./admin.js";

const PlanName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,39}$/)
  .describe("A plan name (GET /v1/plans)");
const TenantName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{1,62}$/)
  .describe("2-63 lowercase letters, digits and dashes");
const Status = z.enum(["active", "suspended", "erasing"]);

const TenantJson = z.object({
  id: z.string(),
  name: z.string(),
  plan: z.string(),
  status: Status,
  platformAdmin: z.boolean(),
  createdAt: z.string().nullable(),
  suspendedAt: z.string().nullable(),
  suspendReason: z.string().nullable(),
  eraseAfter: z.string().nullable().describe("When the purge runs (status erasing); cancellable until then"),
  keyCount: z.number().describe("API keys not revoked"),
});
const ExportJson = z.object({
  id: z.string(),
  tenantId: z.string(),
  status: z.enum(["running", "succeeded", "failed"]),
  createdAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  size: z.number(),
  error: z.string().nullable(),
  counts: z.record(z.string(), z.number()).describe("Rows per section of the archive"),
  download: z.string().nullable().describe("Where the gzip'd JSON archive is, once succeeded"),
});
const KeyJson = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  roles: z.array(z.string()),
  assetClasses: z.array(z.string()),
  createdAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  secret: z.string().describe("Shown once"),
});

const IdParam = z.strictObject({ id: z.string().min(1).max(100) });
const ExportParam = z.strictObject({ id: z.string().min(1).max(100), exportId: z.string().min(1).max(100) });
const CreateTenantBody = z.strictObject({
  name: TenantName,
  plan: PlanName.optional(),
  admin: z
    .strictObject({
      subject: z.string().min(1).max(255).describe("OIDC subject (sub) to invite"),
      email: z.string().max(320).optional(),
      role: RoleName.optional(),
    })
    .optional()
    .describe("With OIDC: invite this subject instead of minting a first API key"),
});
const ListQuery = z.strictObject({
  name: z.string().max(63).optional().describe("Name contains"),
  plan: PlanName.optional(),
  status: Status.optional(),
  pageSize: z.coerce.number().int().min(1).max(500).optional(),
  pageToken: z.string().max(200).optional(),
});
const PatchBody = z
  .strictObject({ name: TenantName.optional(), plan: PlanName.optional() })
  .refine((b) => b.name !== undefined || b.plan !== undefined, { message: "name or plan" });
const SuspendBody = z.strictObject({ reason: z.string().max(500).optional() });
const EraseQuery = z.strictObject({
  graceSeconds: z.coerce
    .number()
    .int()
    .min(0)
    .max(365 * 24 * 3600)
    .optional()
    .describe("Grace period before the purge (default 7 days)"),
});

const tenantJson = (t: Tenant) => ({
  id: t.id,
  name: t.name,
  plan: t.plan,
  status: (["active", "suspended", "erasing"].includes(t.status) ? t.status : "active") as z.infer<
    typeof Status
  >,
  platformAdmin: t.platformAdmin,
  createdAt: iso(t.createdAt),
  suspendedAt: iso(t.suspendedAt),
  suspendReason: t.suspendReason || null,
  eraseAfter: iso(t.eraseAfter),
  keyCount: t.keyCount,
});
const exportJson = (e: TenantExport) => ({
  id: e.id,
  tenantId: e.tenantId,
  status: e.status as "running" | "succeeded" | "failed",
  createdAt: iso(e.createdAt),
  finishedAt: iso(e.finishedAt),
  size: Number(e.size),
  error: e.error || null,
  counts: Object.fromEntries(Object.entries(e.counts).map(([k, v]) => [k, Number(v)])),
  download: e.status === "succeeded" ? `/v1/tenants/${e.tenantId}/exports/${e.id}/archive` : null,
});
/** A key just minted: as the API shows keys, with its secret this once. */
const keyJson = (k: Parameters<typeof apiKeyJson>[0], secret: string) => ({ ...apiKeyJson(k), secret });

/** Pure: the first and last day of the month of `now`, as the usage service takes them. */
const monthOf = (now: Date) => {
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const last = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0));
  return { from: first.toISOString().slice(0, 10), to: last.toISOString().slice(0, 10) };
};

/**
 * The tenant lifecycle for platform administrators (an admin of a platform tenant): onboard with a
 * first key or an invitation, list, read, change, mint keys for, suspend, resume, export, erase.
 * Every change is audited by the tenants service in both tenants' logs.
 */
export const tenantRoutes: FastifyPluginAsync<{
  tenants: Client<typeof TenantService>;
  usage?: Client<typeof UsageService>;
  ops: TenantLifecycleOps;
  timeoutMs: number;
}> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const t = o.tenants;
  const opts = { timeoutMs: o.timeoutMs };
  const config = { roles: ROLE_SETS.admin, platformAdmin: true };
  const actor = (req: FastifyRequest) => ({
    tenantId: req.principal!.tenantId,
    subject: req.principal!.subject,
    ip: req.ip,
  });
  const doc = (summary: string) => ({
    tags: ["tenants"],
    summary,
    response: { 200: envelopeOf(z.unknown()), "4xx": ErrorEnvelope },
  });

  app.post(
    "/v1/tenants",
    {
      config,
      schema: {
        ...doc("Onboard a tenant: its first admin API key (shown once), or an invitation of an OIDC subject"),
        body: CreateTenantBody,
        response: {
          201: envelopeOf(
            z.object({ tenant: TenantJson, apiKey: KeyJson.nullable(), invitation: z.unknown().nullable() }),
          ),
          "4xx": ErrorEnvelope,
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const res = await t.createTenant(
        {
          actor: actor(req),
          name: b.name,
          plan: b.plan ?? "free",
          ...(b.admin
            ? {
                adminSubject: b.admin.subject,
                adminEmail: b.admin.email ?? "",
                adminRole: roleEnum(b.admin.role ?? "admin")!,
              }
            : {}),
        },
        opts,
      );
      return reply.code(201).send(
        okEnvelope(
          {
            tenant: tenantJson(res.tenant!),
            apiKey: res.firstKey ? keyJson(res.firstKey, res.firstKeySecret) : null,
            invitation: res.invitation
              ? {
                  subject: res.invitation.subject,
                  email: res.invitation.email,
                  role: roleNames([res.invitation.role])[0] ?? "admin",
                }
              : null,
          },
          req.id,
        ),
      );
    },
  );

  app.get(
    "/v1/tenants",
    { config, schema: { ...doc("Tenants, by name, filtered and paged"), querystring: ListQuery } },
    async (req) => {
      const q = req.query;
      const res = await t.listTenants(
        {
          name: q.name ?? "",
          plan: q.plan ?? "",
          status: q.status ?? "",
          pageSize: q.pageSize ?? 50,
          pageToken: q.pageToken ?? "",
        },
        opts,
      );
      return okEnvelope(
        { tenants: res.tenants.map(tenantJson), nextPageToken: res.nextPageToken || null },
        req.id,
      );
    },
  );

  app.get(
    "/v1/tenants/:id",
    { config, schema: { ...doc("A tenant with its key count and this month's usage"), params: IdParam } },
    async (req) => {
      const { tenant } = await t.getTenant({ tenantId: req.params.id }, opts);
      const month = monthOf(new Date());
      const usage = o.usage
        ? (await o.usage.queryUsage({ tenantId: tenant!.id, ...month }, opts)).days.reduce(
            (acc, d) => ({ ...acc, [d.kind]: (acc[d.kind] ?? 0) + Number(d.units) }),
            {} as Record<string, number>,
          )
        : null;
      return okEnvelope(
        { ...tenantJson(tenant!), usageThisMonth: usage ? { ...month, units: usage } : null },
        req.id,
      );
    },
  );

  app.patch(
    "/v1/tenants/:id",
    { config, schema: { ...doc("Change a tenant's name or plan"), params: IdParam, body: PatchBody } },
    async (req) => {
      const { tenant } = await t.updateTenant(
        {
          actor: actor(req),
          tenantId: req.params.id,
          ...(req.body.name !== undefined ? { name: req.body.name } : {}),
          ...(req.body.plan !== undefined ? { plan: req.body.plan } : {}),
        },
        opts,
      );
      return okEnvelope(tenantJson(tenant!), req.id);
    },
  );

  app.post(
    "/v1/tenants/:id/api-keys",
    {
      config,
      schema: {
        ...doc("Mint an API key for a tenant (audited in both tenants' logs); the secret is shown once"),
        params: IdParam,
        body: CreateKey,
        response: { 201: envelopeOf(KeyJson), "4xx": ErrorEnvelope },
      },
    },
    async (req, reply) => {
      const res = await t.createTenantApiKey(
        {
          actor: actor(req),
          tenantId: req.params.id,
          name: req.body.name,
          roles: req.body.roles.map((r) => roleEnum(r)!),
          assetClasses: req.body.assetClasses ?? [],
        },
        opts,
      );
      return reply.code(201).send(okEnvelope(keyJson(res.apiKey!, res.secret), req.id));
    },
  );

  app.post(
    "/v1/tenants/:id/suspend",
    {
      config,
      schema: {
        ...doc(
          "Suspend a tenant: its keys and tokens answer 403 TENANT_SUSPENDED, its jobs and webhooks pause",
        ),
        params: IdParam,
        body: SuspendBody,
      },
    },
    async (req) =>
      okEnvelope(tenantJson(await o.ops.suspend(actor(req), req.params.id, req.body.reason ?? "")), req.id),
  );

  app.post(
    "/v1/tenants/:id/resume",
    { config, schema: { ...doc("Resume a suspended tenant"), params: IdParam } },
    async (req) => okEnvelope(tenantJson(await o.ops.resume(actor(req), req.params.id)), req.id),
  );

  app.delete(
    "/v1/tenants/:id",
    {
      config,
      schema: {
        ...doc(
          "Mark a tenant for erasure: credentials refused at once, every row purged after the grace period",
        ),
        params: IdParam,
        querystring: EraseQuery,
        response: { 202: envelopeOf(TenantJson), "4xx": ErrorEnvelope },
      },
    },
    async (req, reply) =>
      reply
        .code(202)
        .send(
          okEnvelope(
            tenantJson(await o.ops.erase(actor(req), req.params.id, req.query.graceSeconds)),
            req.id,
          ),
        ),
  );

  app.post(
    "/v1/tenants/:id/restore",
    { config, schema: { ...doc("Cancel a pending erasure"), params: IdParam } },
    async (req) => okEnvelope(tenantJson(await o.ops.cancelErasure(actor(req), req.params.id)), req.id),
  );

  app.post(
    "/v1/tenants/:id/exports",
    {
      config,
      schema: {
        ...doc("Export everything held for a tenant, as a job; download the archive when it has succeeded"),
        params: IdParam,
        response: { 202: envelopeOf(ExportJson), "4xx": ErrorEnvelope },
      },
    },
    async (req, reply) =>
      reply
        .code(202)
        .send(okEnvelope(exportJson(await o.ops.startExport(actor(req), req.params.id)), req.id)),
  );

  app.get(
    "/v1/tenants/:id/exports/:exportId",
    { config, schema: { ...doc("An export's status and counts"), params: ExportParam } },
    async (req) => {
      const { export: e } = await t.getExport({ tenantId: req.params.id, id: req.params.exportId }, opts);
      return okEnvelope(exportJson(e!), req.id);
    },
  );

  app.get(
    "/v1/tenants/:id/exports/:exportId/archive",
    {
      config,
      schema: {
        tags: ["tenants"],
        summary: "The export archive: gzip'd JSON (format valora.tenant-export/v1)",
        params: ExportParam,
      },
    },
    async (req, reply) => {
      const res = await t.getExport(
        { tenantId: req.params.id, id: req.params.exportId, withArchive: true },
        opts,
      );
      if (res.export!.status !== "succeeded")
        throw new ValoraError("FAILED_PRECONDITION", `the export is ${res.export!.status}`, {
          details: [{ field: "exportId", description: res.export!.error || "not ready yet" }],
        });
      return reply
        .type("application/gzip")
        .header(
          "content-disposition",
          `attachment; filename="tenant-${req.params.id}-${req.params.exportId}.json.gz"`,
        )
        .send(Buffer.from(res.archive));
    },
  );
};
