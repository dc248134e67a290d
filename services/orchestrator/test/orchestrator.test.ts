import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { trace } from "@opentelemetry/api";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Route, ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import type { ValoraError } from "@valora/kit";
import {
  Health,
  createClient,
  createGrpcServer,
  createRedis,
  createRegistry,
  type Client,
  type GrpcServer,
} from "@valora/kit";
import type { JsonObject } from "@bufbuild/protobuf";
import { captureLogs } from "@valora/kit/testing";
import { metadataOf, parseModel } from "@valora/kit/onnx";
import { ComparablesIndex, salesFromCsv } from "@valora/comparables";
import {
  ValuationPipeline,
  grpcModelClient,
  modelSchemaFrom,
  pipelineService,
  salesResiduals,
  type PipelineSpec,
} from "@valora/pipeline";
import {
  MemoryCache,
  RedisCache,
  pipelineDispatch,
  valuationService,
  type Dispatch,
  type ValuationCache,
} from "../src/index.js";

const root = join(import.meta.dirname, "..", "..", "..");
const bin = join(root, "services", "cli", "dist", "bin.js");
const modelPath = join(root, "models", "real-estate", "model.onnx");
const spec = parseAllDocuments(readFileSync(join(root, "manifests", "real-estate.yaml"), "utf8"))[1]!.toJS()
  .spec as PipelineSpec & {
  comparables: {
    h3Resolution: number;
    maxRings: number;
    count: number;
    maxAgeMonths: number;
    similarity: { field: string; weight: number }[];
  };
  cache: { ttlSeconds: number };
};
const meta = metadataOf(parseModel(readFileSync(modelPath)));
const sales = salesFromCsv(readFileSync(join(root, "models", "data", "ames.csv"), "utf8"), {
  idPrefix: "ames",
  target: "Sale_Price",
  fields: spec.input.fields,
  latitude: "Latitude",
  longitude: "Longitude",
  year: "Year_Sold",
  month: "Mo_Sold",
});
const house = (i: number): JsonObject => sales[i]!.attributes;

