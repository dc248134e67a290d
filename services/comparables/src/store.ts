import { migrate, type Pool } from "@valora/kit";
import type { AttributeValue, Sale } from "./engine.js";

export const SALES_MIGRATIONS = [
  {
    id: "001_sales",
    sql: `CREATE TABLE IF NOT EXISTS sales (
      asset_class text NOT NULL,
      id text NOT NULL,
      price double precision NOT NULL CHECK (price > 0),
      sold_at date,
      lat double precision,
      lon double precision,
      attributes jsonb NOT NULL DEFAULT '{}',
      source text NOT NULL DEFAULT 'seed',
      inserted_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (asset_class, id))`,
  },
  {
    // Gold lineage: the ingest batch a sale landed in (NULL for the seed), the registry asset it
    // sold, and a landing sequence readers follow to pick up new sales incrementally.
    id: "002_sales_lineage",
    sql: `ALTER TABLE sales ADD COLUMN IF NOT EXISTS batch_id uuid;
      ALTER TABLE sales ADD COLUMN IF NOT EXISTS asset_id text;
      ALTER TABLE sales ADD COLUMN IF NOT EXISTS seq bigserial;
      CREATE INDEX IF NOT EXISTS sales_class_seq ON sales (asset_class, seq);
      CREATE INDEX IF NOT EXISTS sales_asset ON sales (asset_class, asset_id) WHERE asset_id IS NOT NULL`,
  },
];

/** Postgres channel announcing landed gold sales: payload {"assetClass", "batchId", "seq"}. */
export const SALES_CHANNEL = "valora_sales";

export async function migrateSales(pool: Pool): Promise<void> {
  await migrate(pool, "comparables", SALES_MIGRATIONS);
}

/**
 * Idempotent: re-seeding or replaying a batch inserts nothing twice (a sale stored before its date
 * was known gets the date). Returns rows inserted or dated.
 */
export async function insertSales(
  pool: Pool,
  assetClass: string,
  sales: Sale[],
  source = "seed",
): Promise<number> {
  let inserted = 0;
  for (let i = 0; i < sales.length; i += 500) {
    const chunk = sales.slice(i, i + 500);
    const res = await pool.query(
      `INSERT INTO sales (asset_class, id, price, sold_at, lat, lon, attributes, source)
       SELECT $1, t.id, t.price, t.sold_at::date, t.lat, t.lon, t.attributes, $2
       FROM jsonb_to_recordset($3::jsonb) AS t(id text, price double precision, sold_at text, lat double precision, lon double precision, attributes jsonb)
       ON CONFLICT (asset_class, id) DO UPDATE SET sold_at = EXCLUDED.sold_at
         WHERE sales.sold_at IS NULL AND EXCLUDED.sold_at IS NOT NULL`,
      [
        assetClass,
        source,
        JSON.stringify(
          chunk.map((s) => ({
            id: s.id,
            price: s.price,
            sold_at: s.soldAt ?? null,
            lat: s.lat ?? null,
            lon: s.lon ?? null,
            attributes: s.attributes,
          })),
        ),
      ],
    );
    inserted += res.rowCount ?? 0;
  }
  return inserted;
}

export async function loadSales(pool: Pool, assetClass: string): Promise<Sale[]> {
  return (await loadSalesSince(pool, assetClass, 0)).sales;
}

/** Sales that landed after sequence number `seq`, and the highest sequence number seen. */
/** A `sales` row as the readers below select it. */
interface SaleRow {
  id: string;
  price: number;
  sold_at: string | null;
  lat: number | null;
  lon: number | null;
  attributes: Record<string, AttributeValue>;
}

const SALE_COLUMNS = "id, price, to_char(sold_at, 'YYYY-MM-DD') AS sold_at, lat, lon, attributes";

/** Pure: a comparable sale of its row. */
const toSale = (r: SaleRow): Sale => ({
  id: r.id,
  price: r.price,
  ...(r.sold_at ? { soldAt: r.sold_at } : {}),
  ...(r.lat !== null && r.lon !== null ? { lat: r.lat, lon: r.lon } : {}),
  attributes: r.attributes,
});

/**
 * The most recent landed sales of an asset class a backtest may use: sales that came through
 * ingestion (the seed is the default models' training data), minus those in a gold snapshot that
 * training lineage records for one of `versions` of `model` (what they were trained on). Newest
 * first, at most `limit`, sold on or after `since` (YYYY-MM-DD) when given.
 */
export async function loadBacktestSales(
  pool: Pool,
  o: { assetClass: string; model: string; versions: string[]; limit: number; since?: string },
): Promise<{ sales: Sale[]; excludedAsTraining: number }> {
  // Lineage lives in the ingest service's tables; without them nothing is excluded.
  const lineage = await pool
    .query<{ batch_ids: string[] }>(
      `SELECT g.batch_ids FROM model_lineage l JOIN gold_snapshots g ON g.id = l.data_sha256
        WHERE l.model = $1 AND l.version = ANY($2)`,
      [o.model, o.versions],
    )
    .then((r) => r.rows.flatMap((x) => x.batch_ids))
    .catch(() => [] as string[]);
  const { rows } = await pool.query<SaleRow>(
    `SELECT ${SALE_COLUMNS}
       FROM sales
      WHERE asset_class = $1 AND batch_id IS NOT NULL AND NOT (batch_id = ANY($2::uuid[]))
        AND ($4::date IS NULL OR sold_at >= $4::date)
      ORDER BY sold_at DESC NULLS LAST, seq DESC
      LIMIT $3`,
    [o.assetClass, lineage, o.limit, o.since ?? null],
  );
  const trained = await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM sales WHERE asset_class = $1 AND batch_id = ANY($2::uuid[])",
    [o.assetClass, lineage],
  );
  return {
    excludedAsTraining: trained.rows[0]?.n ?? 0,
    sales: rows.map(toSale),
  };
}

export async function loadSalesSince(
  pool: Pool,
  assetClass: string,
  seq: number,
): Promise<{ sales: Sale[]; seq: number }> {
  const { rows } = await pool.query<SaleRow & { seq: string }>(
    `SELECT ${SALE_COLUMNS}, seq FROM sales WHERE asset_class = $1 AND seq > $2 ORDER BY seq`,
    [assetClass, seq],
  );
  return {
    seq: rows.reduce((m, r) => Math.max(m, Number(r.seq)), seq),
    sales: rows.map(toSale),
  };
}
