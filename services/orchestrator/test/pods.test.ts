import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createInterface } from "node:readline";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService, JobStatus } from "@valora/proto/valora/v1/jobs_pb";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { IngestService } from "@valora/proto/valora/v1/ingest_pb";
import { Route, ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import {
  createClient,
  createGrpcServer,
  createPgPool,
  createServiceBase,
  type Client,
  type GrpcServer,
  type Pool,
} from "@valora/kit";
import { captureLogs, freePort, freshDatabase } from "@valora/kit/testing";
import { createModelServer, type ModelServer } from "@valora/model-server";
import { insertSales, migrateSales, salesFromCsv } from "@valora/comparables";
import { pipelineConfig, pipelineObjects } from "@valora/operator";
import { createUsage } from "@valora/usage";
import { catalogFrom, pipelineAddress } from "../src/index.js";

const root = join(import.meta.dirname, "..", "..", "..");
const bin = join(root, "services", "cli", "dist", "bin.js");
const url = process.env["DATABASE_URL"];
const docs = parseAllDocuments(readFileSync(join(root, "manifests", "autos.yaml"), "utf8")).map(
  (d) => d.toJS() as Record<string, unknown> & { metadata: { name: string }; spec: Record<string, unknown> },
);
const [vmDoc, apDoc] = docs as [(typeof docs)[number], (typeof docs)[number]];

describe("orchestrator catalog from custom resources (pure)", () => {
  it("joins AssetPipelines with their ValuationModel's served version and routing", () => {
    const routing = [
      { version: "v2", role: "champion" as const, endpoint: "m:8001", weight: 90 },
      { version: "v3", role: "canary" as const, endpoint: "c:8001", weight: 10 },
    ];
    const cat = catalogFrom(
      [
        {
          metadata: { name: "homes" },
          spec: { assetClass: "homes", model: { name: "hm" }, input: { fields: [] } },
        },
      ],
      [
        {
          metadata: { name: "hm" },
          spec: { champion: { version: "v1" }, candidate: { strategy: "Canary" } },
          status: { champion: { version: "v2" }, routing },
        },
      ],
    );
    const e = cat.get("homes")!;
    expect(e.pipeline).toBe("homes");
    expect(e.entry.championVersion()).toBe("v2");
    expect(e.entry.routes()).toEqual(routing);
    expect(e.entry.candidateStrategy?.()).toBe("Canary");
    expect(
      catalogFrom(
        [
          {
            metadata: { name: "x" },
            spec: { assetClass: "x", model: { name: "none" }, input: { fields: [] } },
          },
        ],
        [],
      )
        .get("x")!
        .entry.championVersion(),
    ).toBeUndefined();
    expect(pipelineAddress("{name}.{namespace}.svc:9090", "Real_Estate", "prod")).toBe(
      "pipeline-real-estate.prod.svc:9090",
    );
    // The address names the Service the operator renders, long names included.
    const long = `${"valuation-".repeat(8)}homes`;
    const service = pipelineObjects(
      {
        ...(apDoc as never as Parameters<typeof pipelineObjects>[0]),
        metadata: { name: long, namespace: "prod" },
      },
      { image: "valora:test" },
    ).find((o) => o.kind === "Service")!;
    expect(pipelineAddress("{name}", long, "prod")).toBe(service.metadata.name);
  });
});

/** Starts a `valora serve` process and resolves with its "listening" log line. */
function serve(
  args: string[],
  env: Record<string, string>,
  listening: string,
): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn(process.execPath, [bin, "serve", ...args], {
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${args[0]} exited with ${code}`)));
    child.stdout.resume();
    createInterface({ input: child.stdout }).on("line", (l) => {
      const line = JSON.parse(l) as Record<string, unknown>;
      if (line["msg"] === listening) resolve({ child, line });
    });
  });
}

describe.skipIf(!url || !existsSync(bin))(
  "orchestrator and pipeline pods against a Kubernetes API double",
  () => {
    let db: { url: string; drop: () => Promise<void> };
    let pool: Pool;
    let models: ModelServer;
    let kube: Server;
    let usageServer: GrpcServer;
    let orchestratorEnv: Record<string, string>;
    let orchestratorChild: ChildProcess;
    let valuations: Client<typeof ValuationService>;
    let jobs: Client<typeof JobService>;
    let usage: Client<typeof UsageService>;
    let ingest: Client<typeof IngestService>;
    const children: ChildProcess[] = [];
    const { logger } = captureLogs("pods");
    const base = createServiceBase({ name: "pods-test", logger });
    let vm: Record<string, unknown>;
    const requests: string[] = [];

    beforeAll(async () => {
      db = await freshDatabase(url!);
      pool = createPgPool({ url: db.url, max: 2 });
      await migrateSales(pool);
      const spec = apDoc.spec as {
        input: {
          fields: { name: string; type: "number" | "integer" | "string" | "boolean"; feature: string }[];
        };
      };
      await insertSales(
        pool,
        "autos",
        salesFromCsv(readFileSync(join(root, "models", "data", "car_prices.csv"), "utf8"), {
          idPrefix: "gm",
          target: "Price",
          fields: spec.input.fields,
        }),
      );
      const usageApp = createUsage(base, { pool });
      await usageApp.start();
      usageServer = createGrpcServer({ ...base, services: [usageApp.service] });
      const usageAddr = `127.0.0.1:${await usageServer.listen("127.0.0.1:0")}`;
      usage = createClient(UsageService, usageAddr, { timeoutMs: 10_000 });

      // One model server serving the autos model as two versions, like a champion and a new one.
      const modelUri = pathToFileURL(join(root, "models", "autos", "model.onnx")).href;
      models = createModelServer(base, {
        models: [
          { name: "autos", version: "gm-v1", uri: modelUri },
          { name: "autos", version: "gm-v2", uri: modelUri },
        ],
        source: { cacheDir: mkdtempSync(join(tmpdir(), "valora-pods-")), allowedHosts: [] },
        batching: { maxBatchSize: 32, maxDelayMicros: 200 },
      });
      const modelPorts = await models.listen({ host: "127.0.0.1", grpcPort: 0, httpPort: 0 });
      await models.loaded;
      const endpoint = `127.0.0.1:${modelPorts.grpcPort}`;
      vm = {
        ...vmDoc,
        metadata: { ...vmDoc.metadata, namespace: "valora" },
        status: {
          champion: { version: "gm-v1", readyReplicas: 1, endpoint },
          routing: [{ version: "gm-v1", role: "champion", endpoint, weight: 100 }],
        },
      };
      const ap = { ...apDoc, metadata: { ...apDoc.metadata, namespace: "valora" } };
      // The Kubernetes API as the pods see it: GETs of the CRs in their namespace.
      kube = createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        const send = (status: number, body: unknown) =>
          res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
        const p = "/apis/valora.dev/v1alpha1/namespaces/valora";
        if (req.url === `${p}/valuationmodels/autos`) return send(200, vm);
        if (req.url === `${p}/valuationmodels`)
          return send(200, { apiVersion: "valora.dev/v1alpha1", kind: "ValuationModelList", items: [vm] });
        if (req.url === `${p}/assetpipelines`)
          return send(200, { apiVersion: "valora.dev/v1alpha1", kind: "AssetPipelineList", items: [ap] });
        return send(404, { kind: "Status", status: "Failure", reason: "NotFound", code: 404 });
      });
      await new Promise<void>((r) => kube.listen(0, "127.0.0.1", r));
      const kubeUrl = `http://127.0.0.1:${(kube.address() as AddressInfo).port}`;

      const configFile = join(mkdtempSync(join(tmpdir(), "valora-pipeline-")), "pipeline.yaml");
      writeFileSync(configFile, pipelineConfig(ap as never));
      const common = { KUBE_API_URL: kubeUrl, POD_NAMESPACE: "valora", HOST: "127.0.0.1", METRICS_PORT: "0" };
      const ingestPod = await serve(
        ["ingest"],
        { ...common, GRPC_PORT: "0", DATABASE_URL: db.url, CATALOG_POLL_MS: "200" },
        "ingest service listening",
      );
      children.push(ingestPod.child);
      const ingestAddr = `127.0.0.1:${String(ingestPod.line["port"])}`;
      ingest = createClient(IngestService, ingestAddr, { timeoutMs: 10_000 });
      const pipeline = await serve(
        ["pipeline"],
        {
          ...common,
          PIPELINE_CONFIG: configFile,
          GRPC_PORT: "0",
          DATABASE_URL: db.url,
          ROUTING_POLL_MS: "200",
          SALES_POLL_MS: "60000",
        },
        "pipeline listening",
      );
      children.push(pipeline.child);
      // A fixed port, so the chaos case can restart the pod where its clients look for it.
      orchestratorEnv = {
        ...common,
        GRPC_PORT: String(await freePort()),
        DATABASE_URL: db.url,
        USAGE_ADDR: usageAddr,
        INGEST_ADDR: ingestAddr,
        CATALOG_POLL_MS: "200",
        PIPELINE_ADDR_TEMPLATE: `127.0.0.1:${String(pipeline.line["port"])}`,
        JOB_WORKER_CONCURRENCY: "2",
        JOB_LEASE_SECONDS: "3",
      };
      const orchestrator = await serve(["orchestrator"], orchestratorEnv, "orchestrator listening");
      orchestratorChild = orchestrator.child;
      children.push(orchestrator.child);
      const address = `127.0.0.1:${String(orchestrator.line["port"])}`;
      valuations = createClient(ValuationService, address, { timeoutMs: 10_000 });
      jobs = createClient(JobService, address, { timeoutMs: 10_000 });
    }, 90_000);

    afterAll(async () => {
      // Wait for the pods to drain and exit while their stdout is still read, then make sure.
      await Promise.all(
        children.map((c) =>
          c.exitCode !== null || c.signalCode !== null
            ? Promise.resolve()
            : new Promise<void>((resolve) => {
                const force = setTimeout(() => c.kill("SIGKILL"), 10_000);
                c.once("exit", () => (clearTimeout(force), resolve()));
                c.kill("SIGTERM");
              }),
        ),
      );
      valuations?.close();
      jobs?.close();
      ingest?.close();
      usage?.close();
      await usageServer?.shutdown(1000);
      await models?.close();
      await new Promise((r) => kube?.close(r));
      await pool?.end();
      await db?.drop();
    });

    const tenant = { metadata: { "x-tenant-id": "acme" } };
    const car = {
      mileage: 8221,
      cylinder: 6,
      doors: 4,
      cruise: true,
      sound: true,
      leather: true,
      buick: true,
      sedan: true,
    };

    it("values through orchestrator and pipeline pods: comparables from the sales table, the champion the CR routes", async () => {
      await expect
        .poll(
          async () =>
            (await valuations.value({ assetClass: "autos", attributes: car }, tenant).catch(() => undefined))
              ?.valuation?.model?.version,
          { timeout: 30_000, interval: 200 },
        )
        .toBe("gm-v1");
      const { valuation } = await valuations.value(
        { assetClass: "autos", attributes: { ...car, mileage: 9000 }, skipCache: true },
        tenant,
      );
      expect(valuation!.value).toBeGreaterThan(1000);
      expect(valuation!.comparables.length).toBeGreaterThan(0);
      expect(valuation!.explanation!.contributions.length).toBeGreaterThan(0);
      expect(valuation!.model!.route).toBe(Route.CHAMPION);
      const err = await valuations
        .value({ assetClass: "autos", attributes: { ...car, mileage: "lots" } }, tenant)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(requests.some((r) => r.includes("/valuationmodels/autos"))).toBe(true);
    }, 60_000);

    it("follows a promotion written to the ValuationModel's status, without a restart", async () => {
      const endpoint = (vm["status"] as { champion: { endpoint: string } }).champion.endpoint;
      vm = {
        ...vm,
        status: {
          champion: { version: "gm-v2", readyReplicas: 1, endpoint },
          routing: [{ version: "gm-v2", role: "champion", endpoint, weight: 100 }],
        },
      };
      await expect
        .poll(
          async () =>
            (await valuations.value({ assetClass: "autos", attributes: car, skipCache: true }, tenant))
              .valuation?.model?.version,
          { timeout: 20_000, interval: 200 },
        )
        .toBe("gm-v2");
      // The orchestrator pod watches the CR on its own: it may see the promotion a moment after the pipeline.
      await expect
        .poll(async () => (await valuations.listModels({}, tenant)).models[0], {
          timeout: 10_000,
          interval: 100,
        })
        .toMatchObject({ name: "autos", championVersion: "gm-v2" });
    }, 30_000);

    it("runs bulk jobs in the orchestrator pod and meters valuations and job rows", async () => {
      const { job } = await jobs.createJob(
        {
          assetClass: "autos",
          csv: Buffer.from(
            "mileage,cylinder,doors,cruise,sound,leather,make,body\n8221,6,4,1,1,1,Buick,sedan\n12000,4,2,0,1,0,Saturn,coupe\nlots,4,2,0,1,0,Saturn,coupe\n",
          ),
        },
        tenant,
      );
      await expect
        .poll(async () => (await jobs.getJob({ id: job!.id }, tenant)).job!.status, {
          timeout: 30_000,
          interval: 200,
        })
        .toBe(JobStatus.SUCCEEDED);
      const done = (await jobs.getJob({ id: job!.id }, tenant)).job!;
      expect([done.doneRows, done.failedRows]).toEqual([2n, 1n]);
      const today = new Date().toISOString().slice(0, 10);
      await expect
        .poll(
          async () =>
            (await usage.queryUsage({ tenantId: "acme", from: today, to: today })).days.find(
              (d) => d.kind === "job_row",
            )?.units,
        )
        .toBe(2n);
      const valued = (await usage.queryUsage({ tenantId: "acme", from: today, to: today })).days.find(
        (d) => d.kind === "valuation",
      )!.units;
      expect(valued).toBeGreaterThanOrEqual(3n);
    }, 40_000);

    it("lands feeds in the ingest pod: a listing values by assetId, a sale reaches the pipeline pod's comparables at once", async () => {
      const car = {
        mileage: 1234,
        cylinder: 4,
        doors: 2,
        cruise: 1,
        sound: 1,
        leather: 0,
        make: "Saturn",
        body: "coupe",
      };
      const listing = Buffer.from(JSON.stringify([{ id: "vin-1", asking_price: 18000, ...car }]));
      // The pod knows the autos contract once it has read the AssetPipelines (NOT_FOUND until then).
      await expect
        .poll(
          () =>
            ingest
              .ingest({
                assetClass: "autos",
                kind: "listings",
                format: "json",
                content: listing,
                source: "dealer",
              })
              .then(
                (r) => r.batch?.status,
                (err: { code?: string }) => err.code,
              ),
          { timeout: 10_000, interval: 200 },
        )
        .toBe("landed");
      const { valuation } = await valuations.value(
        { assetClass: "autos", assetId: "vin-1" },
        { metadata: { "x-tenant-id": "t-pods" } },
      );
      expect(valuation!.value).toBeGreaterThan(1000);
      // The sale lands; NOTIFY wakes the pipeline pod (its poll is a minute): the sale is a comparable now.
      const sold = await ingest.ingest({
        assetClass: "autos",
        kind: "sales",
        format: "ndjson",
        content: Buffer.from(
          JSON.stringify({
            id: "sale-vin-1",
            asset_id: "vin-1",
            price: 17500,
            sold_at: new Date().toISOString().slice(0, 10),
            ...car,
          }) + "\n",
        ),
        source: "dealer",
      });
      expect(sold.batch).toMatchObject({ status: "landed", landed: 1, outcomes: 1 });
      await expect
        .poll(
          async () =>
            (
              await valuations.value({ assetClass: "autos", attributes: car, skipCache: true })
            ).valuation!.comparables.map((c) => c.id),
          { timeout: 5000, interval: 100 },
        )
        .toContain("sale-vin-1");
      const perf = await ingest.realisedPerformance({ model: "autos" });
      expect(perf.overall).toHaveLength(1);
      expect(perf.overall[0]).toMatchObject({ modelVersion: valuation!.model!.version, count: 1 });
      expect(perf.overall[0]!.mdape).toBeCloseTo((100 * Math.abs(valuation!.value - 17500)) / 17500, 9);
    }, 30_000);

    it("chaos: the orchestrator pod killed with SIGKILL mid-job comes back; every row valued once, metered once", async () => {
      const rows = Array.from({ length: 3000 }, (_, i) => `${5000 + i},6,4,1,1,${i % 2},Chevy,sedan`);
      const csv = Buffer.from(`mileage,cylinder,doors,cruise,sound,leather,make,body\n${rows.join("\n")}\n`);
      const { job } = await jobs.createJob({ assetClass: "autos", csv }, tenant);
      await new Promise((r) => setTimeout(r, 400));
      const killedAt = Date.now();
      orchestratorChild.kill("SIGKILL");
      await new Promise((r) => orchestratorChild.once("exit", r));
      // While it is down valuations fail fast; a new pod takes its place on the same port.
      const down = await valuations
        .value({ assetClass: "autos", attributes: car, skipCache: true }, tenant)
        .then(() => "answered")
        .catch((e: { code: string }) => e.code);
      const restarted = await serve(["orchestrator"], orchestratorEnv, "orchestrator listening");
      orchestratorChild = restarted.child;
      children.push(restarted.child);
      await expect
        .poll(
          async () =>
            await valuations
              .value({ assetClass: "autos", attributes: car, skipCache: true }, tenant)
              .then(() => true)
              .catch(() => false),
          { timeout: 30_000, interval: 200 },
        )
        .toBe(true);
      const valuingAgainAfter = (Date.now() - killedAt) / 1000;
      await expect
        .poll(async () => (await jobs.getJob({ id: job!.id }, tenant)).job!.status, {
          timeout: 60_000,
          interval: 250,
        })
        .toBe(JobStatus.SUCCEEDED);
      const done = (await jobs.getJob({ id: job!.id }, tenant)).job!;
      const jobDoneAfter = (Date.now() - killedAt) / 1000;
      const { rows: results } = await pool.query<{ n: number; distinct: number }>(
        "SELECT count(*)::int AS n, count(DISTINCT row_no)::int AS distinct FROM job_rows WHERE job_id = $1 AND result IS NOT NULL",
        [job!.id],
      );
      const today = new Date().toISOString().slice(0, 10);
      const metered = async () =>
        (await usage.queryUsage({ tenantId: "acme", from: today, to: today })).days.find(
          (d) => d.kind === "job_row",
        )?.units ?? 0n;
      // 2 job rows were metered by the earlier job case.
      await expect.poll(metered, { timeout: 15_000, interval: 250 }).toBe(2n + done.doneRows);
      const figures = {
        whileDown: down,
        valuingAgainAfter,
        jobDoneAfter,
        rows: 3000,
        results: results[0],
        doneRows: Number(done.doneRows),
        failedRows: Number(done.failedRows),
      };
      process.stdout.write(`chaos orchestrator-sigkill: ${JSON.stringify(figures)}\n`);
      expect(down).toBe("UNAVAILABLE");
      expect(Number(done.doneRows + done.failedRows)).toBe(3000);
      expect(results[0]).toEqual({ n: 3000, distinct: 3000 });
    }, 120_000);
  },
);
