import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parse } from "csv-parse/sync";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService, JobStatus } from "@valora/proto/valora/v1/jobs_pb";
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
import { metadataOf, parseModel } from "@valora/kit/onnx";
import { createModelServer, type ModelServer } from "@valora/model-server";
import { ComparablesIndex, salesFromCsv } from "@valora/comparables";
import {
  ValuationPipeline,
  grpcModelClient,
  localDispatch,
  modelSchemaFrom,
  type PipelineSpec,
} from "@valora/pipeline";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { createUsage } from "@valora/usage";
import {
  JobStore,
  MemoryCache,
  jobService,
  migrateJobs,
  parseJobCsv,
  valuationService,
} from "../src/index.js";

const root = join(import.meta.dirname, "..", "..", "..");
const bin = join(root, "services", "cli", "dist", "bin.js");
const url = process.env["DATABASE_URL"];
const spec = parseAllDocuments(readFileSync(join(root, "manifests", "autos.yaml"), "utf8"))[1]!.toJS()
  .spec as PipelineSpec & {
  comparables: {
    h3Resolution: number;
    maxRings: number;
    count: number;
    maxAgeMonths: number;
    similarity: { field: string; weight: number }[];
  };
};

describe("job CSV input (pure)", () => {
  it("maps header cells by field or feature name in any style, and refuses what cannot be a job", () => {
    const { rows, ignored } = parseJobCsv(
      "Mileage,cylinder,CRUISE,sound,Leather,colour,Buick,Saab,body\n8221,6,1,1,1,red,1,0,sedan\n,4,0,0,0,blue,0,0,coupe\n",
      spec.input.fields,
      10,
    );
    // A one-hot training column (Buick) reads as its field's value when 1 (make: Buick), nothing when 0.
    expect(rows[0]).toEqual({
      mileage: "8221",
      cylinder: "6",
      cruise: "1",
      sound: "1",
      leather: "1",
      make: "Buick",
      body: "sedan",
    });
    expect(rows[1]).toEqual({ cylinder: "4", cruise: "0", sound: "0", leather: "0", body: "coupe" });
    expect(ignored).toEqual(["colour"]);
    expect(() => parseJobCsv("mileage\n1\n", spec.input.fields, 10)).toThrow(
      /lacks required fields: cylinder/,
    );
    expect(() => parseJobCsv("mileage,cylinder,cruise,sound,leather\n", spec.input.fields, 10)).toThrow(
      /no data rows/,
    );
    expect(() =>
      parseJobCsv("mileage,cylinder,cruise,sound,leather\n1,4,1,1,1\n1,4,1,1,1\n", spec.input.fields, 1),
    ).toThrow(/at most 1 rows|more than the 1/);
    expect(() => parseJobCsv('mileage,cylinder\n"unterminated,4\n', spec.input.fields, 10)).toThrow(
      /cannot be read/,
    );
  });
});

