import { createHash, randomUUID } from "node:crypto";
import {
  canonicalJson,
  migrate,
  withTransaction,
  type Pool,
  type PoolClient,
  type TenantTable,
} from "@valora/kit";
import { SALES_CHANNEL, migrateSales } from "@valora/comparables";
import {
  recordHash,
  type CheckedBatch,
  type CheckedRecord,
  type RecordKind,
  type Violation,
} from "./contract.js";

const MIGRATIONS = [
  {
    id: "001_zones",
    sql: `CREATE TABLE IF NOT EXISTS ingest_batches (
        id uuid PRIMARY KEY,
        asset_class text NOT NULL,
        kind text NOT NULL,
        source text NOT NULL DEFAULT '',
        content_sha256 text NOT NULL,
        status text NOT NULL,
        records int NOT NULL DEFAULT 0,
        landed int NOT NULL DEFAULT 0,
        unchanged int NOT NULL DEFAULT 0,
        outcomes int NOT NULL DEFAULT 0,
        violation_count int NOT NULL DEFAULT 0,
        violations jsonb NOT NULL DEFAULT '[]',
        duplicate_of uuid,
        received_at timestamptz NOT NULL DEFAULT now());
      CREATE UNIQUE INDEX IF NOT EXISTS ingest_batches_content ON ingest_batches (asset_class, kind, content_sha256) WHERE status = 'landed';
      CREATE INDEX IF NOT EXISTS ingest_batches_recent ON ingest_batches (asset_class, received_at DESC);
      -- bronze: every record as received, with its batch and content hash
      CREATE TABLE IF NOT EXISTS ingest_bronze (
        batch_id uuid NOT NULL REFERENCES ingest_batches(id),
        record int NOT NULL,
        record_sha256 text NOT NULL,
        raw jsonb NOT NULL,
        PRIMARY KEY (batch_id, record));
      -- silver: validated, normalised records of landed batches
      CREATE TABLE IF NOT EXISTS ingest_silver (
        batch_id uuid NOT NULL REFERENCES ingest_batches(id),
        record int NOT NULL,
        asset_class text NOT NULL,
        kind text NOT NULL,
        id text NOT NULL,
        asset_id text,
        price double precision NOT NULL,
        sold_at date,
        attributes jsonb NOT NULL,
        record_sha256 text NOT NULL,
        PRIMARY KEY (batch_id, record));
      CREATE INDEX IF NOT EXISTS ingest_silver_id ON ingest_silver (asset_class, kind, id);
      -- the asset registry (online features), fed by listings
      CREATE TABLE IF NOT EXISTS assets (
        asset_class text NOT NULL,
        id text NOT NULL,
        attributes jsonb NOT NULL,
        asking_price double precision,
        batch_id uuid,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (asset_class, id));
      -- valuations of registered assets, scored when their sale lands
      CREATE TABLE IF NOT EXISTS valuation_log (
        id bigserial PRIMARY KEY,
        asset_class text NOT NULL,
        asset_id text NOT NULL,
        model text NOT NULL,
        model_version text NOT NULL,
        value double precision NOT NULL,
        tenant_id text NOT NULL DEFAULT '',
        valued_at timestamptz NOT NULL DEFAULT now());
      CREATE INDEX IF NOT EXISTS valuation_log_asset ON valuation_log (asset_class, asset_id);
      CREATE TABLE IF NOT EXISTS valuation_outcomes (
        valuation_id bigint NOT NULL REFERENCES valuation_log(id),
        sale_id text NOT NULL,
        asset_class text NOT NULL,
        model text NOT NULL,
        model_version text NOT NULL,
        value double precision NOT NULL,
        price double precision NOT NULL,
        ape double precision NOT NULL,
        sold_at date NOT NULL,
        batch_id uuid NOT NULL,
        PRIMARY KEY (valuation_id, sale_id));
      CREATE INDEX IF NOT EXISTS valuation_outcomes_model ON valuation_outcomes (model, model_version, sold_at)`,
  },
  {
    // Training lineage: what a model version was trained on (a snapshot of gold, or the seed).
    id: "002_lineage",
    sql: `CREATE TABLE IF NOT EXISTS gold_snapshots (
        id text PRIMARY KEY,
        asset_class text NOT NULL,
        source text NOT NULL,
        sales int NOT NULL,
        seed boolean NOT NULL DEFAULT false,
        batch_ids uuid[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS model_lineage (
        model text NOT NULL,
        version text NOT NULL,
        asset_class text NOT NULL,
        data_sha256 text NOT NULL,
        data_name text NOT NULL DEFAULT '',
        card jsonb NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (model, version))`,
  },
  {
    // Records outside the training domain land flagged; dropRecords contracts land the valid part of a batch.
    id: "003_flags",
    sql: `ALTER TABLE ingest_silver ADD COLUMN IF NOT EXISTS flags jsonb NOT NULL DEFAULT '[]';
      ALTER TABLE ingest_batches ADD COLUMN IF NOT EXISTS dropped int NOT NULL DEFAULT 0;
      ALTER TABLE ingest_batches ADD COLUMN IF NOT EXISTS flagged int NOT NULL DEFAULT 0;
      ALTER TABLE ingest_batches ADD COLUMN IF NOT EXISTS flags jsonb NOT NULL DEFAULT '[]'`,
  },
];

