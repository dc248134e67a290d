import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PipelineService } from "@valora/proto/valora/v1/pipeline_pb";
import { Route as RouteEnum, ValuationSchema } from "@valora/proto/valora/v1/valuation_pb";
import {
  ValoraError,
  implement,
  invalidArgument,
  toValoraError,
  type ServiceRegistration,
  FULL_PARTS,
  partsOf,
  type ValuationParts,
} from "@valora/kit";
import type { Normalised } from "./input.js";
import type { ValuationOut, ValuationPipeline } from "./valuation.js";

const ROUTES = {
  champion: RouteEnum.CHAMPION,
  canary: RouteEnum.CANARY,
  fallback: RouteEnum.FALLBACK,
} as const;

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
    fallbackMessage: v.fallbackMessage ?? "",
    assetKey: v.assetKey,
    assetClass: v.assetClass,
    warnings: v.warnings,
  };
}

/** Values items in one pipeline pass (one model call per route); each fails on its own with a stable code. */
async function runItems(
  pipeline: ValuationPipeline,
  items: { assetKey: string; attributes?: unknown }[],
  parts: ValuationParts = FULL_PARTS,
) {
  const answers = await pipeline.valueMany(
    items.map((item) => ({ attributes: (item.attributes ?? {}) as Normalised, assetKey: item.assetKey })),
    { parts },
  );
  return answers.map((a, index) => {
    if (a instanceof Error) {
      const e = toValoraError(a);
      return {
        index,
        outcome: {
          case: "error" as const,
          value: { code: e.code, message: e.message, violations: e.details },
        },
      };
    }
    return {
      index,
      outcome: { case: "valuation" as const, value: create(ValuationSchema, toValuationMessage(a)) },
    };
  });
}

const unknownClass = (assetClass: string) =>
  new ValoraError("NOT_FOUND", `no pipeline for asset class "${assetClass}"`, {
    details: [{ field: "asset_class", description: "unknown asset class" }],
  });

/** Where a backtest's sales come from (the gold `sales` table in pods). */
export type BacktestSales = (o: {
  assetClass: string;
  versions: string[];
  limit: number;
  since?: string;
}) => Promise<{
  sales: { price: number; attributes: Record<string, number | string | boolean> }[];
  excludedAsTraining: number;
}>;

/** valora.v1.PipelineService over the pipelines this process runs, by asset class. */
export function pipelineService(
  pipelines: ReadonlyMap<string, ValuationPipeline>,
  backtestSales?: BacktestSales,
): ServiceRegistration {
  return implement(PipelineService, {
    async run(req) {
      const pipeline = pipelines.get(req.assetClass);
      if (!pipeline) throw unknownClass(req.assetClass);
      return { results: await runItems(pipeline, req.items, partsOf(req.include, req.lean)) };
    },
    async backtest(req) {
      const pipeline = pipelines.get(req.assetClass);
      if (!pipeline) throw unknownClass(req.assetClass);
      if (!req.champion || !req.candidate)
        throw invalidArgument("a backtest needs a champion and a candidate", [
          { field: req.champion ? "candidate" : "champion", description: "required" },
        ]);
      if (!backtestSales)
        throw new ValoraError("FAILED_PRECONDITION", "this pipeline has no sales to backtest on");
      const route = (v: { version: string; endpoint: string }, role: "champion" | "canary") => ({
        version: v.version,
        endpoint: v.endpoint,
        role,
        weight: 0,
      });
      const { sales, excludedAsTraining } = await backtestSales({
        assetClass: req.assetClass,
        versions: [req.champion.version, req.candidate.version],
        limit: req.maxSales > 0 ? req.maxSales : 500,
        ...(req.since ? { since: req.since } : {}),
      });
      if (sales.length === 0) return { sales: 0, excludedAsTraining };
      const scores = await pipeline.backtest(
        sales,
        route(req.champion, "champion"),
        route(req.candidate, "canary"),
      );
      return { sales: sales.length, excludedAsTraining, ...scores };
    },
  });
}

/**
 * The orchestrator's dispatch to pipelines in the same process (`valora up`): what
 * PipelineService/Run does, without the network hop.
 */
export function localDispatch(pipelines: ReadonlyMap<string, ValuationPipeline>) {
  return async (
    assetClass: string,
    items: { assetKey: string; attributes: Normalised }[],
    options?: { parts?: ValuationParts },
  ) => {
    const pipeline = pipelines.get(assetClass);
    if (!pipeline) throw unknownClass(assetClass);
    return (await runItems(pipeline, items, options?.parts)).map((r) =>
      r.outcome.case === "valuation"
        ? { index: r.index, valuation: r.outcome.value }
        : { index: r.index, error: r.outcome.value },
    );
  };
}
