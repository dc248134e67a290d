import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { ValuationSchema } from "@valora/proto/valora/v1/valuation_pb";
import { createGrpcServer, createRedis, createServiceBase, toValoraError, ValoraError } from "@valora/kit";
import { metadataOf, parseModel } from "@valora/kit/onnx";
import { createModelServer } from "@valora/model-server";
import { ComparablesIndex, salesFromCsv } from "@valora/comparables";
import { ValuationPipeline, grpcModelClient, modelSchemaFrom, salesResiduals, toValuationMessage, type PipelineSpec } from "@valora/pipeline";
import { MemoryCache, RedisCache, valuationService, type AssetClassEntry } from "@valora/orchestrator";

interface UpOptions {
  modelsDir: string;
  grpcPort: number;
  modelGrpcPort: number;
  modelHttpPort: number;
}

interface AssetClassFiles {
  name: string;
  model: string;
  version: string;
  pipeline: PipelineSpec & { comparables?: PipelineSpec["comparables"] & { h3Resolution: number; maxRings: number; count: number; maxAgeMonths: number; similarity: { field: string; weight: number }[] }; cache?: { ttlSeconds: number } };
  data?: string;
  target: string;
}

function discover(dir: string): AssetClassFiles[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, "model.onnx")) && existsSync(join(dir, d.name, `${d.name}.yaml`)))
    .map((d) => {
      const card = JSON.parse(readFileSync(join(dir, d.name, "model-card.json"), "utf8")) as { version: string; data: { name: string; target: { name: string } } };
      const docs = parseAllDocuments(readFileSync(join(dir, d.name, `${d.name}.yaml`), "utf8")).map((x) => x.toJS() as { kind: string; spec: unknown });
      const ap = docs.find((x) => x.kind === "AssetPipeline");
      if (!ap) throw new ValoraError("FAILED_PRECONDITION", `${d.name}.yaml has no AssetPipeline`);
      const data = join(dir, "data", card.data.name);
      return { name: d.name, model: resolve(dir, d.name, "model.onnx"), version: card.version, pipeline: ap.spec as AssetClassFiles["pipeline"], ...(existsSync(data) ? { data } : {}), target: card.data.target.name };
    });
}

/**
 * `valora up` (npm start): the parts that exist, composed in one process on loopback — a model
 * server with every model under models/, a valuation pipeline per asset class (comparables seeded
 * from the training data), and the orchestrator's gRPC ValuationService with reflection.
 */
export async function up(o: UpOptions): Promise<void> {
  const base = createServiceBase({ name: "valora", exit: (code) => process.exit(code) });
  const classes = discover(o.modelsDir);
  if (classes.length === 0) throw new ValoraError("FAILED_PRECONDITION", `no models under ${o.modelsDir}: run make models`);
  const models = createModelServer(base, {
    models: classes.map((c) => ({ name: c.name, version: c.version, uri: pathToFileURL(c.model).href })),
    source: { cacheDir: "/tmp/valora-models", allowedHosts: [] },
    batching: { maxBatchSize: 64, maxDelayMicros: 500 },
  });
  const modelPorts = await models.listen({ host: "127.0.0.1", grpcPort: o.modelGrpcPort, httpPort: o.modelHttpPort });
  base.shutdown.register("model-server", () => models.close());
  await models.loaded;

  const pipelines = new Map<string, ValuationPipeline>();
  const catalog = new Map<string, AssetClassEntry>();
  for (const c of classes) {
    const meta = metadataOf(parseModel(readFileSync(c.model)));
    const schema = modelSchemaFrom(meta, 0);
    const route = { version: c.version, role: "champion" as const, endpoint: `127.0.0.1:${modelPorts.grpcPort}`, weight: 100 };
    const client = grpcModelClient(route.endpoint, c.name, c.version, base.registry);
    const spec = c.pipeline;
    const cmp = spec.comparables;
    const column = (field?: string) => spec.input.fields.find((f) => f.name === field)?.feature;
    const sales = c.data ? salesFromCsv(readFileSync(c.data, "utf8"), { idPrefix: c.name, target: c.target, fields: spec.input.fields, ...(column(cmp?.latitude) ? { latitude: column(cmp?.latitude)! } : {}), ...(column(cmp?.longitude) ? { longitude: column(cmp?.longitude)! } : {}) }) : [];
    const residuals = sales.length > 0 ? await salesResiduals(sales, schema, spec.input.fields, client) : new Map<string, number>();
    pipelines.set(c.name, new ValuationPipeline({ spec, schema, residualQuantiles: JSON.parse(meta["valora.residual_quantiles"] ?? "{}") as Record<string, number>, routes: () => [route], client: () => client, ...(cmp && sales.length > 0 ? { comparables: new ComparablesIndex(sales, cmp), residualOf: (id: string) => residuals.get(id) } : {}), logger: base.logger }));
    catalog.set(c.name, { model: spec.model.name, currency: spec.currency, fields: spec.input.fields, cacheTtlSeconds: spec.cache?.ttlSeconds ?? 3600, championVersion: () => c.version, routes: () => [route] });
    base.logger.info({ assetClass: c.name, model: `${c.name}@${c.version}`, sales: sales.length }, "asset pipeline ready");
  }

  const redisUrl = process.env["REDIS_URL"];
  const cache = redisUrl ? new RedisCache(createRedis({ url: redisUrl, logger: base.logger })) : new MemoryCache();
  const orchestrator = createGrpcServer({
    ...base,
    services: [
      valuationService({
        catalog: (c) => catalog.get(c),
        assetClasses: () => [...catalog.keys()],
        cache,
        registry: base.registry,
        dispatch: async (assetClass, items) =>
          Promise.all(
            items.map(async (item, index) => {
              try {
                const v = await pipelines.get(assetClass)!.value(item.attributes, item.assetKey);
                return { index, valuation: create(ValuationSchema, toValuationMessage(v)) };
              } catch (err) {
                const e = toValoraError(err);
                return { index, error: { code: e.code, message: e.message, violations: e.details } };
              }
            }),
          ),
      }),
    ],
  });
  const grpcPort = await orchestrator.listen(`127.0.0.1:${o.grpcPort}`);
  base.shutdown.register("orchestrator", () => orchestrator.shutdown());
  base.shutdown.installSignalHandlers();
  const example = classes[0]!;
  const sample = example.data ? (salesFromCsv(readFileSync(example.data, "utf8"), { idPrefix: "x", target: example.target, fields: example.pipeline.input.fields })[0]?.attributes ?? {}) : {};
  const request = JSON.stringify({ assetClass: example.name, attributes: sample as JsonObject });
  base.logger.info(
    {
      valuationGrpc: `127.0.0.1:${grpcPort}`,
      modelServerRest: `http://127.0.0.1:${modelPorts.httpPort}`,
      modelServerGrpc: `127.0.0.1:${modelPorts.grpcPort}`,
      assetClasses: classes.map((c) => c.name),
      try: `grpcurl -plaintext -d '${request}' 127.0.0.1:${grpcPort} valora.v1.ValuationService/Value`,
    },
    "valora is up",
  );
}
