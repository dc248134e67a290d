import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgPool, migrate, pgReady, preparedStatement, withTransaction, type Pool } from "@valora/kit";

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

describe.skipIf(!url)("a prepared statement (real PostgreSQL at DATABASE_URL)", () => {
  it("is prepared once per connection, answers each call's values, and survives a refused call", async () => {
    const pool = createPgPool({ url: url!, max: 1 });
    try {
      const text = "SELECT $1::int * 2 AS doubled, 1 / $2::int AS inverse";
      const run = preparedStatement(pool, text);
      const answers = [];
      for (let i = 1; i <= 3; i++) answers.push((await run<{ doubled: number }>([i, 1])).rows[0]!.doubled);
      expect(answers).toEqual([2, 4, 6]);
      // Division by zero: Postgres refuses the call; the connection and its statement stay usable.
      await expect(run([1, 0])).rejects.toThrow(/division by zero/);
      expect((await run<{ doubled: number }>([5, 1])).rows[0]!.doubled).toBe(10);
      // One connection (max: 1), so this is the session that ran them all: prepared there once.
      const { rows } = await pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement = $1",
        [text],
      );
      expect(rows[0]!.n).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it("names its statement apart from every other's, so connections sharing one session never collide", async () => {
    const pool = createPgPool({ url: url!, max: 1 });
    try {
      const text = "SELECT $1::int + 1 AS n";
      // Two statements of the same text (two stores, or a reconnected client) in one session.
      for (const run of [preparedStatement(pool, text), preparedStatement(pool, text)])
        expect((await run<{ n: number }>([1])).rows[0]!.n).toBe(2);
      const { rows } = await pool.query<{ name: string }>(
        "SELECT name FROM pg_prepared_statements WHERE statement = $1",
        [text],
      );
      expect(new Set(rows.map((r) => r.name)).size).toBe(2);
    } finally {
      await pool.end();
    }
  });
});
