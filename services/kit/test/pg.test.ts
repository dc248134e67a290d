import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgPool, migrate, pgReady, withTransaction, type Pool } from "@valora/kit";

const url = process.env["DATABASE_URL"];

describe.skipIf(!url)("postgres helpers (real PostgreSQL at DATABASE_URL)", () => {
  let pool: Pool;
  const component = `kit_test_${process.pid}`;
  const table = `kit_test_items_${process.pid}`;

  beforeAll(() => {
    pool = createPgPool({ url: url!, max: 4 });
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.query("DELETE FROM schema_migrations WHERE component = $1", [component]);
    await pool.end();
  });

  it("reports readiness", async () => {
    expect(await pgReady(pool)).toBe(true);
  });

  it("applies each migration exactly once even when replicas migrate concurrently", async () => {
    const migrations = [
      { id: "001_create", sql: `CREATE TABLE ${table} (id int PRIMARY KEY, name text NOT NULL)` },
      { id: "002_seed", sql: `INSERT INTO ${table} VALUES (1, 'one')` },
    ];
    const results = await Promise.all([1, 2, 3].map(() => migrate(pool, component, migrations)));
    expect(results.flat().sort()).toEqual(["001_create", "002_seed"]);
    expect(await migrate(pool, component, migrations)).toEqual([]);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table}`);
    expect(rows[0]).toEqual({ n: 1 });
  });

  it("commits on success and rolls back when the function throws", async () => {
    await withTransaction(pool, (c) => c.query(`INSERT INTO ${table} VALUES (2, 'two')`));
    await expect(
      withTransaction(pool, async (c) => {
        await c.query(`INSERT INTO ${table} VALUES (3, 'three')`);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    const { rows } = await pool.query(`SELECT id FROM ${table} ORDER BY id`);
    expect(rows.map((r: { id: number }) => r.id)).toEqual([1, 2]);
  });
});

describe.runIf(!url)("postgres helpers", () => {
  it.skip("skipped: DATABASE_URL is not set (run scripts/local-db.sh or .ci/run to start PostgreSQL on loopback)", () =>
    undefined);
});