function suite(name: string, grpcPort: number, makeCache: () => ValuationCache) {
  describe.skipIf(!existsSync(bin))(name, () => {
    let modelServer: ChildProcess;
    let pipelineServer: GrpcServer;
    let orchestrator: GrpcServer;
    let client: Client<typeof ValuationService>;
    const dispatched: (Parameters<Dispatch>[2] | undefined)[] = [];
    const { logger } = captureLogs("orchestrator");
    const base = () => ({
      logger,
      registry: createRegistry({ service: "t", collectDefault: false }),
      tracer: trace.getTracer("t"),
      health: new Health(),
    });

    beforeAll(async () => {
      modelServer = spawn(
        process.execPath,
        [
          bin,
          "serve",
          "model-server",
          "--model",
          `real-estate=file://${modelPath}`,
          "--model-version",
          "ames-v1",
          "--grpc-port",
          String(grpcPort),
          "--http-port",
          "0",
        ],
        { env: { ...process.env, HOST: "127.0.0.1" }, stdio: ["ignore", "pipe", "inherit"] },
      );
      await new Promise<void>((resolve) =>
        createInterface({ input: modelServer.stdout! }).on(
          "line",
          (l) => l.includes("model server ready") && resolve(),
        ),
      );
      const route = {
        version: "ames-v1",
        role: "champion" as const,
        endpoint: `127.0.0.1:${grpcPort}`,
        weight: 100,
      };
      const modelClient = grpcModelClient(route.endpoint, "real-estate", "ames-v1");
      const schema = modelSchemaFrom(meta, 0);
      const residuals = await salesResiduals(sales, schema, spec.input.fields, modelClient);
      const pipeline = new ValuationPipeline({
        spec,
        schema,
        residualQuantiles: JSON.parse(meta["valora.residual_quantiles"]!),
        routes: () => [route],
        client: () => modelClient,
        comparables: new ComparablesIndex(sales, { ...spec.comparables, mode: "geo" }),
        residualOf: (id) => residuals.get(id),
        logger,
      });
      pipelineServer = createGrpcServer({
        ...base(),
        services: [pipelineService(new Map([["real-estate", pipeline]]))],
      });
      const pipelinePort = await pipelineServer.listen("127.0.0.1:0");
      // The production dispatch (PipelineService/Run over gRPC), to the pipeline above.
      const pipelines = pipelineDispatch({ addressOf: () => `127.0.0.1:${pipelinePort}`, timeoutMs: 10_000 });
      orchestrator = createGrpcServer({
        ...base(),
        services: [
          valuationService({
            catalog: (c) =>
              c === "real-estate"
                ? {
                    model: "real-estate",
                    currency: "USD",
                    fields: spec.input.fields,
                    cacheTtlSeconds: spec.cache.ttlSeconds,
                    championVersion: () => "ames-v1",
                    routes: () => [{ version: "ames-v1", role: "champion", weight: 100 }],
                  }
                : undefined,
            assetClasses: () => ["real-estate"],
            dispatch: (assetClass, items, options) => {
              dispatched.push(options);
              return pipelines.dispatch(assetClass, items, options);
            },
            cache: makeCache(),
          }),
        ],
      });
      client = createClient(ValuationService, `127.0.0.1:${await orchestrator.listen("127.0.0.1:0")}`, {
        timeoutMs: 10_000,
      });
    }, 60_000);
    afterAll(async () => {
      client?.close();
      await orchestrator?.shutdown(1000);
      await pipelineServer?.shutdown(1000);
      modelServer?.kill("SIGTERM");
    });

    it("marks bulk jobs' calls as bulk for the dispatch (they bypass request coalescing)", async () => {
      dispatched.length = 0;
      await client.value({ assetClass: "real-estate", attributes: house(7), skipCache: true });
      await client.value(
        { assetClass: "real-estate", attributes: house(7), skipCache: true, include: { explanation: false } },
        { metadata: { "x-valora-usage": "job" } },
      );
      expect(dispatched).toEqual([
        undefined,
        { parts: { explanation: false, comparables: false }, bulk: true },
      ]);
    });

    it("values a house end to end over gRPC, then answers the same request from the cache", async () => {
      const first = await client.value({ assetClass: "real-estate", attributes: house(5), skipCache: true });
      const v = first.valuation!;
      expect(v.cached).toBe(false);
      expect(v.model).toMatchObject({ name: "real-estate", version: "ames-v1", route: Route.CHAMPION });
      expect(v.interval!.low).toBeLessThan(v.value);
      expect(v.comparables.length).toBeGreaterThan(0);
      expect(v.explanation!.contributions.length).toBe(5);
      const second = await client.value({ assetClass: "real-estate", attributes: house(5) });
      expect(second.valuation!.cached).toBe(true);
      expect(second.valuation!.value).toBe(v.value);
      const third = await client.value({ assetClass: "real-estate", attributes: house(5) });
      expect(third.valuation).toMatchObject({ cached: true, value: v.value });
      expect(third.valuation!.comparables.length).toBe(v.comparables.length);
    });

    it("refuses bad input with field-level INVALID_ARGUMENT and unknown classes with NOT_FOUND", async () => {
      const bad = await client
        .value({ assetClass: "real-estate", attributes: { ...house(5), gr_liv_area: -3, nieghborhood: "x" } })
        .catch((e: unknown) => e);
      expect((bad as ValoraError).code).toBe("INVALID_ARGUMENT");
      expect((bad as ValoraError).details.map((d) => d.field)).toEqual(
        expect.arrayContaining(["attributes.gr_liv_area", "attributes.nieghborhood"]),
      );
      const unknown = await client.value({ assetClass: "boats", attributes: {} }).catch((e: unknown) => e);
      expect((unknown as ValoraError).code).toBe("NOT_FOUND");
    });

    it("values batches item by item, and refuses more than 100 items", async () => {
      const res = await client.valueBatch({
        assetClass: "real-estate",
        items: [{ attributes: house(1) }, { attributes: { gr_liv_area: "big" } }, { attributes: house(2) }],
      });
      expect(res.results.map((r) => r.outcome.case)).toEqual(["valuation", "error", "valuation"]);
      const tooMany = await client
        .valueBatch({
          assetClass: "real-estate",
          items: Array.from({ length: 101 }, () => ({ attributes: house(1) })),
        })
        .catch((e: unknown) => e);
      expect((tooMany as ValoraError).code).toBe("INVALID_ARGUMENT");
    });

    it("answers lean batches (bulk jobs) with the same values but no comparables or explanation, and does not cache them", async () => {
      const full = await client.valueBatch({
        assetClass: "real-estate",
        items: [{ attributes: house(11) }],
        skipCache: true,
      });
      const lean = await client.valueBatch({
        assetClass: "real-estate",
        items: [{ attributes: house(12) }, { attributes: house(11) }],
        lean: true,
        skipCache: true,
      });
      const [a, b] = lean.results.map((r) => (r.outcome.case === "valuation" ? r.outcome.value : undefined));
      expect(a!.comparables).toEqual([]);
      expect(a!.explanation).toBeUndefined();
      expect(b!.value).toBeCloseTo(
        full.results[0]!.outcome.case === "valuation" ? full.results[0]!.outcome.value.value : 0,
        6,
      );
      const after = await client.value({ assetClass: "real-estate", attributes: house(12) });
      expect(after.valuation!.cached).toBe(false);
      expect(after.valuation!.comparables.length).toBeGreaterThan(0);
    });

    it("answers what `include` asks for, caching each combination, a full entry serving them all", async () => {
      const h = house(21);
      const valueOnly = await client.value({
        assetClass: "real-estate",
        attributes: h,
        include: { explanation: false, comparables: false },
      });
      expect(valueOnly.valuation).toMatchObject({ cached: false, comparables: [] });
      expect(valueOnly.valuation!.explanation).toBeUndefined();
      // Its own entry: asked again, a hit; a full request is not served the partial answer.
      const again = await client.value({ assetClass: "real-estate", attributes: h, include: {} });
      expect(again.valuation!.cached).toBe(true);
      const full = await client.value({ assetClass: "real-estate", attributes: h });
      expect(full.valuation!.cached).toBe(false);
      expect(full.valuation!.explanation!.contributions.length).toBeGreaterThan(0);
      expect(full.valuation!.comparables.length).toBeGreaterThan(0);
      expect(valueOnly.valuation!.value).toBeCloseTo(full.valuation!.value, 6);
      // The full entry now answers any combination, cut to it.
      const explained = await client.value({
        assetClass: "real-estate",
        attributes: house(21),
        include: { explanation: true },
      });
      expect(explained.valuation).toMatchObject({ cached: true, comparables: [] });
      expect(explained.valuation!.explanation).toEqual(full.valuation!.explanation);
      const compsOnly = await client.valueBatch({
        assetClass: "real-estate",
        items: [{ attributes: house(21) }],
        include: { comparables: true },
      });
      const v = compsOnly.results[0]!.outcome.value as {
        cached: boolean;
        comparables: unknown[];
        explanation?: unknown;
      };
      expect(v.cached).toBe(true);
      expect(v.comparables).toEqual(full.valuation!.comparables);
      expect(v.explanation).toBeUndefined();
    });

    it("lists asset classes with their input schema and models with live per-version performance", async () => {
      const { assetClasses } = await client.listAssetClasses({});
      expect(assetClasses.map((a) => a.name)).toEqual(["real-estate"]);
      const area = assetClasses[0]!.fields.find((f) => f.name === "gr_liv_area")!;
      expect(area).toMatchObject({
        type: spec.input.fields.find((f) => f.name === "gr_liv_area")!.type,
        feature: spec.input.fields.find((f) => f.name === "gr_liv_area")!.feature,
      });
      await client.value({ assetClass: "real-estate", attributes: house(7), skipCache: true });
      const { models } = await client.listModels({});
      expect(models[0]).toMatchObject({
        name: "real-estate",
        assetClass: "real-estate",
        championVersion: "ames-v1",
        candidateVersion: "",
      });
      const champion = models[0]!.performance.find((p) => p.version === "ames-v1")!;
      expect(champion.role).toBe("champion");
      expect(champion.requests).toBeGreaterThan(0n);
      expect(champion.latencyP99Ms).toBeGreaterThanOrEqual(champion.latencyP50Ms);
      expect(champion.latencyP50Ms).toBeGreaterThan(0);
    });
  });
}

suite("orchestrator with the in-process cache", 18951, () => new MemoryCache());
const redisUrl = process.env["REDIS_URL"];
if (redisUrl)
  suite(
    "orchestrator with Redis (real Redis at REDIS_URL)",
    18952,
    () => new RedisCache(createRedis({ url: redisUrl }), `valora-test-${process.pid}:`),
  );
