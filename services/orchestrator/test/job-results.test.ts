import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "csv-parse/sync";
import { JobService } from "@valora/proto/valora/v1/jobs_pb";
import {
  createClient,
  createGrpcServer,
  createPgPool,
  createServiceBase,
  type Client,
  type GrpcServer,
  type Pool,
} from "@valora/kit";
import { captureLogs, freshDatabase } from "@valora/kit/testing";
import {
  JobStore,
  JobWorker,
  jobResults,
  jobService,
  migrateJobs,
  resultsKey,
  s3ResultsStore,
} from "../src/index.js";
import { areaFields, valueByArea } from "./area-rows.js";
import { S3Double } from "./s3-double.js";

const url = process.env["DATABASE_URL"];
const fields = areaFields;
// The results path is under test here; rows get a deterministic value (valuation itself is tested elsewhere).
const value = valueByArea;

describe.skipIf(!url)(
  "large job results in S3-compatible storage (real AWS SDK against an S3 double, real Postgres)",
  () => {
    let db: { url: string; drop: () => Promise<void> };
    let pool: Pool;
    let s3: S3Double;
    let server: GrpcServer;
    let jobs: Client<typeof JobService>;
    let worker: JobWorker;
    let store: JobStore;
    let objects: ReturnType<typeof s3ResultsStore>;
    const tenant = { metadata: { "x-tenant-id": "tenant-1" } };
    const { logger } = captureLogs("job-results");

    beforeAll(async () => {
      db = await freshDatabase(url!);
      pool = createPgPool({ url: db.url, max: 4 });
      await migrateJobs(pool);
      s3 = new S3Double("results");
      const endpoint = await s3.listen();
      objects = s3ResultsStore({
        bucket: "results",
        endpoint,
        credentials: { accessKeyId: "test", secretAccessKey: "test-secret" },
      });
      store = new JobStore(pool);
      server = createGrpcServer({
        ...createServiceBase({ name: "job-results", logger }),
        services: [jobService({ store, fields: () => fields, objects })],
      });
      jobs = createClient(JobService, `127.0.0.1:${await server.listen("127.0.0.1:0")}`, {
        timeoutMs: 10_000,
      });
      worker = new JobWorker({ store, value, logger, results: { objects, minRows: 50, prefix: "jobs" } });
    });
    afterAll(async () => {
      jobs?.close();
      await server?.shutdown(1000);
      await s3?.close();
      await pool?.end();
      await db?.drop();
    });

    const read = async (id: string) => {
      let text = "";
      for await (const c of jobs.getJobResults({ id }, tenant)) text += Buffer.from(c.csv).toString();
      return text;
    };

    it("moves a large job's results to the bucket, drops its rows from Postgres, and streams them back", async () => {
      const csv = [
        "area",
        ...Array.from({ length: 120 }, (_, i) => (i === 41 ? "big" : String(1000 + i))),
      ].join("\n");
      const { job } = await jobs.createJob({ assetClass: "homes", csv: Buffer.from(csv) }, tenant);
      const small = (await jobs.createJob({ assetClass: "homes", csv: Buffer.from("area\n5\n6\n") }, tenant))
        .job!;
      await worker.drain();
      const key = resultsKey("jobs", "tenant-1", job!.id);
      expect([...s3.objects.keys()]).toEqual([key]);
      expect(
        (await pool.query("SELECT count(*)::int AS n FROM job_rows WHERE job_id = $1", [job!.id])).rows[0],
      ).toEqual({ n: 0 });
      expect((await store.get("tenant-1", job!.id)).resultsUrl).toBe(`s3://results/${key}`);
      const text = await read(job!.id);
      expect(text).toBe(s3.objects.get(key)!.toString());
      const rows = parse<Record<string, string>>(text, { columns: true });
      expect(rows.map((r) => Number(r["row"]))).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
      expect(rows[41]).toMatchObject({ error_code: "INVALID_ARGUMENT" });
      expect(rows[0]).toMatchObject({ value: "100000", model_version: "v1" });
      // The small job stays in Postgres and reads the same way.
      expect(parse(await read(small.id), { columns: true })).toHaveLength(2);
      expect(s3.requests.every((r) => r.path.startsWith("/results/"))).toBe(true);
    });

    it("exports once even when a crash left the object written but the job unmarked, and purges objects with their jobs", async () => {
      const { job } = await jobs.createJob(
        {
          assetClass: "homes",
          csv: Buffer.from(["area", ...Array.from({ length: 60 }, (_, i) => String(i))].join("\n")),
        },
        tenant,
      );
      // Valued by a worker that does not export, then "crashed" after writing the object.
      await new JobWorker({ store, value, logger }).drain();
      expect((await store.unexported(50)).map((j) => j.id)).toEqual([job!.id]);
      const key = resultsKey("jobs", "tenant-1", job!.id);
      await objects.put(key, Readable.from([Buffer.from("partial")]));
      expect(await worker.exportResults()).toBe(1);
      expect(await worker.exportResults()).toBe(0);
      expect(s3.objects.get(key)!.toString().split("\n")).toHaveLength(62); // header, 60 rows, final newline
      await pool.query("UPDATE jobs SET finished_at = now() - interval '2 days'");
      expect(await store.purge(1, (u) => objects.remove(u))).toBe(3);
      expect(s3.objects.size).toBe(0);
      await expect(jobs.getJob({ id: job!.id }, tenant)).rejects.toMatchObject({ code: "NOT_FOUND" });
    });

    it("finishes a results read that started in Postgres when the export moves the rows mid-read", async () => {
      // A worker without object storage finishes the job: its results stay in Postgres for now.
      const plain = new JobWorker({ store, value, logger });
      const csv = ["area", ...Array.from({ length: 130 }, (_, i) => String(2000 + i))].join("\n");
      const { job } = await jobs.createJob({ assetClass: "homes", csv: Buffer.from(csv) }, tenant);
      await plain.drain();
      const row = await store.get("tenant-1", job!.id);
      expect(row.resultsUrl).toBeNull();
      const reading = jobResults(store, objects, row, undefined, 50);
      let text = "";
      for (let i = 0; i < 2; i++) {
        const next = await reading.next(); // header, then rows 1..50
        if (next.done) throw new Error("results ended early");
        text += next.value.toString();
      }
      // The export runs now: the object is written and the rows leave Postgres.
      expect(await worker.exportResults()).toBeGreaterThanOrEqual(1);
      expect(
        (await pool.query("SELECT count(*)::int AS n FROM job_rows WHERE job_id = $1", [job!.id])).rows[0],
      ).toEqual({ n: 0 });
      for await (const piece of { [Symbol.asyncIterator]: () => reading }) text += piece.toString();
      const rows = parse<Record<string, string>>(text, { columns: true });
      expect(rows.map((r) => Number(r["row"]))).toEqual(Array.from({ length: 130 }, (_, i) => i + 1));
      expect(rows[129]).toMatchObject({ value: String(2129 * 100), model_version: "v1" });
    });
  },
);