/** What ingestion holds of a tenant: the valuations it logged of registered assets, and their scores. */
export const INGEST_TENANT_TABLES: TenantTable[] = [
  {
    name: "ingest.valuation_outcomes",
    select:
      "SELECT o.* FROM valuation_outcomes o JOIN valuation_log l ON l.id = o.valuation_id WHERE l.tenant_id = $1",
    delete:
      "DELETE FROM valuation_outcomes o USING valuation_log l WHERE l.id = o.valuation_id AND l.tenant_id = $1",
  },
  {
    name: "ingest.valuation_log",
    select: "SELECT * FROM valuation_log WHERE tenant_id = $1 ORDER BY id",
    delete: "DELETE FROM valuation_log WHERE tenant_id = $1",
  },
];

export async function migrateIngest(pool: Pool): Promise<string[]> {
  await migrateSales(pool);
  return migrate(pool, "ingest", MIGRATIONS);
}

export interface BatchRow {
  id: string;
  assetClass: string;
  kind: RecordKind;
  source: string;
  contentSha256: string;
  status: "landed" | "quarantined" | "duplicate";
  records: number;
  landed: number;
  unchanged: number;
  outcomes: number;
  violationCount: number;
  violations: Violation[];
  /** Records refused and left in bronze while the rest landed (dropRecords). */
  dropped: number;
  /** Records landed outside the training domain, and the first of their flags. */
  flagged: number;
  flags: RecordFlag[];
  duplicateOf?: string;
  receivedAt: Date;
}

/** A landed record's field outside the training domain. */
export interface RecordFlag {
  record: number;
  field: string;
  code: string;
  message: string;
}

type DbBatch = {
  id: string;
  asset_class: string;
  kind: RecordKind;
  source: string;
  content_sha256: string;
  status: BatchRow["status"];
  records: number;
  landed: number;
  unchanged: number;
  outcomes: number;
  violation_count: number;
  violations: Violation[];
  dropped: number;
  flagged: number;
  flags: RecordFlag[];
  duplicate_of: string | null;
  received_at: Date;
};
const toBatch = (r: DbBatch): BatchRow => ({
  id: r.id,
  assetClass: r.asset_class,
  kind: r.kind,
  source: r.source,
  contentSha256: r.content_sha256,
  status: r.status,
  records: r.records,
  landed: r.landed,
  unchanged: r.unchanged,
  outcomes: r.outcomes,
  violationCount: r.violation_count,
  violations: r.violations,
  dropped: r.dropped,
  flagged: r.flagged,
  flags: r.flags,
  ...(r.duplicate_of ? { duplicateOf: r.duplicate_of } : {}),
  receivedAt: r.received_at,
});

