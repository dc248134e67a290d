import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgPool, type Pool } from "@valora/kit";
import { captureLogs, freshDatabase } from "@valora/kit/testing";
import { JobStore, JobWorker, migrateJobs, type ValueRows } from "../src/index.js";
import { valueByArea } from "./area-rows.js";

const url = process.env["DATABASE_URL"];

describe.skipIf(!url)("job worker loops on real Postgres", () => {
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let store: JobStore;
  const { logger } = captureLogs("job-worker");

  beforeAll(async () => {
    db = await freshDatabase(url!);
    pool = createPgPool({ url: db.url, max: 8 });
    await migrateJobs(pool);
    store = new JobStore(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("polls with one loop while idle, and takes a new job's chunks with all of them", async () => {
    let claims = 0;
    // The real store; only its claims are counted.
    const counted = new Proxy(store, {
      get(target, key) {
        const v = Reflect.get(target, key, target) as unknown;
        if (key === "claim")
          return (...args: Parameters<JobStore["claim"]>) => {
            claims++;
            return target.claim(...args);
          };
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    let running = 0;
    let most = 0;
    const value: ValueRows = async (...args) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 100));
      running--;
      return valueByArea(...args);
    };
    const worker = new JobWorker({ store: counted, value, logger, concurrency: 16, idleMs: 50 });
    worker.start();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      // One poller every 50 ms: about 20 claims a second, where 16 polling loops made ~320.
      expect(claims).toBeGreaterThan(5);
      expect(claims).toBeLessThan(40);

      // A job created elsewhere (no wake): the poller finds it and the other loops join in.
      const rows = Array.from({ length: 1600 }, (_, i) => ({ area: String(i + 1) }));
      const { job } = await store.create("tenant-1", "homes", rows);
      const started = Date.now();
      for (;;) {
        const j = await store.get("tenant-1", job.id);
        if (j.doneRows === 1600) break;
        if (Date.now() - started > 20_000) throw new Error(`job stuck at ${j.doneRows} rows`);
        await new Promise((r) => setTimeout(r, 20));
      }
      // 16 chunks of 100 rows, valued side by side rather than one after another.
      expect(most).toBeGreaterThanOrEqual(8);
    } finally {
      await worker.stop();
    }
  }, 30_000);
});
