import pg from "pg";
import type { Logger } from "./logger.js";

export type { Pool, PoolClient } from "pg";

export interface PgOptions {
  url: string;
  max?: number;
  applicationName?: string;
  /** Server-side limit for each statement, so one runaway query cannot hold a connection forever. */
  statementTimeoutMs?: number;
  logger?: Logger;
}

export function createPgPool(options: PgOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "valora",
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection emits on the pool; without a listener Node would crash.
  pool.on("error", (err) => options.logger?.warn({ err }, "idle postgres client error"));
  return pool;
}

/** Runs fn in a transaction on one client: COMMIT when it resolves, ROLLBACK when it throws. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export interface Migration {
  /** Stable, ordered id, e.g. "001_tenants". Never edit an applied migration: add a new one. */
  id: string;
  sql: string;
}

/**
 * Applies pending migrations once, even with many replicas starting together: a transaction-scoped
 * advisory lock keyed by the component serialises them, and applied ids are recorded.
 */
export async function migrate(pool: pg.Pool, component: string, migrations: Migration[]): Promise<string[]> {
  return withTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`valora-migrate:${component}`]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         component text NOT NULL, id text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (component, id))`,
    );
    const { rows } = await client.query<{ id: string }>(
      "SELECT id FROM schema_migrations WHERE component = $1",
      [component],
    );
    const applied = new Set(rows.map((r) => r.id));
    const done: string[] = [];
    for (const m of [...migrations].sort((a, b) => a.id.localeCompare(b.id))) {
      if (applied.has(m.id)) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (component, id) VALUES ($1, $2)", [component, m.id]);
      done.push(m.id);
    }
    return done;
  });
}

export async function pgReady(pool: pg.Pool): Promise<boolean> {
  await pool.query("SELECT 1");
  return true;
}
