import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { IngestBatch, IngestService } from "@valora/proto/valora/v1/ingest_pb";
import { ValoraError, okEnvelope, type Client } from "@valora/kit";
import { ROLE_SETS, mayValue } from "../auth.js";
import { ErrorEnvelope, envelopeOf } from "../schemas.js";

const Violation = z.object({ record: z.number(), field: z.string(), description: z.string() });
const Batch = z.object({
  id: z.string(),
  assetClass: z.string(),
  kind: z.string(),
  source: z.string(),
  contentSha256: z.string(),
  status: z.enum(["landed", "quarantined", "duplicate"]),
  records: z.number(),
  landed: z.number(),
  unchanged: z.number(),
  outcomes: z.number(),
  violationCount: z.number(),
  violations: z.array(Violation),
  duplicateOf: z.string().nullable(),
  receivedAt: z.string().nullable(),
});
const batchJson = (b: IngestBatch | undefined) => ({
  id: b?.id ?? "",
  assetClass: b?.assetClass ?? "",
  kind: b?.kind ?? "",
  source: b?.source ?? "",
  contentSha256: b?.contentSha256 ?? "",
  status: (b?.status ?? "landed") as "landed" | "quarantined" | "duplicate",
  records: b?.records ?? 0,
  landed: b?.landed ?? 0,
  unchanged: b?.unchanged ?? 0,
  outcomes: b?.outcomes ?? 0,
  violationCount: b?.violationCount ?? 0,
  violations: (b?.violations ?? []).map((v) => ({ record: v.record, field: v.field, description: v.description })),
  duplicateOf: b?.duplicateOf || null,
  receivedAt: b?.receivedAt ? timestampDate(b.receivedAt).toISOString() : null,
});
const FORMATS: Record<string, "csv" | "json" | "ndjson"> = { "text/csv": "csv", "application/csv": "csv", "application/json": "json", "application/x-ndjson": "ndjson", "application/ndjson": "ndjson" };
const Name = z.string().min(1).max(100);

/**
 * Data feeds and what they made: sales and listings pushed in (CSV, JSON, NDJSON), their batches
 * (landed, quarantined with the contract report, duplicates), lineage of gold sales, the asset
 * registry. Landed sales are shared by every tenant's comparables, so pushing them is an admin's.
 */
