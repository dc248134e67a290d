import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { Writable } from "node:stream";
import {
  DegradedLog,
  Health,
  backoffDelayMs,
  createPgPool,
  createRegistry,
  listenWithReconnect,
  toValoraError,
  transportMessage,
  unavailableReason,
  withTransaction,
  type Logger,
  type Pool,
} from "@valora/kit";

const url = process.env["DATABASE_URL"];

/** A logger whose lines the test reads. */
function capture(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: "info" }, sink), lines };
}

const flush = () => new Promise((r) => setImmediate(r));

describe("outage decisions (pure)", () => {
  it("tells a dependency outage from a refused query, and never echoes the raw error to clients", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 10.0.0.7:5432"), { code: "ECONNREFUSED" });
    expect(unavailableReason(refused)).toBe("a service this request needs is unavailable; retry shortly");
    expect(unavailableReason(new Error("Connection terminated unexpectedly"))).toBe(
      "the database is unavailable; retry shortly",
    );
    expect(unavailableReason(Object.assign(new Error("terminating connection"), { code: "57P01" }))).toMatch(
      /database/,
    );
    expect(
      unavailableReason(Object.assign(new Error("the database system is starting up"), { code: "57P03" })),
    ).toMatch(/database/);
    // A query the database refused is a bug or bad data, not an outage.
    expect(unavailableReason(Object.assign(new Error("syntax error"), { code: "42601" }))).toBeUndefined();
    const e = toValoraError(refused);
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.httpStatus).toBe(503);
    expect(e.message).not.toContain("10.0.0.7");
    expect(toValoraError(new Error("boom")).code).toBe("INTERNAL");
    expect(transportMessage("DEADLINE_EXCEEDED")).toBe("an internal call timed out; retry shortly");
  });

  it("backs off exponentially with full jitter, capped", () => {
    expect(backoffDelayMs(0, { random: () => 0.999, initialMs: 100 })).toBe(99);
    expect(backoffDelayMs(3, { random: () => 0.5, initialMs: 100 })).toBe(400);
    expect(backoffDelayMs(20, { random: () => 0.999, initialMs: 100, maxMs: 5000 })).toBe(4995);
    expect(backoffDelayMs(5, { random: () => 0 })).toBe(0);
  });

  it("logs a degraded mode once per dependency per interval, with the count since, and counts every one", async () => {
    const { logger, lines } = capture();
    const registry = createRegistry({ service: "test" });
    let now = 0;
    const log = new DegradedLog({ logger, registry, intervalMs: 30_000, now: () => now });
    for (let i = 0; i < 500; i++) log.note("redis", "counting locally", new Error("down"));
    log.note("postgres", "database down");
    now = 31_000;
    log.note("redis", "counting locally");
    log.recovered("redis", "redis is back");
    log.recovered("redis", "redis is back");
    await flush();
    const messages = lines.map((l) => [l["dependency"], l["msg"], l["sinceLastLog"]]);
    expect(messages).toEqual([
      ["redis", "counting locally", undefined],
      ["postgres", "database down", undefined],
      ["redis", "counting locally", 500],
      ["redis", "redis is back", undefined],
    ]);
    expect(await registry.metrics()).toMatch(/valora_degraded_total\{dependency="redis"[^}]*\} 501/);
  });

  it("reports dependencies that are down without turning readiness false", async () => {
    const health = new Health()
      .addCheck("models", () => true)
      .addDependency("postgres", () => {
        throw new Error("ECONNREFUSED");
      });
    const report = await health.report();
    expect(report.ready).toBe(true);
    expect(report.degraded).toEqual([{ name: "postgres", ok: false, message: "ECONNREFUSED" }]);
    health.addCheck("catalog", () => false);
    expect((await health.report()).ready).toBe(false);
  });
});

describe.skipIf(!url)("postgres connections through a server-side disconnect (real PostgreSQL)", () => {
  let pool: Pool;
  let admin: Pool;
  const uncaught: unknown[] = [];
  const guard = (err: unknown) => uncaught.push(err);

  beforeAll(() => {
    // The guard: an 'error' event nobody listens to would reach here (and end a service).
    process.on("uncaughtException", guard);
    pool = createPgPool({ url: url!, max: 4, applicationName: "valora-outage-test" });
    admin = createPgPool({ url: url!, max: 1 });
  });
  afterAll(async () => {
    process.off("uncaughtException", guard);
    await pool.end();
    await admin.end();
  });

  const terminate = async (pid: number) => {
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
  };

  it("survives the connection of a checked-out client dying between queries: no unhandled 'error'", async () => {
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    await terminate(rows[0]!.pid);
    await new Promise((r) => setTimeout(r, 200));
    await expect(client.query("SELECT 1")).rejects.toThrow();
    client.release(true);
    expect(uncaught).toEqual([]);
    expect((await pool.query("SELECT 1 AS one")).rows[0]).toEqual({ one: 1 });
  });

  it("hands a transaction's broken client back as broken, and answers UNAVAILABLE", async () => {
    const err = await withTransaction(pool, async (c) => {
      const { rows } = await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      await terminate(rows[0]!.pid);
      await new Promise((r) => setTimeout(r, 100));
      await c.query("SELECT 1");
    }).catch((e: unknown) => e);
    expect(toValoraError(err).code).toBe("UNAVAILABLE");
    expect(uncaught).toEqual([]);
    // The pool holds no dead client: every later query works.
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => pool.query("SELECT 1")));
    expect(answers).toHaveLength(5);
  });

  it("LISTENs again after its connection is killed, and catches up what was sent in between", async () => {
    const channel = `valora_test_${process.pid}`;
    const received: string[] = [];
    let listening = 0;
    const listener = listenWithReconnect({
      pool,
      channels: [channel],
      initialMs: 50,
      maxMs: 200,
      onNotification: (n) => received.push(n.payload ?? ""),
      onListening: () => listening++,
    });
    try {
      await expect.poll(() => listening, { timeout: 5000 }).toBe(1);
      await admin.query(`NOTIFY ${channel}, 'before'`);
      await expect.poll(() => received, { timeout: 5000 }).toEqual(["before"]);
      const { rows } = await admin.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE query = $1 AND application_name = 'valora-outage-test'",
        [`LISTEN ${channel}`],
      );
      expect(rows).toHaveLength(1);
      await terminate(rows[0]!.pid);
      // The caller's catch-up runs on every reconnection (here: counted), then new notifications arrive.
      await expect.poll(() => listening, { timeout: 5000 }).toBe(2);
      expect(listener.listening).toBe(true);
      await admin.query(`NOTIFY ${channel}, 'after'`);
      await expect.poll(() => received, { timeout: 5000 }).toEqual(["before", "after"]);
      expect(uncaught).toEqual([]);
    } finally {
      await listener.stop();
    }
    expect(listener.listening).toBe(false);
  });
});
