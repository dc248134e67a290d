import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { IngestService } from "@valora/proto/valora/v1/ingest_pb";
import { ValoraError, implement, type Logger, type ServiceRegistration } from "@valora/kit";
import { checkBatch, type ClassSchema, type RecordKind } from "./contract.js";
import { driftOf } from "./outcomes.js";
import { parseBatch, type BatchFormat } from "./parse.js";
import { goldCsv } from "./export.js";
import { landBatch, registerSnapshot, type BatchRow, type IngestStore, type SnapshotRow } from "./store.js";
import type { Pool } from "@valora/kit";

export interface IngestServiceDeps {
  pool: Pool;
  store: IngestStore;
  /** The asset classes' schemas (from their AssetPipelines); undefined for an unknown class. */
  schema: (assetClass: string) => ClassSchema | undefined;
  /** Asset class of a model (its AssetPipeline), for the drift threshold. */
  classOfModel: (model: string) => string | undefined;
  logger: Logger;
  now?: () => Date;
  /** Called when a landed batch leaves a model's latest realised MdAPE above its contract's threshold. */
  onDrift?: (e: {
    model: string;
    modelVersion: string;
    month: string;
    mdape: number;
    thresholdPct: number;
  }) => void;
  /** Largest batch accepted, in bytes. */
  maxBytes?: number;
}

const bad = (field: string, description: string) =>
  new ValoraError("INVALID_ARGUMENT", `${field}: ${description}`, { details: [{ field, description }] });

const snapshotProto = (x: SnapshotRow) => ({
  id: x.id,
  assetClass: x.assetClass,
  source: x.source,
  sales: x.sales,
  seed: x.seed,
  batchIds: x.batchIds,
  createdAt: timestampFromDate(x.createdAt),
});

const toProto = (b: BatchRow) => ({
  id: b.id,
  assetClass: b.assetClass,
  kind: b.kind,
  source: b.source,
  contentSha256: b.contentSha256,
  status: b.status,
  records: b.records,
  landed: b.landed,
  unchanged: b.unchanged,
  violations: b.violations.map((v) => ({ record: v.record, field: v.field, description: v.description })),
  violationCount: b.violationCount,
  receivedAt: timestampFromDate(b.receivedAt),
  duplicateOf: b.duplicateOf ?? "",
  outcomes: b.outcomes,
  dropped: b.dropped,
  flagged: b.flagged,
  flags: b.flags,
});

