import { randomUUID } from "node:crypto";
import pg from "pg";
import { DegradedLog } from "./degraded.js";
import { unavailableReason } from "./errors.js";
import type { Logger } from "./logger.js";

export type { Pool, PoolClient } from "pg";

export interface PgOptions {
  url: string;
  max?: number;
  applicationName?: string;
  /** Server-side limit for each statement, so one runaway query cannot hold a connection forever. */
  statementTimeoutMs?: number;
  logger?: Logger;
  /** Where connection losses are reported, rate-limited (default: one built on `logger`). */
  degraded?: DegradedLog;
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
  const degraded =
    options.degraded ?? (options.logger ? new DegradedLog({ logger: options.logger }) : undefined);
  const lost = (err: Error) =>
    degraded?.note("postgres", "postgres connection lost; reconnecting on demand", err);
  // An idle client losing its connection emits on the pool; without a listener Node would crash.
  pool.on("error", lost);
  // A checked-out client (a transaction in flight, a LISTEN connection) has no pool listener: pg
  // emits its connection loss as an 'error' event there too, which would end the process. The
  // query in flight still rejects, and the pool drops the broken client when it is released.
  pool.on("connect", (client) => client.on("error", lost));
  return pool;
}

/** Whether `err` means Postgres could not be reached (as opposed to a query it refused). */
export const isDatabaseUnavailable = (err: unknown): boolean => unavailableReason(err) !== undefined;

/**
 * A hot statement Postgres parses and plans once per connection instead of on every call (a named
 * prepared statement; pg sends only Bind and Execute once the connection has it). The name is
 * unique per connection: the embedded PGlite serves every connection from one session, where a
 * second or reconnected client preparing a name the session already holds would be refused.
 * Behind PgBouncer in transaction mode this needs `max_prepared_statements` (PgBouncer ≥ 1.21).
 */
export function preparedStatement(pool: pg.Pool, text: string) {
  const names = new WeakMap<pg.PoolClient, string>();
  return async <R extends pg.QueryResultRow>(values: unknown[]): Promise<pg.QueryResult<R>> => {
    const client = await pool.connect();
    let name = names.get(client);
    if (!name) names.set(client, (name = `valora_${randomUUID().replaceAll("-", "")}`));
    try {
      const result = await client.query<R>({ name, text, values });
      client.release();
      return result;
    } catch (err) {
      // A connection that broke is closed, not pooled; a statement Postgres refused leaves it usable.
      client.release(isDatabaseUnavailable(err) ? (err as Error) : undefined);
      throw err;
    }
  };
}

/** Runs fn in a transaction on one client: COMMIT when it resolves, ROLLBACK when it throws. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let result: T;
  try {
    await client.query("BEGIN");
    result = await fn(client);
    await client.query("COMMIT");
  } catch (err) {
    // A client whose connection broke cannot roll back: hand it back as broken so it is closed.
    const broken = await client.query("ROLLBACK").then(
      () => undefined,
      (rollbackErr: Error) => rollbackErr,
    );
    client.release(broken);
    throw err;
  }
  client.release();
  return result;
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