/** At most this many violations are kept in a quarantine report (the count is kept whole). */
const REPORT_LIMIT = 200;

export interface LandInput {
  assetClass: string;
  kind: RecordKind;
  source: string;
  content: Buffer;
  rows: Record<string, unknown>[];
  /** The contract check (pure); run inside the transaction, after de-duplication. */
  check: (rows: Record<string, unknown>[]) => CheckedBatch;
}

/**
 * Lands one batch in one transaction, so it is never half-applied: a batch whose content landed
 * before is recorded as a duplicate and nothing else happens (quarantined content may be sent
 * again, say after the contract changed); otherwise its records go to
 * bronze as received; if the contract (or the immutability of landed sales) is broken the batch
 * is quarantined with its report; else the records go to silver, then gold (sales, announced on
 * SALES_CHANNEL at commit) or the asset registry (listings), and past valuations of the sold
 * assets are scored.
 */
export async function landBatch(pool: Pool, input: LandInput): Promise<BatchRow> {
  const sha = createHash("sha256").update(input.content).digest("hex");
  return withTransaction(pool, async (db) => {
    // Serialise batches of one class: de-duplication and gold conflicts are decided one at a time.
    await db.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`ingest:${input.assetClass}`]);
    const id = randomUUID();
    const prior = await db.query<{ id: string }>(
      "SELECT id FROM ingest_batches WHERE asset_class = $1 AND kind = $2 AND content_sha256 = $3 AND status = 'landed'",
      [input.assetClass, input.kind, sha],
    );
    if (prior.rows[0]) {
      return toBatch(
        (
          await db.query<DbBatch>(
            "INSERT INTO ingest_batches (id, asset_class, kind, source, content_sha256, status, records, duplicate_of) VALUES ($1, $2, $3, $4, $5, 'duplicate', $6, $7) RETURNING *",
            [id, input.assetClass, input.kind, input.source, sha, input.rows.length, prior.rows[0].id],
          )
        ).rows[0]!,
      );
    }
    await db.query(
      "INSERT INTO ingest_batches (id, asset_class, kind, source, content_sha256, status, records) VALUES ($1, $2, $3, $4, $5, 'receiving', $6)",
      [id, input.assetClass, input.kind, input.source, sha, input.rows.length],
    );
    const checked = input.check(input.rows);
    await db.query(
      `INSERT INTO ingest_bronze (batch_id, record, record_sha256, raw)
       SELECT $1, t.record, t.sha, t.raw FROM jsonb_to_recordset($2::jsonb) AS t(record int, sha text, raw jsonb)`,
      [id, JSON.stringify(input.rows.map((raw, i) => ({ record: i + 1, sha: recordHash(raw), raw })))],
    );
    let { records, violations, dropped } = checked;
    if (records.length > 0 && input.kind === "sales") {
      const conflicts = await goldConflicts(db, input.assetClass, records);
      if (conflicts.length > 0) {
        violations = [...violations, ...conflicts];
        const refused = new Set(conflicts.map((v) => v.record));
        const kept = checked.dropRecords ? records.filter((r) => !refused.has(r.record)) : [];
        dropped += records.length - kept.length;
        records = kept;
      }
    }
    if (violations.length > 0 && (!checked.dropRecords || records.length === 0)) {
      return toBatch(
        (
          await db.query<DbBatch>(
            "UPDATE ingest_batches SET status = 'quarantined', violation_count = $2, violations = $3 WHERE id = $1 RETURNING *",
            [id, violations.length, JSON.stringify(violations.slice(0, REPORT_LIMIT))],
          )
        ).rows[0]!,
      );
    }
    await db.query(
      `INSERT INTO ingest_silver (batch_id, record, asset_class, kind, id, asset_id, price, sold_at, attributes, record_sha256, flags)
       SELECT $1, t.record, $2, $3, t.id, t.asset_id, t.price, t.sold_at::date, t.attributes, t.sha, t.flags FROM jsonb_to_recordset($4::jsonb) AS t(record int, id text, asset_id text, price double precision, sold_at text, attributes jsonb, sha text, flags jsonb)`,
      [
        id,
        input.assetClass,
        input.kind,
        JSON.stringify(
          records.map((r) => ({
            record: r.record,
            id: r.id,
            asset_id: r.assetId ?? null,
            price: r.price,
            sold_at: r.soldAt ?? null,
            attributes: r.attributes,
            sha: r.sha256,
            flags: r.flags,
          })),
        ),
      ],
    );
    const flags: RecordFlag[] = records.flatMap((r) =>
      r.flags.map((f) => ({
        record: r.record,
        field: f.field.replace(/^attributes\./, ""),
        code: f.code,
        message: f.message,
      })),
    );
    let landed: number;
    let outcomes = 0;
    if (input.kind === "sales") {
      const res = await db.query(
        `INSERT INTO sales (asset_class, id, price, sold_at, lat, lon, attributes, source, batch_id, asset_id)
         SELECT $1, t.id, t.price, t.sold_at::date, t.lat, t.lon, t.attributes, $2, $3, t.asset_id FROM jsonb_to_recordset($4::jsonb) AS t(id text, price double precision, sold_at text, lat double precision, lon double precision, attributes jsonb, asset_id text)
         ON CONFLICT (asset_class, id) DO NOTHING`,
        [
          input.assetClass,
          `ingest:${input.source}`.slice(0, 200),
          id,
          JSON.stringify(
            records.map((r) => ({
              id: r.id,
              price: r.price,
              sold_at: r.soldAt,
              lat: r.lat ?? null,
              lon: r.lon ?? null,
              attributes: r.attributes,
              asset_id: r.assetId ?? null,
            })),
          ),
        ],
      );
      landed = res.rowCount ?? 0;
      outcomes = await scoreValuations(db, input.assetClass, id);
      if (landed > 0)
        await db.query("SELECT pg_notify($1, $2)", [
          SALES_CHANNEL,
          JSON.stringify({ assetClass: input.assetClass, batchId: id }),
        ]);
    } else {
      const res = await db.query(
        `INSERT INTO assets (asset_class, id, attributes, asking_price, batch_id, updated_at)
         SELECT $1, t.id, t.attributes, t.price, $2, now() FROM jsonb_to_recordset($3::jsonb) AS t(id text, attributes jsonb, price double precision)
         ON CONFLICT (asset_class, id) DO UPDATE SET attributes = EXCLUDED.attributes, asking_price = EXCLUDED.asking_price, batch_id = EXCLUDED.batch_id, updated_at = now()
           WHERE assets.attributes IS DISTINCT FROM EXCLUDED.attributes OR assets.asking_price IS DISTINCT FROM EXCLUDED.asking_price`,
        [
          input.assetClass,
          id,
          JSON.stringify(records.map((r) => ({ id: r.id, attributes: r.attributes, price: r.price }))),
        ],
      );
      landed = res.rowCount ?? 0;
    }
    return toBatch(
      (
        await db.query<DbBatch>(
          `UPDATE ingest_batches SET status = 'landed', landed = $2, unchanged = $3, outcomes = $4, dropped = $5,
             violation_count = $6, violations = $7, flagged = $8, flags = $9 WHERE id = $1 RETURNING *`,
          [
            id,
            landed,
            records.length - landed,
            outcomes,
            dropped,
            violations.length,
            JSON.stringify(violations.slice(0, REPORT_LIMIT)),
            new Set(flags.map((f) => f.record)).size,
            JSON.stringify(flags.slice(0, REPORT_LIMIT)),
          ],
        )
      ).rows[0]!,
    );
  });
}

