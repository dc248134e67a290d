import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import {
  UsageRecorder,
  createClient,
  createGrpcServer,
  createPgPool,
  createServiceBase,
  type Client,
  type GrpcServer,
  type Pool,
  type ValoraError,
} from "@valora/kit";
import { captureLogs, freshDatabase } from "@valora/kit/testing";
import { createUsage, parseDay, usageRange, type UsageApp } from "../src/index.js";

describe("usage dates (pure)", () => {
  it("defaults to the current month and refuses bad, reversed or over-long ranges with the field", () => {
    const now = new Date("2026-11-22T10:00:00Z");
    expect(usageRange("", "", now)).toEqual({ from: "2026-11-01", to: "2026-11-22" });
    expect(usageRange("2026-01-01", "2026-01-31", now)).toEqual({ from: "2026-01-01", to: "2026-01-31" });
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ValoraError).details[0]?.field;
      }
      return "no error";
    };
    expect(field(() => parseDay("2026-02-30", "from"))).toBe("from");
    expect(field(() => usageRange("2026-01-01", "26-1-2", now))).toBe("to");
    expect(field(() => usageRange("2026-02-01", "2026-01-01", now))).toBe("from");
    expect(field(() => usageRange("2020-01-01", "2026-01-01", now))).toBe("from");
  });
});

const url = process.env["DATABASE_URL"];
describe.skipIf(!url)("usage service over gRPC with real Postgres", () => {
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let app: UsageApp;
  let server: GrpcServer;
  let client: Client<typeof UsageService>;
  let port: number;
  const { logger } = captureLogs();
  const base = createServiceBase({ name: "usage-test", logger });
  const at = timestampFromDate(new Date("2026-11-20T12:00:00Z"));
  const today = new Date().toISOString().slice(0, 10);

  beforeAll(async () => {
    db = await freshDatabase(url!);
    pool = createPgPool({ url: db.url, max: 4 });
    app = createUsage(base, { pool });
    await app.start();
    server = createGrpcServer({ ...base, services: [app.service] });
    port = await server.listen("127.0.0.1:0");
    client = createClient(UsageService, `127.0.0.1:${port}`, { timeoutMs: 5000 });
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown();
    await app?.close();
    await pool?.end();
    await db?.drop();
  });

  it("counts each idempotency key once, however often and concurrently it is sent", async () => {
    const events = [
      { idempotencyKey: "a", tenantId: "t1", assetClass: "real-estate", kind: "valuation", units: 3n, at },
      { idempotencyKey: "b", tenantId: "t1", assetClass: "autos", kind: "job_row", units: 100n, at },
      { idempotencyKey: "a", tenantId: "t2", assetClass: "real-estate", kind: "valuation", units: 1n, at },
    ];
    const first = await client.recordUsage({ events });
    expect(first).toMatchObject({ recorded: 3, duplicates: 0 });
    const retries = await Promise.all(
      Array.from({ length: 8 }, () => client.recordUsage({ events: [...events, events[0]!] })),
    );
    expect(retries.every((r) => r.recorded === 0 && r.duplicates === 4)).toBe(true);
    const t1 = await client.queryUsage({ tenantId: "t1", from: "2026-11-01", to: "2026-11-30" });
    expect(
      t1.days.map((d) => ({ day: d.day, assetClass: d.assetClass, kind: d.kind, units: Number(d.units) })),
    ).toEqual([
      { day: "2026-11-20", assetClass: "autos", kind: "job_row", units: 100 },
      { day: "2026-11-20", assetClass: "real-estate", kind: "valuation", units: 3 },
    ]);
    expect(t1.total).toBe(103n);
    expect(
      (await client.queryUsage({ tenantId: "t1", from: "2026-11-01", to: "2026-11-30", assetClass: "autos" }))
        .total,
    ).toBe(100n);
    expect((await client.queryUsage({ tenantId: "t2", from: "2026-11-20", to: "2026-11-20" })).total).toBe(
      1n,
    );
    expect((await client.queryUsage({ tenantId: "t1", from: "2026-12-01", to: "2026-12-31" })).days).toEqual(
      [],
    );
  });

  it("refuses bad events naming the field, recording none of the batch", async () => {
    const good = { idempotencyKey: "g1", tenantId: "t3", assetClass: "autos", kind: "valuation", units: 1n };
    for (const [bad, field] of [
      [{ ...good, idempotencyKey: "" }, "events.1.idempotency_key"],
      [{ ...good, kind: "coffee" }, "events.1.kind"],
      [{ ...good, units: 0n }, "events.1.units"],
      [{ ...good, tenantId: "" }, "events.1.tenant_id"],
    ] as const) {
      const err = await client.recordUsage({ events: [good, bad] }).catch((e: ValoraError) => e);
      expect((err as ValoraError).code, field).toBe("INVALID_ARGUMENT");
      expect((err as ValoraError).details[0]?.field).toBe(field);
    }
    expect((await client.queryUsage({ tenantId: "t3", from: today, to: today })).total).toBe(0n);
    const err = (await client
      .queryUsage({ tenantId: "t3", from: "2026-13-01" })
      .catch((e: unknown) => e)) as ValoraError;
    expect(err.details[0]?.field).toBe("from");
  });

  it("group-commits concurrent records into few calls and counts every unit", async () => {
    let calls = 0;
    const recorder = new UsageRecorder({
      send: (events) => (calls++, client.recordUsage({ events })),
      logger,
    });
    await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        recorder.record("t4", i % 2 ? "autos" : "real-estate", "valuation", 1),
      ),
    );
    expect(calls).toBeLessThan(20);
    const usage = await client.queryUsage({ tenantId: "t4", from: today, to: today });
    expect(usage.total).toBe(500n);
  });

  it("keeps usage while the service is down and records it once when it is back", async () => {
    let down = true;
    const sent: string[] = [];
    const recorder = new UsageRecorder({
      send: async (events) => {
        sent.push(...events.map((e) => e.idempotencyKey!));
        if (down) throw new Error("connect ECONNREFUSED");
        return client.recordUsage({ events });
      },
      logger,
      retryMs: 20,
    });
    // Answers are not held back by the outage.
    await Promise.all(Array.from({ length: 50 }, () => recorder.record("t5", "autos", "valuation", 2)));
    expect((await client.queryUsage({ tenantId: "t5", from: today, to: today })).total).toBe(0n);
    down = false;
    await recorder.record("t5", "autos", "valuation", 1);
    await recorder.close();
    expect((await client.queryUsage({ tenantId: "t5", from: today, to: today })).total).toBe(101n);
    // The retried events kept their keys: the first key was sent more than once and counted once.
    expect(sent.filter((k) => k === sent[0]).length).toBeGreaterThan(1);
  });
});