describe.skipIf(!url || !existsSync(bin))(
  "bulk jobs on real Postgres, surviving kill -9 of their worker",
  () => {
    let db: { url: string; drop: () => Promise<void> };
    let pool: Pool;
    let models: ModelServer;
    let server: GrpcServer;
    let jobs: Client<typeof JobService>;
    let usage: Client<typeof UsageService>;
    let address = "";
    const workers: ChildProcess[] = [];
    const tenant = { metadata: { "x-tenant-id": "tenant-1" } };

    beforeAll(async () => {
      db = await freshDatabase(url!);
      pool = createPgPool({ url: db.url, max: 4 });
      await migrateJobs(pool);
      const { logger } = captureLogs("jobs");
      const base = createServiceBase({ name: "jobs-test", logger });
      const modelPath = join(root, "models", "autos", "model.onnx");
      models = createModelServer(base, {
        models: [{ name: "autos", version: "gm-v1", uri: pathToFileURL(modelPath).href }],
        source: { cacheDir: mkdtempSync(join(tmpdir(), "valora-jobs-")), allowedHosts: [] },
        batching: { maxBatchSize: 64, maxDelayMicros: 200 },
      });
      const ports = await models.listen({ host: "127.0.0.1", grpcPort: 0, httpPort: 0 });
      await models.loaded;
      const meta = metadataOf(parseModel(readFileSync(modelPath)));
      const route = {
        version: "gm-v1",
        role: "champion" as const,
        endpoint: `127.0.0.1:${ports.grpcPort}`,
        weight: 100,
      };
      const client = grpcModelClient(route.endpoint, "autos", "gm-v1");
      const sales = salesFromCsv(readFileSync(join(root, "models", "data", "car_prices.csv"), "utf8"), {
        idPrefix: "gm",
        target: "Price",
        fields: spec.input.fields,
      });
      const pipeline = new ValuationPipeline({
        spec,
        schema: modelSchemaFrom(meta, 0),
        residualQuantiles: JSON.parse(meta["valora.residual_quantiles"]!) as Record<string, number>,
        routes: () => [route],
        client: () => client,
        comparables: new ComparablesIndex(sales, { ...spec.comparables, mode: "attributes" }),
        logger,
      });
      const usageApp = createUsage(base, { pool });
      await usageApp.start();
      server = createGrpcServer({
        ...base,
        services: [
          usageApp.service,
          valuationService({
            catalog: (c) =>
              c === "autos"
                ? {
                    model: "autos",
                    currency: "USD",
                    fields: spec.input.fields,
                    cacheTtlSeconds: 60,
                    championVersion: () => "gm-v1",
                    routes: () => [route],
                  }
                : undefined,
            assetClasses: () => ["autos"],
            dispatch: localDispatch(new Map([["autos", pipeline]])),
            cache: new MemoryCache(),
          }),
          jobService({
            store: new JobStore(pool),
            fields: (c) => (c === "autos" ? spec.input.fields : undefined),
            watchIntervalMs: 100,
          }),
        ],
      });
      address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
      jobs = createClient(JobService, address, { timeoutMs: 30_000 });
      usage = createClient(UsageService, address, { timeoutMs: 30_000 });
    }, 60_000);

    afterAll(async () => {
      for (const w of workers) if (w.exitCode === null) w.kill("SIGKILL");
      jobs?.close();
      usage?.close();
      await server?.shutdown(1000);
      await models?.close();
      await pool?.end();
      await db?.drop();
    });

    const startWorker = () => {
      const w = spawn(process.execPath, [bin, "serve", "job-worker"], {
        env: {
          ...process.env,
          DATABASE_URL: db.url,
          ORCHESTRATOR_ADDR: address,
          USAGE_ADDR: address,
          JOB_LEASE_SECONDS: "2",
          LOG_LEVEL: "warn",
        },
        stdio: ["ignore", "ignore", "inherit"],
      });
      workers.push(w);
      return w;
    };

    it("values a 10,000-row job exactly once across a kill -9 midway, reporting malformed rows", async () => {
      const cars = parse<Record<string, string>>(
        readFileSync(join(root, "models", "data", "car_prices.csv"), "utf8"),
        { columns: true },
      );
      const header = Object.keys(cars[0]!).filter((h) => h !== "Price");
      const lines = Array.from({ length: 10_000 }, (_, i) => {
        const car: Record<string, string> = { ...cars[i % cars.length]!, Mileage: String(1000 + i * 4) };
        if (i % 1000 === 7) car["Mileage"] = "lots";
        if (i % 1000 === 9) car["Mileage"] = "150000"; // valid, beyond the ~50,000 miles the model saw
        return header.map((h) => car[h]).join(",");
      });
      const csv = Buffer.from([header.join(","), ...lines].join("\n"));
      const { job } = await jobs.createJob({ assetClass: "autos", csv, idempotencyKey: "import-1" }, tenant);
      expect(job!.totalRows).toBe(10_000n);
      const again = await jobs.createJob({ assetClass: "autos", csv, idempotencyKey: "import-1" }, tenant);
      expect(again.job!.id).toBe(job!.id);

      const first = startWorker();
      await expect
        .poll(async () => (await jobs.getJob({ id: job!.id }, tenant)).job!.doneRows, {
          timeout: 60_000,
          interval: 50,
        })
        .toBeGreaterThanOrEqual(1500n);
      first.kill("SIGKILL");
      await new Promise((r) => first.once("exit", r));
      const midway = (await jobs.getJob({ id: job!.id }, tenant)).job!;
      expect(midway.status).toBe(JobStatus.RUNNING);
      expect(midway.doneRows + midway.failedRows).toBeLessThan(10_000n);

      startWorker();
      const watched: bigint[] = [];
      for await (const { job: j } of jobs.watchJob({ id: job!.id }, { ...tenant, timeoutMs: 120_000 }))
        watched.push(j!.doneRows);
      const done = (await jobs.getJob({ id: job!.id }, tenant)).job!;
      expect(done.status).toBe(JobStatus.SUCCEEDED);
      expect(done.doneRows).toBe(9_990n);
      expect(done.failedRows).toBe(10n);
      expect(done.invalidRows).toBe(10n);
      expect(watched.at(-1)).toBe(9_990n);

      let text = "";
      for await (const chunk of jobs.getJobResults({ id: job!.id }, { ...tenant, timeoutMs: 60_000 }))
        text += Buffer.from(chunk.csv).toString();
      const results = parse<Record<string, string>>(text, { columns: true });
      expect(results).toHaveLength(10_000);
      expect(new Set(results.map((r) => r["row"])).size).toBe(10_000);
      expect(results.map((r) => Number(r["row"]))).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
      const bad = results.filter((r) => r["error_code"]);
      expect(bad.map((r) => Number(r["row"]))).toEqual(Array.from({ length: 10 }, (_, k) => k * 1000 + 8));
      expect(bad[0]!["error"]).toContain("attributes.mileage");
      // Valued anyway, with the warning in its own column; training-format columns (Buick, sedan) read as make and body.
      const warned = results.filter((r) => r["warnings"]);
      expect(warned.map((r) => Number(r["row"]))).toEqual(
        Array.from({ length: 10 }, (_, k) => k * 1000 + 10),
      );
      expect(new Set(warned.map((r) => r["warnings"]))).toEqual(new Set(["mileage OUTSIDE_TRAINING_RANGE"]));
      expect(warned.every((r) => Number(r["value"]) > 0)).toBe(true);
      expect(
        results
          .filter((r) => !r["error_code"])
          .every((r) => Number(r["value"]) > 0 && r["model_version"] === "gm-v1"),
      ).toBe(true);
      const chunks = await pool.query<{ attempts: number }>(
        "SELECT attempts FROM job_chunks WHERE job_id = $1",
        [job!.id],
      );
      expect(chunks.rows.some((c) => c.attempts > 1)).toBe(true); // the dead worker's chunks were taken over
      // Metered exactly once too: every valued row, no malformed one, none twice despite the re-valued chunks.
      const today = new Date().toISOString().slice(0, 10);
      const metered = async () =>
        (await usage.queryUsage({ tenantId: "tenant-1", from: today, to: today })).days.map((d) => [
          d.assetClass,
          d.kind,
          d.units,
        ]);
      await expect.poll(metered, { timeout: 15_000, interval: 200 }).toEqual([["autos", "job_row", 9_990n]]);
      await expect
        .poll(
          async () =>
            (
              await pool.query<{ n: number }>(
                "SELECT count(*)::int AS n FROM job_chunks WHERE job_id = $1 AND usage_units > 0 AND metered_at IS NULL",
                [job!.id],
              )
            ).rows[0]!.n,
        )
        .toBe(0);
    }, 180_000);

    it("keeps tenants apart and cancels", async () => {
      const csv = Buffer.from("mileage,cylinder,cruise,sound,leather,make,body\n8221,6,1,1,1,Saab,sedan\n");
      const { job } = await jobs.createJob({ assetClass: "autos", csv }, tenant);
      await expect(
        jobs.getJob({ id: job!.id }, { metadata: { "x-tenant-id": "tenant-2" } }),
      ).rejects.toMatchObject({ code: "NOT_FOUND" });
      await expect(
        jobs.cancelJob({ id: job!.id }, { metadata: { "x-tenant-id": "tenant-2" } }),
      ).rejects.toMatchObject({ code: "NOT_FOUND" });
      const cancelled = await jobs.cancelJob({ id: job!.id }, tenant);
      expect([JobStatus.CANCELLED, JobStatus.SUCCEEDED]).toContain(cancelled.job!.status);
      await expect(jobs.createJob({ assetClass: "boats", csv }, tenant)).rejects.toMatchObject({
        code: "NOT_FOUND",
      });
      await expect(
        jobs.createJob({ assetClass: "autos", csv: Buffer.from("a,b\n1,2\n") }, tenant),
      ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    });
  },
);
