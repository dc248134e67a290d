import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type {
  IngestBatch,
  IngestService,
  Snapshot as ProtoSnapshot,
} from "@valora/proto/valora/v1/ingest_pb";
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
  dropped: z
    .number()
    .describe("Records refused and left in bronze while the rest landed (onViolation: dropRecords)"),
  flagged: z.number().describe("Records landed outside the training domain"),
  flags: z.array(
    z.object({
      record: z.number(),
      field: z.string(),
      code: z.enum(["OUTSIDE_TRAINING_RANGE", "UNSEEN_CATEGORY"]),
      message: z.string(),
    }),
  ),
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
  violations: (b?.violations ?? []).map((v) => ({
    record: v.record,
    field: v.field,
    description: v.description,
  })),
  dropped: b?.dropped ?? 0,
  flagged: b?.flagged ?? 0,
  flags: (b?.flags ?? []).map((f) => ({
    record: f.record,
    field: f.field,
    code: f.code === "UNSEEN_CATEGORY" ? ("UNSEEN_CATEGORY" as const) : ("OUTSIDE_TRAINING_RANGE" as const),
    message: f.message,
  })),
  duplicateOf: b?.duplicateOf || null,
  receivedAt: b?.receivedAt ? timestampDate(b.receivedAt).toISOString() : null,
});
const Snapshot = z.object({
  id: z.string(),
  assetClass: z.string(),
  source: z.string(),
  sales: z.number(),
  seed: z.boolean(),
  batchIds: z.array(z.string()),
  createdAt: z.string().nullable(),
});
const snapshotJson = (x: ProtoSnapshot | undefined) =>
  x
    ? {
        id: x.id,
        assetClass: x.assetClass,
        source: x.source,
        sales: x.sales,
        seed: x.seed,
        batchIds: x.batchIds,
        createdAt: x.createdAt ? timestampDate(x.createdAt).toISOString() : null,
      }
    : null;
const FORMATS: Record<string, "csv" | "json" | "ndjson"> = {
  "text/csv": "csv",
  "application/csv": "csv",
  "application/json": "json",
  "application/x-ndjson": "ndjson",
  "application/ndjson": "ndjson",
};
const Name = z.string().min(1).max(100);

/**
 * Data feeds and what they made: sales and listings pushed in (CSV, JSON, NDJSON), their batches
 * (landed, quarantined with the contract report, duplicates), lineage of gold sales, the asset
 * registry. Landed sales are shared by every tenant's comparables, so pushing them is an admin's.
 */