/** Sales are immutable once in gold: a record with a landed id and different content is refused. */
async function goldConflicts(
  db: PoolClient,
  assetClass: string,
  records: CheckedRecord[],
): Promise<Violation[]> {
  const { rows } = await db.query<{
    id: string;
    price: number;
    sold_at: string | null;
    attributes: Record<string, unknown>;
  }>(
    "SELECT id, price, to_char(sold_at, 'YYYY-MM-DD') AS sold_at, attributes FROM sales WHERE asset_class = $1 AND id = ANY($2)",
    [assetClass, records.map((r) => r.id)],
  );
  const landed = new Map(rows.map((r) => [r.id, r]));
  const out: Violation[] = [];
  records.forEach((r) => {
    const g = landed.get(r.id);
    if (
      g &&
      (g.price !== r.price ||
        g.sold_at !== (r.soldAt ?? null) ||
        canonicalJson(g.attributes) !== canonicalJson(r.attributes))
    ) {
      out.push({
        record: r.record,
        field: "id",
        description: `sale ${r.id} already landed with different content; landed sales are immutable (send a new sale id)`,
      });
    }
  });
  return out;
}

/** Scores every past valuation of the assets this batch sold (each valuation and sale once). */
async function scoreValuations(db: PoolClient, assetClass: string, batchId: string): Promise<number> {
  const res = await db.query(
    `INSERT INTO valuation_outcomes (valuation_id, sale_id, asset_class, model, model_version, value, price, ape, sold_at, batch_id)
     SELECT v.id, s.id, s.asset_class, v.model, v.model_version, v.value, s.price, abs(v.value - s.price) / s.price, s.sold_at, s.batch_id
     FROM sales s JOIN valuation_log v ON v.asset_class = s.asset_class AND v.asset_id = s.asset_id
     WHERE s.asset_class = $1 AND s.batch_id = $2 AND s.asset_id IS NOT NULL AND v.valued_at::date <= s.sold_at + 1
     ON CONFLICT DO NOTHING`,
    [assetClass, batchId],
  );
  return res.rowCount ?? 0;
}

