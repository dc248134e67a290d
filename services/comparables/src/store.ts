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
];

export async function migrateSales(pool: Pool): Promise<void> {
  await migrate(pool, "comparables", SALES_MIGRATIONS);
}

/**
 * Idempotent: re-seeding or replaying a batch inserts nothing twice (a sale stored before its date
 * was known gets the date). Returns rows inserted or dated.
 */
export async function insertSales(pool: Pool, assetClass: string, sales: Sale[], source = "seed"): Promise<number> {
  let inserted = 0;
  for (let i = 0; i < sales.length; i += 500) {
    const chunk = sales.slice(i, i + 500);
    const res = await pool.query(
      `INSERT INTO sales (asset_class, id, price, sold_at, lat, lon, attributes, source)
       SELECT $1, t.id, t.price, t.sold_at::date, t.lat, t.lon, t.attributes, $2
       FROM jsonb_to_recordset($3::jsonb) AS t(id text, price double precision, sold_at text, lat double precision, lon double precision, attributes jsonb)
       ON CONFLICT (asset_class, id) DO UPDATE SET sold_at = EXCLUDED.sold_at
         WHERE sales.sold_at IS NULL AND EXCLUDED.sold_at IS NOT NULL`,
      [assetClass, source, JSON.stringify(chunk.map((s) => ({ id: s.id, price: s.price, sold_at: s.soldAt ?? null, lat: s.lat ?? null, lon: s.lon ?? null, attributes: s.attributes })))],
    );
    inserted += res.rowCount ?? 0;
  }
  return inserted;
}

export async function loadSales(pool: Pool, assetClass: string): Promise<Sale[]> {
  const { rows } = await pool.query<{ id: string; price: number; sold_at: string | null; lat: number | null; lon: number | null; attributes: Record<string, AttributeValue> }>(
    "SELECT id, price, to_char(sold_at, 'YYYY-MM-DD') AS sold_at, lat, lon, attributes FROM sales WHERE asset_class = $1 ORDER BY id",
    [assetClass],
  );
  return rows.map((r) => ({
    id: r.id,
    price: r.price,
    ...(r.sold_at ? { soldAt: r.sold_at } : {}),
    ...(r.lat !== null && r.lon !== null ? { lat: r.lat, lon: r.lon } : {}),
    attributes: r.attributes,
  }));
}