export const ingestRoutes: FastifyPluginAsync<{
  ingest: Client<typeof IngestService>;
  timeoutMs: number;
  maxBytes: number;
}> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.addContentTypeParser(
    Object.keys(FORMATS),
    { parseAs: "buffer", bodyLimit: o.maxBytes },
    (_req, body, done) => done(null, body),
  );

  app.post(
    "/v1/ingest/:assetClass/:kind",
    {
      bodyLimit: o.maxBytes,
      config: { roles: ROLE_SETS.admin },
      schema: {
        tags: ["data"],
        summary: "Push a batch of sales or listings (text/csv, application/json array, application/x-ndjson)",
        description:
          "The batch lands whole (bronze → silver → gold) or is quarantined whole with the contract violations; content landed before is a duplicate. Landed sales join comparables at once; sales of registered assets score their past valuations.",
        params: z.strictObject({ assetClass: Name, kind: z.enum(["sales", "listings"]) }),
        querystring: z.strictObject({ source: z.string().max(200).optional() }),
        response: { 200: envelopeOf(Batch), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      const format = FORMATS[type];
      if (!format || !Buffer.isBuffer(req.body) || req.body.length === 0)
        throw new ValoraError(
          "INVALID_ARGUMENT",
          "send the batch as the body: text/csv, application/json (an array) or application/x-ndjson",
          { details: [{ field: "body", description: "a non-empty batch" }] },
        );
      const { batch } = await o.ingest.ingest(
        {
          assetClass: req.params.assetClass,
          kind: req.params.kind,
          format,
          content: req.body,
          source: req.query.source ?? `api:${req.principal!.tenantName}/${req.principal!.subject}`,
        },
        { timeoutMs: Math.max(o.timeoutMs, 60_000) },
      );
      return okEnvelope(batchJson(batch), req.id);
    },
  );

  app.get(
    "/v1/ingest/batches",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["data"],
        summary: "Recent batches, newest first",
        querystring: z.strictObject({
          assetClass: Name.optional(),
          status: z.enum(["landed", "quarantined", "duplicate"]).optional(),
          limit: z.coerce.number().int().min(1).max(500).optional(),
        }),
        response: { 200: envelopeOf(z.array(Batch)), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const { batches } = await o.ingest.listBatches(
        {
          assetClass: req.query.assetClass ?? "",
          status: req.query.status ?? "",
          limit: req.query.limit ?? 50,
        },
        { timeoutMs: o.timeoutMs },
      );
      return okEnvelope(batches.filter((b) => mayValue(req.principal!, b.assetClass)).map(batchJson), req.id);
    },
  );

  app.get(
    "/v1/ingest/batches/:id",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["data"],
        summary: "One batch and its contract report",
        params: z.strictObject({ id: z.string().min(1).max(100) }),
        response: { 200: envelopeOf(Batch), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const { batch } = await o.ingest.getBatch({ id: req.params.id }, { timeoutMs: o.timeoutMs });
      if (!batch || !mayValue(req.principal!, batch.assetClass))
        throw new ValoraError("NOT_FOUND", `batch "${req.params.id}" not found`);
      return okEnvelope(batchJson(batch), req.id);
    },
  );

  app.get(
    "/v1/lineage/sales/:assetClass/:id",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["data"],
        summary: "Where a comparable sale came from: its batch and raw record, or the seed data",
        params: z.strictObject({ assetClass: Name, id: z.string().min(1).max(200) }),
        response: {
          200: envelopeOf(
            z.object({
              assetClass: z.string(),
              saleId: z.string(),
              origin: z.string(),
              batch: Batch.nullable(),
              raw: z.record(z.string(), z.unknown()).nullable(),
              recordSha256: z.string().nullable(),
            }),
          ),
          "4xx": ErrorEnvelope,
        },
      },
    },
    async (req) => {
      if (!mayValue(req.principal!, req.params.assetClass))
        throw new ValoraError("NOT_FOUND", `asset class "${req.params.assetClass}" not found`);
      const l = await o.ingest.saleLineage(
        { assetClass: req.params.assetClass, saleId: req.params.id },
        { timeoutMs: o.timeoutMs },
      );
      return okEnvelope(
        {
          assetClass: l.assetClass,
          saleId: l.saleId,
          origin: l.origin,
          batch: l.batch ? batchJson(l.batch) : null,
          raw: (l.raw as Record<string, unknown> | undefined) ?? null,
          recordSha256: l.recordSha256 || null,
        },
        req.id,
      );
    },
  );

  app.get(
    "/v1/assets/:assetClass/:id",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["data"],
        summary: "An asset of the registry (value it with {assetClass, assetId})",
        params: z.strictObject({ assetClass: Name, id: z.string().min(1).max(200) }),
        response: {
          200: envelopeOf(
            z.object({
              assetClass: z.string(),
              assetId: z.string(),
              attributes: z.record(z.string(), z.unknown()),
              askingPrice: z.number().nullable(),
              batchId: z.string().nullable(),
              updatedAt: z.string().nullable(),
            }),
          ),
          "4xx": ErrorEnvelope,
        },
      },
    },
    async (req) => {
      if (!mayValue(req.principal!, req.params.assetClass))
        throw new ValoraError("NOT_FOUND", `asset class "${req.params.assetClass}" not found`);
      const { asset } = await o.ingest.getAsset(
        { assetClass: req.params.assetClass, assetId: req.params.id },
        { timeoutMs: o.timeoutMs },
      );
      return okEnvelope(
        {
          assetClass: req.params.assetClass,
          assetId: req.params.id,
          attributes: (asset?.attributes as Record<string, unknown> | undefined) ?? {},
          askingPrice: asset?.askingPrice || null,
          batchId: asset?.batchId || null,
          updatedAt: asset?.updatedAt ? timestampDate(asset.updatedAt).toISOString() : null,
        },
        req.id,
      );
    },
  );

  app.get(
    "/v1/ingest/export/:assetClass",
    {
      config: { roles: ROLE_SETS.admin },
      schema: {
        tags: ["data"],
        summary: "Gold sales as a training CSV (for valora train), recorded as a snapshot",
        description:
          "The response's x-valora-snapshot header is the snapshot id: the CSV's sha256, which the trained model's card names as its data.",
        params: z.strictObject({ assetClass: Name }),
        querystring: z.strictObject({
          target: z
            .string()
            .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
            .max(100),
        }),
      },
    },
    async (req, reply) => {
      if (!mayValue(req.principal!, req.params.assetClass))
        throw new ValoraError("NOT_FOUND", `asset class "${req.params.assetClass}" not found`);
      const { csv, snapshot } = await o.ingest.exportGold(
        { assetClass: req.params.assetClass, target: req.query.target },
        { timeoutMs: Math.max(o.timeoutMs, 60_000) },
      );
      return reply
        .type("text/csv; charset=utf-8")
        .header("x-valora-snapshot", snapshot?.id ?? "")
        .header("content-disposition", `attachment; filename="${req.params.assetClass}-gold.csv"`)
        .send(Buffer.from(csv));
    },
  );

  app.post(
    "/v1/lineage/models",
    {
      config: { roles: ROLE_SETS.admin },
      schema: {
        tags: ["data"],
        summary: "Record a model version's training data from its model card",
        body: z.strictObject({
          model: Name,
          version: z.string().min(1).max(100),
          assetClass: Name,
          card: z.record(z.string(), z.unknown()),
        }),
        response: { 200: envelopeOf(z.object({ snapshotId: z.string().nullable() })), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const { snapshotId } = await o.ingest.registerModel(
        {
          model: req.body.model,
          version: req.body.version,
          assetClass: req.body.assetClass,
          card: req.body.card as never,
        },
        { timeoutMs: o.timeoutMs },
      );
      return okEnvelope({ snapshotId: snapshotId || null }, req.id);
    },
  );

  app.get(
    "/v1/lineage/models/:name/versions/:version",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["data"],
        summary: "The data a model version was trained on: its snapshot and the batches (or seed) behind it",
        params: z.strictObject({ name: Name, version: z.string().min(1).max(100) }),
        response: {
          200: envelopeOf(
            z.object({
              model: z.string(),
              version: z.string(),
              assetClass: z.string(),
              dataSha256: z.string(),
              dataName: z.string(),
              snapshot: Snapshot.nullable(),
              batches: z.array(Batch),
            }),
          ),
          "4xx": ErrorEnvelope,
        },
      },
    },
    async (req) => {
      const l = await o.ingest.modelLineage(
        { model: req.params.name, version: req.params.version },
        { timeoutMs: o.timeoutMs },
      );
      if (!mayValue(req.principal!, l.assetClass))
        throw new ValoraError(
          "NOT_FOUND",
          `no lineage recorded for ${req.params.name}@${req.params.version}`,
        );
      return okEnvelope(
        {
          model: l.model,
          version: l.version,
          assetClass: l.assetClass,
          dataSha256: l.dataSha256,
          dataName: l.dataName,
          snapshot: snapshotJson(l.snapshot),
          batches: l.batches.map(batchJson),
        },
        req.id,
      );
    },
  );
};
