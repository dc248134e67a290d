import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PipelineService } from "@valora/proto/valora/v1/pipeline_pb";
import { Route as RouteEnum, type ValuationSchema } from "@valora/proto/valora/v1/valuation_pb";
import { ValoraError, implement, toValoraError, type ServiceRegistration } from "@valora/kit";
import type { Normalised } from "./input.js";
import type { ValuationOut, ValuationPipeline } from "./valuation.js";

const ROUTES = { champion: RouteEnum.CHAMPION, canary: RouteEnum.CANARY, fallback: RouteEnum.FALLBACK } as const;

/** Pure: a pipeline answer as the valora.v1.Valuation message. */
export function toValuationMessage(v: ValuationOut): MessageInitShape<typeof ValuationSchema> {
  return {
    value: v.value,
    currency: v.currency,
    interval: v.interval,
    confidence: v.confidence,
    comparables: v.comparables.map((c) => ({
      id: c.id,
      price: c.price,
      adjustedPrice: c.adjustedPrice,
      distanceKm: c.distanceKm,
      similarity: c.similarity,
      ...(c.soldAt ? { soldAt: timestampFromDate(new Date(c.soldAt)) } : {}),
      attributes: c.attributes,
    })),
    ...(v.explanation ? { explanation: v.explanation } : {}),
    model: { name: v.model.name, version: v.model.version, route: ROUTES[v.model.route] },
    cached: false,
    fallbackReason: v.fallbackReason ?? "",
    assetKey: v.assetKey,
    assetClass: v.assetClass,
  };
}

/** valora.v1.PipelineService over the pipelines this process runs, by asset class. */
export function pipelineService(pipelines: ReadonlyMap<string, ValuationPipeline>): ServiceRegistration {
  return implement(PipelineService, {
    async run(req) {
      const pipeline = pipelines.get(req.assetClass);
      if (!pipeline) throw new ValoraError("NOT_FOUND", `no pipeline for asset class "${req.assetClass}"`, { details: [{ field: "asset_class", description: "unknown asset class" }] });
      const results = await Promise.all(
        req.items.map(async (item, index) => {
          try {
            const v = await pipeline.value((item.attributes ?? {}) as Normalised, item.assetKey);
            return { index, outcome: { case: "valuation" as const, value: toValuationMessage(v) } };
          } catch (err) {
            const e = toValoraError(err);
            return { index, outcome: { case: "error" as const, value: { code: e.code, message: e.message, violations: e.details } } };
          }
        }),
      );
      return { results };
    },
  });
}
