import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Route, type Valuation } from "@valora/proto/valora/v1/valuation_pb";
import type { z } from "zod";
import type { Valuation as ValuationJson } from "./schemas.js";

const ROUTE_NAMES: Record<Route, "champion" | "canary" | "fallback"> = { [Route.UNSPECIFIED]: "champion", [Route.CHAMPION]: "champion", [Route.CANARY]: "canary", [Route.FALLBACK]: "fallback" };

/** Pure: a protobuf timestamp as ISO 8601, null when absent (REST answers). */
export const iso = (t: Timestamp | undefined): string | null => (t ? timestampDate(t).toISOString() : null);

/** Pure: the REST shape of a valuation (camelCase, ISO dates, route names rather than enum numbers). */
export function valuationJson(v: Valuation): z.infer<typeof ValuationJson> {
  return {
    assetClass: v.assetClass,
    assetKey: v.assetKey,
    value: v.value,
    currency: v.currency,
    interval: { low: v.interval?.low ?? 0, high: v.interval?.high ?? 0, coverage: v.interval?.coverage ?? 0 },
    confidence: v.confidence,
    comparables: v.comparables.map((c) => ({ id: c.id, price: c.price, adjustedPrice: c.adjustedPrice, distanceKm: c.distanceKm, similarity: c.similarity, soldAt: c.soldAt ? timestampDate(c.soldAt).toISOString().slice(0, 10) : null, attributes: c.attributes ?? {} })),
    explanation: v.explanation ? { baseValue: v.explanation.baseValue, output: v.explanation.output, method: v.explanation.method, contributions: v.explanation.contributions.map((c) => ({ feature: c.feature, value: c.value, contribution: c.contribution })) } : null,
    model: { name: v.model?.name ?? "", version: v.model?.version ?? "", route: ROUTE_NAMES[v.model?.route ?? Route.UNSPECIFIED] },
    cached: v.cached,
    fallbackReason: v.fallbackReason || null,
  };
}