/** valora.v1.IngestService. Callers are trusted services (the gateway checks roles and tenants). */
export function ingestService(d: IngestServiceDeps): ServiceRegistration {
  const now = d.now ?? (() => new Date());
  const schemaOf = (assetClass: string) => {
    const s = d.schema(assetClass);
    if (!s)
      throw new ValoraError("NOT_FOUND", `asset class "${assetClass}" not found`, {
        details: [{ field: "asset_class", description: "no AssetPipeline declares it" }],
      });
    return s;
  };
  const thresholdOf = (model: string) => d.schema(d.classOfModel(model) ?? "")?.contract.driftMdapePct ?? 15;
  return implement(IngestService, {
    async ingest(req) {
      const schema = schemaOf(req.assetClass);
      if (req.kind !== "sales" && req.kind !== "listings") throw bad("kind", 'must be "sales" or "listings"');
      const format = (req.format || "csv") as BatchFormat;
      if (!["csv", "json", "ndjson"].includes(format)) throw bad("format", "must be csv, json or ndjson");
      if (req.content.length > (d.maxBytes ?? 20 * 1024 * 1024))
        throw bad("content", `larger than ${d.maxBytes ?? 20 * 1024 * 1024} bytes`);
      const rows = parseBatch(Buffer.from(req.content), format);
      const at = now();
      const kind: RecordKind = req.kind;
      const batch = await landBatch(d.pool, {
        assetClass: req.assetClass,
        kind,
        source: req.source.slice(0, 200),
        content: Buffer.from(req.content),
        rows,
        check: (r) => checkBatch(kind, r, schema, at),
      });
      d.logger.info(
        {
          batch: batch.id,
          assetClass: batch.assetClass,
          kind,
          status: batch.status,
          records: batch.records,
          landed: batch.landed,
          violations: batch.violationCount,
          outcomes: batch.outcomes,
        },
        batch.status === "quarantined" ? "batch quarantined: contract broken" : `batch ${batch.status}`,
      );
      if (batch.outcomes > 0 && d.onDrift) {
        const models = await d.pool.query<{ model: string }>(
          "SELECT DISTINCT model FROM valuation_outcomes WHERE batch_id = $1",
          [batch.id],
        );
        for (const { model } of models.rows) {
          const threshold = thresholdOf(model);
          const { drift, latest } = driftOf((await d.store.realised(model)).periods, threshold);
          if (drift && latest)
            d.onDrift({
              model,
              modelVersion: latest.modelVersion,
              month: latest.month,
              mdape: latest.mdape,
              thresholdPct: threshold,
            });
        }
      }
      return { batch: toProto(batch) };
    },
    async getBatch(req) {
      const b = await d.store.batch(req.id);
      if (!b) throw new ValoraError("NOT_FOUND", `batch "${req.id}" not found`);
      return { batch: toProto(b) };
    },
    async listBatches(req) {
      return {
        batches: (
          await d.store.batches({ assetClass: req.assetClass, status: req.status, limit: req.limit || 50 })
        ).map(toProto),
      };
    },
    async saleLineage(req) {
      const l = await d.store.saleLineage(req.assetClass, req.saleId);
      if (!l) throw new ValoraError("NOT_FOUND", `sale "${req.saleId}" of "${req.assetClass}" not found`);
      return {
        assetClass: req.assetClass,
        saleId: req.saleId,
        origin: l.origin,
        ...(l.batch ? { batch: toProto(l.batch) } : {}),
        ...(l.raw ? { raw: l.raw as never } : {}),
        recordSha256: l.recordSha256 ?? "",
      };
    },
    async getAsset(req) {
      const a = await d.store.asset(req.assetClass, req.assetId);
      if (!a)
        throw new ValoraError(
          "NOT_FOUND",
          `asset "${req.assetId}" of "${req.assetClass}" is not in the registry`,
          { details: [{ field: "assetId", description: "not registered (land a listing for it)" }] },
        );
      return {
        asset: {
          assetClass: req.assetClass,
          assetId: req.assetId,
          attributes: a.attributes as never,
          askingPrice: a.askingPrice ?? 0,
          batchId: a.batchId ?? "",
          updatedAt: timestampFromDate(a.updatedAt),
        },
      };
    },
    async recordValuations(req) {
      const rows = req.valuations.filter(
        (v) => v.assetId && v.assetClass && v.model && v.modelVersion && Number.isFinite(v.value),
      );
      return {
        recorded: await d.store.recordValuations(
          rows.map((v) => ({
            assetClass: v.assetClass,
            assetId: v.assetId,
            model: v.model,
            modelVersion: v.modelVersion,
            value: v.value,
            tenantId: v.tenantId,
            ...(v.valuedAt ? { valuedAt: timestampDate(v.valuedAt) } : {}),
          })),
        ),
      };
    },
    async exportGold(req) {
      const schema = schemaOf(req.assetClass);
      if (!req.target || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(req.target))
        throw bad("target", "the price column's name, e.g. Sale_Price");
      const sales = await d.store.goldSales(req.assetClass);
      if (sales.length === 0)
        throw new ValoraError("FAILED_PRECONDITION", `no gold sales of "${req.assetClass}" to export`);
      const { csv, sha256 } = goldCsv(
        sales,
        { fields: schema.fields, ...(schema.soldAt ? { soldAt: schema.soldAt } : {}) },
        req.target,
      );
      const batchIds = [...new Set(sales.flatMap((x) => (x.batchId ? [x.batchId] : [])))];
      const snapshot = await registerSnapshot(d.pool, {
        id: sha256,
        assetClass: req.assetClass,
        source: "gold-export",
        sales: sales.length,
        seed: sales.some((x) => !x.batchId),
        batchIds,
      });
      d.logger.info(
        { assetClass: req.assetClass, snapshot: sha256, sales: sales.length, batches: batchIds.length },
        "gold exported for training",
      );
      return { csv: Buffer.from(csv), snapshot: snapshotProto(snapshot) };
    },
    async registerModel(req) {
      const card = (req.card ?? {}) as { data?: { sha256?: unknown; name?: unknown } };
      const sha = typeof card.data?.sha256 === "string" ? card.data.sha256 : "";
      if (!req.model || !req.version) throw bad(req.model ? "version" : "model", "required");
      if (!/^[0-9a-f]{64}$/.test(sha))
        throw bad("card.data.sha256", "the model card must name its training data's sha256");
      const snapshot = await d.store.registerModel({
        model: req.model,
        version: req.version,
        assetClass: req.assetClass,
        dataSha256: sha,
        dataName: typeof card.data?.name === "string" ? card.data.name : "",
        card: req.card as Record<string, unknown>,
      });
      return { snapshotId: snapshot?.id ?? "" };
    },
    async modelLineage(req) {
      const l = await d.store.modelLineage(req.model, req.version);
      if (!l)
        throw new ValoraError("NOT_FOUND", `no lineage recorded for ${req.model}@${req.version}`, {
          details: [
            {
              field: "version",
              description: "register its model card (valora up does for the default models)",
            },
          ],
        });
      return {
        model: req.model,
        version: req.version,
        assetClass: l.assetClass,
        ...(l.snapshot ? { snapshot: snapshotProto(l.snapshot) } : {}),
        batches: l.batches.map(toProto),
        dataSha256: l.dataSha256,
        dataName: l.dataName,
        registeredAt: timestampFromDate(l.registeredAt),
      };
    },
    async realisedPerformance(req) {
      if (!req.model) throw bad("model", "required");
      const { periods, overall } = await d.store.realised(req.model);
      const threshold = thresholdOf(req.model);
      return {
        model: req.model,
        periods,
        overall,
        drift: driftOf(periods, threshold).drift,
        driftThresholdMdape: threshold,
      };
    },
  });
}