export const ingestRoutes: FastifyPluginAsync<{ ingest: Client<typeof IngestService>; timeoutMs: number; maxBytes: number }> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.addContentTypeParser(Object.keys(FORMATS), { parseAs: "buffer", bodyLimit: o.maxBytes }, (_req, body, done) => done(null, body));

  app.post(
    "/v1/ingest/:assetClass/:kind",
    {
      bodyLimit: o.maxBytes,
      config: { roles: ROLE_SETS.admin },
      schema: {
        tags: ["data"],
        summary: "Push a batch of sales or listings (text/csv, application/json array, application/x-ndjson)",
        description: "The batch lands whole (bronze → silver → gold) or is quarantined whole with the contract violations; content landed before is a duplicate. Landed sales join comparables at once; sales of registered assets score their past valuations.",
        params: z.strictObject({ assetClass: Name, kind: z.enum(["sales", "listings"]) }),
        querystring: z.strictObject({ source: z.string().max(200).optional() }),
        response: { 200: envelopeOf(Batch), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      const format = FORMATS[type];
      if (!format || !Buffer.isBuffer(req.body) || req.body.length === 0) throw new ValoraError("INVALID_ARGUMENT", "send the batch as the body: text/csv, application/json (an array) or application/x-ndjson", { details: [{ field: "body", description: "a non-empty batch" }] });
      const { batch } = await o.ingest.ingest({ assetClass: req.params.assetClass, kind: req.params.kind, format, content: req.body, source: req.query.source ?? `api:${req.principal!.tenantName}/${req.principal!.subject}` }, { timeoutMs: Math.max(o.timeoutMs, 60_000) });
      return okEnvelope(batchJson(batch), req.id);
    },
  );

  app.get(
    "/v1/ingest/batches",
    { config: { roles: ROLE_SETS.read }, schema: { tags: ["data"], summary: "Recent batches, newest first", querystring: z.strictObject({ assetClass: Name.optional(), status: z.enum(["landed", "quarantined", "duplicate"]).optional(), limit: z.coerce.number().int().min(1).max(500).optional() }), response: { 200: envelopeOf(z.array(Batch)), "4xx": ErrorEnvelope } } },
    async (req) => {
      const { batches } = await o.ingest.listBatches({ assetClass: req.query.assetClass ?? "", status: req.query.status ?? "", limit: req.query.limit ?? 50 }, { timeoutMs: o.timeoutMs });
      return okEnvelope(batches.filter((b) => mayValue(req.principal!, b.assetClass)).map(batchJson), req.id);
    },
  );

  app.get("/v1/ingest/batches/:id", { config: { roles: ROLE_SETS.read }, schema: { tags: ["data"], summary: "One batch and its contract report", params: z.strictObject({ id: z.string().min(1).max(100) }), response: { 200: envelopeOf(Batch), "4xx": ErrorEnvelope } } }, async (req) => {
    const { batch } = await o.ingest.getBatch({ id: req.params.id }, { timeoutMs: o.timeoutMs });
    if (!batch || !mayValue(req.principal!, batch.assetClass)) throw new ValoraError("NOT_FOUND", `batch "${req.params.id}" not found`);
    return okEnvelope(batchJson(batch), req.id);
  });

  app.get(
    "/v1/lineage/sales/:assetClass/:id",
    { config: { roles: ROLE_SETS.read }, schema: { tags: ["data"], summary: "Where a comparable sale came from: its batch and raw record, or the seed data", params: z.strictObject({ assetClass: Name, id: z.string().min(1).max(200) }), response: { 200: envelopeOf(z.object({ assetClass: z.string(), saleId: z.string(), origin: z.string(), batch: Batch.nullable(), raw: z.record(z.string(), z.unknown()).nullable(), recordSha256: z.string().nullable() })), "4xx": ErrorEnvelope } } },
    async (req) => {
      if (!mayValue(req.principal!, req.params.assetClass)) throw new ValoraError("NOT_FOUND", `asset class "${req.params.assetClass}" not found`);
      const l = await o.ingest.saleLineage({ assetClass: req.params.assetClass, saleId: req.params.id }, { timeoutMs: o.timeoutMs });
      return okEnvelope({ assetClass: l.assetClass, saleId: l.saleId, origin: l.origin, batch: l.batch ? batchJson(l.batch) : null, raw: (l.raw as Record<string, unknown> | undefined) ?? null, recordSha256: l.recordSha256 || null }, req.id);
    },
  );

  app.get(
    "/v1/assets/:assetClass/:id",
    { config: { roles: ROLE_SETS.read }, schema: { tags: ["data"], summary: "An asset of the registry (value it with {assetClass, assetId})", params: z.strictObject({ assetClass: Name, id: z.string().min(1).max(200) }), response: { 200: envelopeOf(z.object({ assetClass: z.string(), assetId: z.string(), attributes: z.record(z.string(), z.unknown()), askingPrice: z.number().nullable(), batchId: z.string().nullable(), updatedAt: z.string().nullable() })), "4xx": ErrorEnvelope } } },
    async (req) => {
      if (!mayValue(req.principal!, req.params.assetClass)) throw new ValoraError("NOT_FOUND", `asset class "${req.params.assetClass}" not found`);
      const { asset } = await o.ingest.getAsset({ assetClass: req.params.assetClass, assetId: req.params.id }, { timeoutMs: o.timeoutMs });
      return okEnvelope({ assetClass: req.params.assetClass, assetId: req.params.id, attributes: (asset?.attributes as Record<string, unknown> | undefined) ?? {}, askingPrice: asset?.askingPrice || null, batchId: asset?.batchId || null, updatedAt: asset?.updatedAt ? timestampDate(asset.updatedAt).toISOString() : null }, req.id);
    },
  );
};