export class IngestStore {
  constructor(private readonly pool: Pool) {}

  async batch(id: string): Promise<BatchRow | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const { rows } = await this.pool.query<DbBatch>("SELECT * FROM ingest_batches WHERE id = $1", [id]);
    return rows[0] ? toBatch(rows[0]) : undefined;
  }

  async batches(o: { assetClass?: string; status?: string; limit?: number }): Promise<BatchRow[]> {
    const { rows } = await this.pool.query<DbBatch>(
      "SELECT * FROM ingest_batches WHERE ($1 = '' OR asset_class = $1) AND ($2 = '' OR status = $2) ORDER BY received_at DESC, id LIMIT $3",
      [o.assetClass ?? "", o.status ?? "", Math.min(Math.max(o.limit ?? 50, 1), 500)],
    );
    return rows.map(toBatch);
  }

  /** The batch and raw record a gold sale came from; origin "seed" for the starting data. */
  async saleLineage(
    assetClass: string,
    saleId: string,
  ): Promise<
    | { origin: "seed" | "batch"; batch?: BatchRow; raw?: Record<string, unknown>; recordSha256?: string }
    | undefined
  > {
    const { rows } = await this.pool.query<{ batch_id: string | null }>(
      "SELECT batch_id FROM sales WHERE asset_class = $1 AND id = $2",
      [assetClass, saleId],
    );
    if (!rows[0]) return undefined;
    if (!rows[0].batch_id) return { origin: "seed" };
    const batch = await this.batch(rows[0].batch_id);
    const raw = await this.pool.query<{ raw: Record<string, unknown>; record_sha256: string }>(
      "SELECT b.raw, b.record_sha256 FROM ingest_silver s JOIN ingest_bronze b ON b.batch_id = s.batch_id AND b.record = s.record WHERE s.batch_id = $1 AND s.id = $2 AND s.kind = 'sales'",
      [rows[0].batch_id, saleId],
    );
    return {
      origin: "batch",
      ...(batch ? { batch } : {}),
      ...(raw.rows[0] ? { raw: raw.rows[0].raw, recordSha256: raw.rows[0].record_sha256 } : {}),
    };
  }

  async asset(
    assetClass: string,
    id: string,
  ): Promise<
    | { attributes: Record<string, unknown>; askingPrice?: number; batchId?: string; updatedAt: Date }
    | undefined
  > {
    const { rows } = await this.pool.query<{
      attributes: Record<string, unknown>;
      asking_price: number | null;
      batch_id: string | null;
      updated_at: Date;
    }>(
      "SELECT attributes, asking_price, batch_id, updated_at FROM assets WHERE asset_class = $1 AND id = $2",
      [assetClass, id],
    );
    const r = rows[0];
    return r
      ? {
          attributes: r.attributes,
          ...(r.asking_price !== null ? { askingPrice: r.asking_price } : {}),
          ...(r.batch_id ? { batchId: r.batch_id } : {}),
          updatedAt: r.updated_at,
        }
      : undefined;
  }

  async recordValuations(
    v: {
      assetClass: string;
      assetId: string;
      model: string;
      modelVersion: string;
      value: number;
      tenantId: string;
      valuedAt?: Date;
    }[],
  ): Promise<number> {
    if (v.length === 0) return 0;
    const res = await this.pool.query(
      `INSERT INTO valuation_log (asset_class, asset_id, model, model_version, value, tenant_id, valued_at)
       SELECT t.asset_class, t.asset_id, t.model, t.model_version, t.value, t.tenant_id, coalesce(t.valued_at, now()) FROM jsonb_to_recordset($1::jsonb) AS t(asset_class text, asset_id text, model text, model_version text, value double precision, tenant_id text, valued_at timestamptz)`,
      [
        JSON.stringify(
          v.map((x) => ({
            asset_class: x.assetClass,
            asset_id: x.assetId,
            model: x.model,
            model_version: x.modelVersion,
            value: x.value,
            tenant_id: x.tenantId,
            valued_at: x.valuedAt?.toISOString() ?? null,
          })),
        ),
      ],
    );
    return res.rowCount ?? 0;
  }

  /** Gold sales of a class with their lineage, in landing order (for exports). */
  async goldSales(assetClass: string): Promise<
    {
      id: string;
      price: number;
      soldAt: string | null;
      attributes: Record<string, unknown>;
      batchId: string | null;
    }[]
  > {
    const { rows } = await this.pool.query<{
      id: string;
      price: number;
      sold_at: string | null;
      attributes: Record<string, unknown>;
      batch_id: string | null;
    }>(
      "SELECT id, price, to_char(sold_at, 'YYYY-MM-DD') AS sold_at, attributes, batch_id FROM sales WHERE asset_class = $1 ORDER BY seq",
      [assetClass],
    );
    return rows.map((r) => ({
      id: r.id,
      price: r.price,
      soldAt: r.sold_at,
      attributes: r.attributes,
      batchId: r.batch_id,
    }));
  }

  async registerModel(m: {
    model: string;
    version: string;
    assetClass: string;
    dataSha256: string;
    dataName: string;
    card: Record<string, unknown>;
  }): Promise<SnapshotRow | undefined> {
    await this.pool.query(
      `INSERT INTO model_lineage (model, version, asset_class, data_sha256, data_name, card) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (model, version) DO UPDATE SET asset_class = EXCLUDED.asset_class, data_sha256 = EXCLUDED.data_sha256, data_name = EXCLUDED.data_name, card = EXCLUDED.card, registered_at = now()`,
      [m.model, m.version, m.assetClass, m.dataSha256, m.dataName, JSON.stringify(m.card)],
    );
    return this.snapshot(m.dataSha256);
  }

  async snapshot(id: string): Promise<SnapshotRow | undefined> {
    const { rows } = await this.pool.query<DbSnapshot>("SELECT * FROM gold_snapshots WHERE id = $1", [id]);
    return rows[0] ? toSnapshot(rows[0]) : undefined;
  }

  async modelLineage(
    model: string,
    version: string,
  ): Promise<
    | {
        assetClass: string;
        dataSha256: string;
        dataName: string;
        registeredAt: Date;
        snapshot?: SnapshotRow;
        batches: BatchRow[];
      }
    | undefined
  > {
    const { rows } = await this.pool.query<{
      asset_class: string;
      data_sha256: string;
      data_name: string;
      registered_at: Date;
    }>(
      "SELECT asset_class, data_sha256, data_name, registered_at FROM model_lineage WHERE model = $1 AND version = $2",
      [model, version],
    );
    const r = rows[0];
    if (!r) return undefined;
    const snapshot = await this.snapshot(r.data_sha256);
    const batches =
      snapshot && snapshot.batchIds.length > 0
        ? (
            await this.pool.query<DbBatch>(
              "SELECT * FROM ingest_batches WHERE id = ANY($1) ORDER BY received_at",
              [snapshot.batchIds],
            )
          ).rows.map(toBatch)
        : [];
    return {
      assetClass: r.asset_class,
      dataSha256: r.data_sha256,
      dataName: r.data_name,
      registeredAt: r.registered_at,
      ...(snapshot ? { snapshot } : {}),
      batches,
    };
  }

  /** Realised MdAPE and PPE10 (percent) per version and sale month, and per version overall. */
  async realised(model: string): Promise<{ periods: RealisedRow[]; overall: RealisedRow[] }> {
    const q = (groupMonth: boolean) =>
      this.pool.query<{ model_version: string; month: string; count: string; mdape: number; ppe10: number }>(
        `SELECT model_version, ${groupMonth ? "to_char(sold_at, 'YYYY-MM')" : "''"} AS month, count(*) AS count,
                100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY ape) AS mdape, 100 * avg((ape <= 0.10 + 1e-9)::int) AS ppe10
         FROM valuation_outcomes WHERE model = $1 GROUP BY 1, 2 ORDER BY 1, 2`,
        [model],
      );
    const rows = (r: Awaited<ReturnType<typeof q>>) =>
      r.rows.map((x) => ({
        modelVersion: x.model_version,
        month: x.month,
        count: Number(x.count),
        mdape: Number(x.mdape),
        ppe10: Number(x.ppe10),
      }));
    const [periods, overall] = await Promise.all([q(true), q(false)]);
    return { periods: rows(periods), overall: rows(overall) };
  }
}

