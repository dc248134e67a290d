import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VALUE_ONLY, ValoraError, createRegistry } from "@valora/kit";
import { captureLogs } from "@valora/kit/testing";
import { metadataOf, parseModel } from "@valora/kit/onnx";
import { ComparablesIndex, salesFromCsv } from "@valora/comparables";
import {
  assetKey,
  featureRow,
  grpcModelClient,
  pipelineMetrics,
  modelSchemaFrom,
  normaliseAttributes,
  salesResiduals,
  ValuationPipeline,
  type ModelClient,
  type PipelineSpec,
  type Route,
  toValue,
  type ValuationOut,
} from "../src/index.js";
import { startModelServer } from "./support/model-server.js";

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
};
const meta = metadataOf(parseModel(readFileSync(modelPath)));
const schema = modelSchemaFrom(meta, 0);
const quantiles = JSON.parse(meta["valora.residual_quantiles"]!) as Record<string, number>;
const sales = salesFromCsv(readFileSync(join(root, "models", "data", "ames.csv"), "utf8"), {
  idPrefix: "ames",
  target: "Sale_Price",
  fields: spec.input.fields,
  latitude: "Latitude",
  longitude: "Longitude",
  year: "Year_Sold",
  month: "Mo_Sold",
});

describe.skipIf(!existsSync(bin))("valuation pipeline against real model servers on loopback", () => {
  let server: ChildProcess;
  const grpcPort = 18931;
  const clients = new Map<string, ModelClient>();
  const registry = createRegistry({ service: "pipeline", collectDefault: false });
  const metrics = pipelineMetrics(registry);
  const client = (r: Route): ModelClient => {
    const key = `${r.endpoint}/${r.version}`;
    let c = clients.get(key);
    if (!c) clients.set(key, (c = grpcModelClient(r.endpoint, "real-estate", r.version, registry)));
    return c;
  };
  let routes: Route[] = [];
  let pipeline: ValuationPipeline;

  beforeAll(async () => {
    // One server holding the same model as two versions: a champion and a canary.
    server = await startModelServer(
      bin,
      [
        { name: "real-estate", file: modelPath, version: "v1" },
        { name: "real-estate", file: modelPath, version: "v2" },
      ],
      grpcPort,
    );
    const endpoint = `127.0.0.1:${grpcPort}`;
    routes = [
      { version: "v1", role: "champion", endpoint, weight: 70 },
      { version: "v2", role: "canary", endpoint, weight: 30 },
    ];
    const index = new ComparablesIndex(sales, { ...spec.comparables, mode: "geo" });
    const residuals = await salesResiduals(sales, schema, spec.input.fields, client(routes[0]!));
    pipeline = new ValuationPipeline({
      spec,
      schema,
      residualQuantiles: quantiles,
      routes: () => routes,
      client,
      comparables: index,
      residualOf: (id) => residuals.get(id),
      logger: captureLogs().logger,
      metrics,
      timeoutMs: 2000,
    });
  }, 60_000);
  afterAll(() => {
    for (const c of clients.values()) c.close();
    server?.kill("SIGTERM");
  });

  const house = (i: number) => {
    const s = sales[i]!;
    return normaliseAttributes(spec.input.fields, s.attributes);
  };

  it("values a house: model corrected by comparables, interval, confidence, explanation, comparables", async () => {
    const attrs = house(10);
    const v = await pipeline.value(attrs, assetKey(attrs));
    expect(v.currency).toBe("USD");
    expect(v.interval.low).toBeLessThan(v.value);
    expect(v.interval.high).toBeGreaterThan(v.value);
    expect(v.confidence).toBeGreaterThan(0);
    expect(v.confidence).toBeLessThanOrEqual(1);
    expect(v.comparables.length).toBeGreaterThan(0);
    expect(v.explanation?.contributions).toHaveLength(5);
    expect(["champion", "canary"]).toContain(v.model.route);
    expect(Math.abs(v.value - sales[10]!.price) / sales[10]!.price).toBeLessThan(0.5);
  });

  it("explains in one model call: the value-only answer's value, the model server's named explanation", async () => {
    const items = [3, 10, 42].map((i) => ({ attributes: house(i), assetKey: assetKey(house(i)) }));
    const explained = (await pipeline.valueMany(items)) as ValuationOut[];
    const valueOnly = (await pipeline.valueMany(items, { parts: VALUE_ONLY })) as ValuationOut[];
    for (const [k, item] of items.entries()) {
      const v = explained[k]!;
      const alone = valueOnly[k]!;
      expect(v.value).toBe(alone.value);
      expect(alone.explanation).toBeUndefined();
      // What the model server answers when asked for the five largest contributions by name.
      const c = client(routes.find((r) => r.version === v.model.version)!);
      const [named] = await c.explainMany([featureRow(schema, spec.input.fields, item.attributes)], 5, 5000);
      expect(v.explanation!.output).toBe(named!.output);
      expect(v.explanation!.contributions.map((x) => [x.feature, x.contribution])).toEqual(
        named!.contributions.map((x) => [x.feature, x.contribution]),
      );
    }
  });

  it("answers the value without an explanation when the explanation fails or is late, and falls back when the server is away", async () => {
    const attrs = house(7);
    const full = await pipeline.value(attrs, assetKey(attrs));
    const failing = (code: "INTERNAL" | "DEADLINE_EXCEEDED" | "UNAVAILABLE") =>
      new ValuationPipeline({
        spec,
        schema,
        residualQuantiles: quantiles,
        routes: () => [{ ...routes[0]!, weight: 100 }],
        // The real client, whose combined call fails as a broken, slow or absent explainer's would.
        client: (r) => ({
          ...client(r),
          predictExplained: () => Promise.reject(new ValoraError(code, `explain: ${code}`)),
        }),
        comparables: new ComparablesIndex(sales, { ...spec.comparables, mode: "geo" }),
        logger: captureLogs().logger,
        timeoutMs: 2000,
      });
    for (const code of ["INTERNAL", "DEADLINE_EXCEEDED"] as const) {
      const v = await failing(code).value(attrs, assetKey(attrs));
      expect(v.model.route).toBe("champion");
      expect(v.explanation).toBeUndefined();
      // No residual correction here (no residuals given): the model's own value, as predict answers it.
      const [alone] = await client(routes[0]!).predict(
        featureRow(schema, spec.input.fields, attrs),
        schema.features.length,
        5000,
      );
      expect(v.value).toBeCloseTo(toValue(schema, alone!), 6);
    }
    expect(full.explanation).toBeDefined();
    const away = await failing("UNAVAILABLE").value(attrs, assetKey(attrs));
    expect(away.model.route).toBe("fallback");
  });

  it("honours routing weights within statistical tolerance, sticky per asset", async () => {
    let canary = 0;
    const n = 300;
    for (let i = 0; i < n; i++) {
      const attrs = house(i);
      const v = await pipeline.value(attrs, assetKey(attrs));
      if (v.model.route === "canary") canary++;
      if (i < 5) expect((await pipeline.value(attrs, assetKey(attrs))).model.version).toBe(v.model.version);
    }
    expect(canary / n).toBeGreaterThan(0.2);
    expect(canary / n).toBeLessThan(0.4);
  });

  it("values a sticky sample of assets with the other version too, off the answer path, and records each pair", async () => {
    // The same model serves v1 and v2: every pair's delta is exactly 0, whichever version served.
    const series = 'model="real-estate",version="v2",champion="v1"';
    const count = async () => {
      const lines = (await registry.metrics()).split("\n").filter((l) => l.includes(series));
      const value = (prefix: string, le?: string) =>
        Number(
          lines
            .find((l) => l.startsWith(prefix) && (le === undefined || l.includes(`le="${le}"`)))
            ?.split(" ")
            .at(-1) ?? 0,
        );
      return {
        total: value("valora_paired_delta_percent_count"),
        zero: value("valora_paired_delta_percent_bucket", "0"),
        below: value("valora_paired_delta_percent_bucket", "-0.1"),
      };
    };
    const before = (await count()).total;
    routes = routes.map((r) => (r.role === "canary" ? { ...r, pairedSamplePercent: 50 } : r));
    const n = 200;
    for (let i = 300; i < 300 + n; i++) {
      const attrs = house(i);
      await pipeline.value(attrs, assetKey(attrs));
    }
    await expect
      .poll(async () => (await count()).total - before, { timeout: 5000 })
      .toBeGreaterThan(0.35 * n);
    const after = await count();
    expect(after.total - before).toBeLessThan(0.65 * n);
    expect(after.zero).toBe(after.total);
    expect(after.below).toBe(0);
    routes = routes.map((r) => (r.role === "canary" ? { ...r, pairedSamplePercent: 0 } : r));
    const still = (await count()).total;
    for (let i = 500; i < 520; i++) await pipeline.value(house(i), assetKey(house(i)));
    expect((await count()).total).toBe(still);
  });

  it("isolates shadows: a dead shadow neither delays nor changes the answer, and its failures are counted", async () => {
    const attrs = house(3);
    const before = await pipeline.value(attrs, assetKey(attrs));
    routes = [...routes, { version: "v9", role: "shadow", endpoint: "127.0.0.1:1", weight: 0 }];
    const started = Date.now();
    const after = await pipeline.value(attrs, assetKey(attrs));
    expect(Date.now() - started).toBeLessThan(500);
    expect(after.value).toBe(before.value);
    await expect
      .poll(async () => registry.metrics(), { timeout: 5000 })
      .toMatch(/valora_shadow_errors_total\{model="real-estate",version="v9"[^}]*\} 1/);
    routes = routes.filter((r) => r.role !== "shadow");
  });

  it("falls back to comparables when the model is unreachable, and says so", async () => {
    const saved = routes;
    routes = [{ version: "v1", role: "champion", endpoint: "127.0.0.1:1", weight: 100 }];
    const attrs = house(20);
    const v = await pipeline.value(attrs, assetKey(attrs));
    routes = saved;
    expect(v.model.route).toBe("fallback");
    // A stable code and a sentence; what failed (the address, grpc-js's words) stays in the logs.
    expect(v.fallbackReason).toBe("MODEL_UNAVAILABLE");
    expect(v.fallbackMessage).toBe("the model is unavailable; valued from comparable sales");
    expect(JSON.stringify(v)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|No connection established/);
    expect(v.value).toBeGreaterThan(0);
    expect(v.interval.low).toBeLessThan(v.value);
    expect(await registry.metrics()).toMatch(
      /valora_valuation_fallbacks_total\{asset_class="real-estate",reason="model_unavailable"/,
    );
  });
});