export interface SnapshotRow {
  id: string;
  assetClass: string;
  source: string;
  sales: number;
  seed: boolean;
  batchIds: string[];
  createdAt: Date;
}

type DbSnapshot = {
  id: string;
  asset_class: string;
  source: string;
  sales: number;
  seed: boolean;
  batch_ids: string[];
  created_at: Date;
};
const toSnapshot = (r: DbSnapshot): SnapshotRow => ({
  id: r.id,
  assetClass: r.asset_class,
  source: r.source,
  sales: r.sales,
  seed: r.seed,
  batchIds: r.batch_ids,
  createdAt: r.created_at,
});

/** Records a snapshot; the same id again keeps the first record (same bytes, same data). */
export async function registerSnapshot(pool: Pool, s: Omit<SnapshotRow, "createdAt">): Promise<SnapshotRow> {
  await pool.query(
    "INSERT INTO gold_snapshots (id, asset_class, source, sales, seed, batch_ids) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    [s.id, s.assetClass, s.source, s.sales, s.seed, s.batchIds],
  );
  const { rows } = await pool.query<DbSnapshot>("SELECT * FROM gold_snapshots WHERE id = $1", [s.id]);
  return toSnapshot(rows[0]!);
}

export interface RealisedRow {
  modelVersion: string;
  month: string;
  count: number;
  mdape: number;
  ppe10: number;
}
